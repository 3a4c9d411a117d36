"""The batched writes survive errors the transport did not translate (found by the DB drops)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from publisher.batching import OutcomeRecorder, SendingMarker
from publisher.store.store import OutcomeRow, RecordResult


class DriverError(Exception):
    """Stands in for asyncpg's InternalClientError, which is not a StoreError."""


class BrokenStore:
    """mark_sending always fails; record fails `record_failures` times, then works."""

    def __init__(self, record_failures: int = 0) -> None:
        self.record_failures = record_failures
        self.recorded: list[int] = []

    async def mark_sending(self, worker: str, claims: Sequence[tuple[int, int]]) -> set[int]:
        raise DriverError("cannot switch to state 12; another operation is in progress")

    async def record(self, worker: str, outcomes: Sequence[OutcomeRow]) -> RecordResult:
        if self.record_failures:
            self.record_failures -= 1
            raise DriverError("connection is closed")
        self.recorded += [o.id for o in outcomes]
        return RecordResult(applied=len(outcomes), lost=())


def _row(post_id: int) -> OutcomeRow:
    return OutcomeRow(id=post_id, attempt=1, status="published", outcome="published")


async def test_sending_stamp_that_fails_oddly_answers_false_instead_of_hanging() -> None:
    """A driver error in mark_sending: every waiting post is told "do not send"."""
    store: Any = BrokenStore()
    marker = SendingMarker(store, "w")
    answers = await asyncio.wait_for(
        asyncio.gather(marker.begin(1, 1), marker.begin(2, 1), marker.begin(3, 2)), 5)
    assert answers == [False, False, False]


async def test_outcome_write_that_fails_oddly_is_tried_again_and_written() -> None:
    """A driver error in record_outcomes is retried like a StoreError, and nothing is lost."""
    store: Any = BrokenStore(record_failures=1)
    recorder = OutcomeRecorder(store, "w", interval=0.01)
    recorder.add(_row(7))
    recorder.add(_row(8))
    await asyncio.wait_for(recorder.close(), 10)
    assert store.recorded == [7, 8]
    assert recorder.unwritten == []

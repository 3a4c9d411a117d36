"""The batched writes survive errors the transport did not translate (found by the DB drops)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from publisher.batching import PostWriter
from publisher.store.store import OutcomeRow, Stamp, SyncResult


class DriverError(Exception):
    """Stands in for asyncpg's InternalClientError, which is not a StoreError."""


class BrokenStore:
    """sync fails `failures` times, then works (and stamps what it is asked to)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.recorded: list[int] = []
        self.calls = 0

    async def sync(self, worker: str, sending: Sequence[Stamp],
                   outcomes: Sequence[OutcomeRow]) -> SyncResult:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise DriverError("cannot switch to state 12; another operation is in progress")
        self.recorded += [o.id for o in outcomes]
        return SyncResult(marked=frozenset(stamp[0] for stamp in sending), applied=len(outcomes),
                          lost=())


def _row(post_id: int) -> OutcomeRow:
    return OutcomeRow(id=post_id, attempt=1, status="published", outcome="published")


async def test_sending_stamp_that_fails_oddly_answers_false_instead_of_hanging() -> None:
    """A driver error in the statement: every waiting post is told "do not send"."""
    store: Any = BrokenStore(failures=99)
    writer = PostWriter(store, "w")
    answers = await asyncio.wait_for(
        asyncio.gather(writer.begin_sending(1, 1), writer.begin_sending(2, 1),
                       writer.begin_sending(3, 2)), 5)
    assert answers == [False, False, False]


async def test_outcome_write_that_fails_oddly_is_tried_again_and_written() -> None:
    """A driver error while writing outcomes is retried, and nothing is lost."""
    store: Any = BrokenStore(failures=1)
    writer = PostWriter(store, "w", outcome_interval=0.01)
    writer.add(_row(7))
    writer.add(_row(8))
    await asyncio.wait_for(writer.close(), 10)
    assert store.recorded == [7, 8]
    assert writer.unwritten == []


async def test_outcomes_that_keep_failing_are_counted_unwritten_after_three_tries() -> None:
    store: Any = BrokenStore(failures=99)
    writer = PostWriter(store, "w", outcome_interval=0.01)
    writer.add(_row(5))
    await asyncio.wait_for(writer.close(), 10)
    assert [row.id for row in writer.unwritten] == [5]
    assert store.calls == 3


async def test_a_failed_write_does_not_strand_stamps_asked_for_meanwhile() -> None:
    """Stamps asked for while a failing statement was out still get their own statement."""
    store: Any = BrokenStore(failures=1)
    writer = PostWriter(store, "w", min_wait=0.001, wait_per_post=0.0)
    first = asyncio.ensure_future(writer.begin_sending(1, 1))
    await asyncio.sleep(0)          # the first stamp's window is open
    await asyncio.sleep(0.005)      # its statement is out (and fails)
    second = await asyncio.wait_for(writer.begin_sending(2, 1), 5)
    assert await first is False
    assert second is True

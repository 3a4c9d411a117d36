"""Batches a run's per-post database writes into one sync_posts statement per batch.

Two kinds of writes share each statement:
- "sending" stamps: a post about to make its irreversible call asks for one and waits;
  the stamps asked for within a short window go out together. The window grows with the
  number of posts in flight: with many, a ~0.1 s wait gathers dozens of stamps into one
  statement; with few, waiting would gather nothing and only hold their platform slots.
- outcomes: buffered and written at the next statement (at the latest after
  `outcome_interval`), retried when the database fails, and flushed on close even if the
  caller is being cancelled, so a result is never dropped on the way out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from publisher.errors import StoreError
from publisher.models import PostId
from publisher.store import Store
from publisher.store.store import OutcomeRow

log = logging.getLogger("publisher.batching")

OUTCOME_TRIES = 3
LOG_REASON_CHARS = 300


class PostWriter:
    def __init__(self, store: Store, worker: str, *, in_flight: Callable[[], int] = lambda: 0,
                 min_wait: float = 0.005, wait_per_post: float = 0.00025,
                 max_wait: float = 0.15, outcome_interval: float = 0.5,
                 max_stamps: int = 100, max_outcomes: int = 500) -> None:
        self._store = store
        self._worker = worker
        self._in_flight = in_flight
        self._min_wait = min_wait
        self._wait_per_post = wait_per_post
        self._max_wait = max_wait
        self._outcome_interval = outcome_interval
        # A stamp batch goes as soon as it is this big: its posts are waiting to send.
        # Outcomes wait for nobody, so they go in larger batches.
        self._max_stamps = max_stamps
        self._max_outcomes = max_outcomes
        # post -> (attempt, state to write with the stamp, the waiter)
        self._sending: dict[PostId, tuple[int, Mapping[str, Any] | None,
                                          asyncio.Future[bool]]] = {}
        # (row, failed tries so far, loop time before which it is not tried again)
        self._outcomes: list[tuple[OutcomeRow, int, float]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._due = float("inf")
        self._flushing: asyncio.Task[None] | None = None
        self.lost: list[PostId] = []           # fenced out: the claim was no longer ours
        self.unwritten: list[OutcomeRow] = []  # the database refused or was unreachable

    def sending_wait(self) -> float:
        """How long a stamp may wait for others to share its statement."""
        return min(self._max_wait, self._min_wait + self._wait_per_post * self._in_flight())

    async def begin_sending(self, post_id: PostId, attempt: int,
                            state: Mapping[str, Any] | None = None) -> bool:
        """True when the claim still holds and "sending" is now stamped on the post (with
        `state` merged into its publish_state)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._sending[post_id] = (attempt, state, future)
        self._flush_within(0.0 if len(self._sending) >= self._max_stamps
                           else self.sending_wait())
        return await future

    def add(self, row: OutcomeRow, platform: str | None = None) -> None:
        if log.isEnabledFor(logging.DEBUG):
            _log_outcome(row, platform)
        self._outcomes.append((row, 0, 0.0))
        self._flush_within(0.0 if len(self._outcomes) >= self._max_outcomes
                           else self._outcome_interval)

    def _flush_within(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + seconds
        if due >= self._due:
            return  # a flush is already due sooner
        if self._timer is not None:
            self._timer.cancel()
        self._due = due
        self._timer = loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer, self._due = None, float("inf")
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        # else: the running flush loops until nothing is left

    async def _flush(self) -> None:
        try:
            while self._sending or self._ready_outcomes():
                if not await self._write_batch():
                    break  # the database failed: outcomes wait for their retry time
        finally:
            self._flushing = None
            if self._sending:  # arrived during a failed write: their own timer has fired
                self._flush_within(self.sending_wait())

    def _ready_outcomes(self) -> bool:
        now = asyncio.get_running_loop().time()
        return any(ready_at <= now for _, _, ready_at in self._outcomes)

    async def _write_batch(self) -> bool:
        sending, self._sending = self._sending, {}
        now = asyncio.get_running_loop().time()
        outcomes: list[tuple[OutcomeRow, int, float]] = []
        waiting: list[tuple[OutcomeRow, int, float]] = []
        for entry in self._outcomes:
            (outcomes if entry[2] <= now and len(outcomes) < self._max_outcomes
             else waiting).append(entry)
        self._outcomes = waiting
        try:
            result = await self._store.sync(
                self._worker, [(post_id, attempt, state)
                               for post_id, (attempt, state, _) in sending.items()],
                [row for row, _, _ in outcomes])
        except Exception as exc:  # not only StoreError: a waiter left unanswered hangs its run
            self._answer(sending, frozenset())
            self._failed(outcomes, exc, len(sending))
            return False
        self._answer(sending, result.marked)
        if result.lost:
            log.error("claims lost before their outcome was written (not applied; kept in "
                      "publish_attempts): post ids %s", list(result.lost))
            self.lost.extend(result.lost)
        return True

    @staticmethod
    def _answer(sending: dict[PostId, tuple[int, Mapping[str, Any] | None,
                                            asyncio.Future[bool]]],
                marked: frozenset[PostId]) -> None:
        for post_id, (_, _, future) in sending.items():
            if not future.done():
                future.set_result(post_id in marked)

    def _failed(self, outcomes: list[tuple[OutcomeRow, int, float]], exc: Exception,
                stamps: int) -> None:
        if stamps:
            log.error("cannot stamp sending; %d posts will not be sent: %s", stamps,
                      _describe(exc))
        if not outcomes:
            return
        now = asyncio.get_running_loop().time()
        retry = [(row, n + 1, now + _backoff(n + 1)) for row, n, _ in outcomes
                 if n + 1 < OUTCOME_TRIES]
        given_up = [row for row, n, _ in outcomes if n + 1 >= OUTCOME_TRIES]
        log.warning("writing %d outcomes failed: %s", len(outcomes), _describe(exc))
        if given_up:
            self.unwritten.extend(given_up)
            log.error("outcomes could not be written: %s",
                      [(row.id, row.status, row.platform_post_id) for row in given_up])
        if retry:
            self._outcomes[:0] = retry
            self._flush_within(min(ready_at for _, _, ready_at in retry) - now)

    async def close(self) -> None:
        """Writes everything still buffered, even if the caller is being cancelled."""
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        while True:
            if self._timer is not None:
                self._timer.cancel()
                self._timer, self._due = None, float("inf")
            if self._flushing is not None:
                await self._flushing
                continue
            if not self._sending and not self._outcomes:
                return
            now = asyncio.get_running_loop().time()
            wait = min((ready_at for _, _, ready_at in self._outcomes), default=now) - now
            if wait > 0:
                await asyncio.sleep(wait)
            await self._write_batch()


def _log_outcome(row: OutcomeRow, platform: str | None) -> None:
    """One DEBUG line per outcome handed in for writing. The reason is the stored one, so
    already masked (platforms.base.publish_masked, tokens); cut for the log."""
    reason = None if row.error is None else row.error[:LOG_REASON_CHARS]
    log.debug("outcome post %s%s attempt %s: %s (%s)%s", row.id,
              f" ({platform})" if platform else "", row.attempt, row.status, row.outcome,
              f": {reason}" if reason else "", extra={"fields": {
                  "event": "outcome", "post_id": row.id, "platform": platform,
                  "attempt": row.attempt, "status": row.status, "outcome": row.outcome,
                  "reason": reason}})


def _backoff(failures: int) -> float:
    return 0.5 * 2.0 ** (failures - 1)


def _describe(exc: Exception) -> str:
    """A StoreError's own message; anything else (a driver error the transport did not
    translate) by its type too."""
    return str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"

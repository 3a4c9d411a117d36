"""Batches the per-post database writes of a run into one statement per batch.

SendingMarker: posts about to make their irreversible call ask for the "sending" stamp;
requests arriving within a few milliseconds share one mark_sending statement.
OutcomeRecorder: outcomes are buffered and written by record_outcomes in batches; the
final flush is shielded from cancellation so a result is never dropped on the way out.
"""

from __future__ import annotations

import asyncio
import logging

from publisher.errors import StoreError
from publisher.store import Store
from publisher.store.store import OutcomeRow

log = logging.getLogger("publisher.batching")


class SendingMarker:
    def __init__(self, store: Store, worker: str, *, window: float = 0.005,
                 max_batch: int = 1000) -> None:
        self._store = store
        self._worker = worker
        self._window = window
        self._max_batch = max_batch
        self._pending: dict[int, tuple[int, asyncio.Future[bool]]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def begin(self, post_id: int, attempt: int) -> bool:
        """True when the claim still holds and "sending" is now stamped on the post."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[post_id] = (attempt, future)
        if len(self._pending) >= self._max_batch:
            await self._flush()
        elif self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_later())
        return await future

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._window)
        self._flusher = None
        await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        marked: set[int] = set()
        try:
            marked = await self._store.mark_sending(
                self._worker, [(post_id, attempt) for post_id, (attempt, _) in batch.items()])
        except Exception as exc:  # not only StoreError: a waiter left unanswered hangs its run
            log.error("cannot stamp sending; %d posts will not be sent: %s", len(batch),
                      _describe(exc))
        finally:
            for post_id, (_, future) in batch.items():
                if not future.done():
                    future.set_result(post_id in marked)


class OutcomeRecorder:
    def __init__(self, store: Store, worker: str, *, batch_size: int = 500,
                 interval: float = 0.25) -> None:
        self._store = store
        self._worker = worker
        self._batch_size = batch_size
        self._interval = interval
        self._buffer: list[OutcomeRow] = []
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.lost: list[int] = []           # fenced out: the claim was no longer ours
        self.unwritten: list[OutcomeRow] = []  # the database refused or was unreachable

    def add(self, row: OutcomeRow) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self._batch_size:
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        elif self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        await asyncio.sleep(self._interval)
        self._ticker = None
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            while self._buffer:
                batch, self._buffer = self._buffer[:self._batch_size], \
                    self._buffer[self._batch_size:]
                await self._write(batch)

    async def _write(self, batch: list[OutcomeRow]) -> None:
        for attempt in range(3):
            try:
                result = await self._store.record(self._worker, batch)
            except Exception as exc:  # any failure: try again, then count it unwritten
                log.warning("writing %d outcomes failed (try %d of 3): %s", len(batch),
                            attempt + 1, _describe(exc))
                await asyncio.sleep(0.5 * 2 ** attempt)
                continue
            if result.lost:
                log.error("claims lost before their outcome was written (not applied; kept in "
                          "publish_attempts): post ids %s", list(result.lost))
                self.lost.extend(result.lost)
            return
        self.unwritten.extend(batch)
        log.error("outcomes could not be written: %s",
                  [(row.id, row.status, row.platform_post_id) for row in batch])

    async def close(self) -> None:
        """Writes everything still buffered, even if the caller is being cancelled."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        await asyncio.shield(self._flush())


def _describe(exc: Exception) -> str:
    """A StoreError's own message; anything else (a driver error the transport did not
    translate) by its type too."""
    return str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"

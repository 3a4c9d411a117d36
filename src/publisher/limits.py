"""Concurrency limits: the run's total, each platform's, each account's; priority-aware.

A post takes its account slot first, then its platform slot, then a global slot, so a post
waiting on a busy account never sits on a platform or global slot. When several posts wait
for one limit, the highest priority goes first, then the earliest to ask.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager


class PriorityLimiter:
    """A semaphore whose waiters are served by priority (higher first), then arrival."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def idle(self) -> bool:
        return self.in_use == 0 and not self._waiters

    async def acquire(self, priority: int = 0) -> None:
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed to us as we were cancelled
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # hand the slot over; in_use stays the same
                return
        self.in_use -= 1


class Limits:
    """The three limits a publish runs under."""

    def __init__(self, *, total: int, per_platform: Mapping[str, int], per_account: int) -> None:
        self.total = PriorityLimiter(total)
        self.platforms = {name: PriorityLimiter(n) for name, n in per_platform.items()}
        self._per_account = per_account
        self._accounts: dict[str, PriorityLimiter] = {}

    @asynccontextmanager
    async def slot(self, platform: str, account: str | None,
                   priority: int = 0) -> AsyncIterator[None]:
        limiters = []
        if account is not None:
            limiters.append(self._accounts.setdefault(account,
                                                      PriorityLimiter(self._per_account)))
        if platform in self.platforms:
            limiters.append(self.platforms[platform])
        limiters.append(self.total)
        taken: list[PriorityLimiter] = []
        try:
            for limiter in limiters:
                await limiter.acquire(priority)
                taken.append(limiter)
            yield
        finally:
            for limiter in reversed(taken):
                limiter.release()
            if account is not None and account in self._accounts \
                    and self._accounts[account].idle:
                del self._accounts[account]  # keep memory flat across many accounts

"""Concurrency limits: the run's total, each platform's, each account's; priority-aware.

A post takes its account slot first, then its platform slot, then a global slot, so a post
waiting on a busy account never sits on a platform or global slot. When several posts wait
for one limit, the highest priority goes first, then the earliest to ask.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Mapping


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

    def slot(self, platform: str, account: str | None, priority: int = 0) -> Slot:
        """`async with limits.slot(...)`: holds all three for the duration of the block."""
        return Slot(self, platform, account, priority)

    def _account(self, account: str) -> PriorityLimiter:
        limiter = self._accounts.get(account)
        if limiter is None:
            limiter = self._accounts[account] = PriorityLimiter(self._per_account)
        return limiter

    def _forget_if_idle(self, account: str) -> None:
        limiter = self._accounts.get(account)
        if limiter is not None and limiter.idle:
            del self._accounts[account]  # keep memory flat across many accounts


class Slot:
    """One post's hold on its account's, platform's and the run's limiters.

    A class rather than a generator-based context manager: it is entered once per post,
    and at volume the generator machinery was a visible share of the run's CPU."""

    __slots__ = ("_account", "_limiters", "_limits", "_priority", "_taken")

    def __init__(self, limits: Limits, platform: str, account: str | None,
                 priority: int) -> None:
        self._limits = limits
        self._account = account
        self._priority = priority
        limiters = [] if account is None else [limits._account(account)]
        platform_limiter = limits.platforms.get(platform)
        if platform_limiter is not None:
            limiters.append(platform_limiter)
        limiters.append(limits.total)
        self._limiters = limiters
        self._taken = 0

    async def __aenter__(self) -> None:
        try:
            for limiter in self._limiters:
                await limiter.acquire(self._priority)
                self._taken += 1
        except BaseException:
            self._release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        for limiter in reversed(self._limiters[:self._taken]):
            limiter.release()
        self._taken = 0
        if self._account is not None:
            self._limits._forget_if_idle(self._account)

"""Concurrency limits: PriorityLimiter (capacity, priority order, cancellation) and Limits."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from publisher.limits import Limits, PriorityLimiter


async def settle() -> None:
    """Lets every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


# --- PriorityLimiter -----------------------------------------------------------------------


async def test_never_exceeds_capacity_under_load() -> None:
    """200 tasks with mixed priorities never hold more than `capacity` slots at once."""
    limiter = PriorityLimiter(3)
    rng = random.Random(7)
    active = peak = 0

    async def work() -> None:
        nonlocal active, peak
        await limiter.acquire(rng.randint(-3, 3))
        try:
            active += 1
            peak = max(peak, active)
            assert limiter.in_use <= limiter.capacity
            await asyncio.sleep(rng.choice((0, 0, 0.001)))
        finally:
            active -= 1
            limiter.release()

    await asyncio.gather(*(work() for _ in range(200)))

    assert peak == 3
    assert limiter.in_use == 0
    assert limiter.idle


async def test_waiters_served_by_priority_then_arrival() -> None:
    """Higher priority goes first; equal priorities go in the order they asked."""
    limiter = PriorityLimiter(1)
    await limiter.acquire()
    served: list[str] = []

    async def waiter(name: str, priority: int) -> None:
        await limiter.acquire(priority)
        served.append(name)
        await asyncio.sleep(0)
        limiter.release()

    tasks = []
    for name, priority in [("low-a", 0), ("mid-a", 5), ("low-b", 0), ("top", 9),
                           ("mid-b", 5), ("neg", -1), ("low-c", 0)]:
        tasks.append(asyncio.create_task(waiter(name, priority)))
        await settle()  # make arrival order certain
    assert served == []

    limiter.release()
    await asyncio.gather(*tasks)

    assert served == ["top", "mid-a", "mid-b", "low-a", "low-b", "low-c", "neg"]
    assert limiter.idle


async def test_newcomer_does_not_jump_queued_waiters() -> None:
    """A slot freed while others wait goes to the queue, not to a new high-priority caller."""
    limiter = PriorityLimiter(1)
    await limiter.acquire()
    order: list[str] = []

    async def take(name: str, priority: int) -> None:
        await limiter.acquire(priority)
        order.append(name)
        limiter.release()

    queued = asyncio.create_task(take("queued", 0))
    await settle()
    limiter.release()  # handed to `queued`; in_use stays 1
    assert limiter.in_use == 1
    newcomer = asyncio.create_task(take("newcomer", 100))
    await asyncio.gather(queued, newcomer)

    assert order == ["queued", "newcomer"]


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    """A waiter cancelled while queued takes no slot; the capacity stays usable."""
    limiter = PriorityLimiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    limiter.release()

    assert limiter.in_use == 0
    assert limiter.idle
    await asyncio.wait_for(limiter.acquire(), timeout=1)
    assert limiter.in_use == 1


async def test_cancel_after_handover_returns_the_slot() -> None:
    """A waiter cancelled just after being handed the slot gives it back."""
    limiter = PriorityLimiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await settle()

    limiter.release()   # hands the slot to the waiter ...
    waiter.cancel()     # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert limiter.in_use == 0
    assert limiter.idle
    await asyncio.wait_for(limiter.acquire(), timeout=1)


async def test_many_cancellations_keep_full_capacity() -> None:
    """After waves of cancelled waiters, all `capacity` slots can still be taken at once."""
    limiter = PriorityLimiter(4)
    for _ in range(4):
        await limiter.acquire()
    waiters = [asyncio.create_task(limiter.acquire(p % 3)) for p in range(30)]
    await settle()
    for task in waiters[::2]:
        task.cancel()
    for _ in range(4):
        limiter.release()
    await settle()
    for task in waiters[1::2]:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    granted = sum(1 for t in waiters if not t.cancelled())
    for _ in range(granted):
        limiter.release()

    assert limiter.in_use == 0
    assert limiter.idle
    await asyncio.wait_for(asyncio.gather(*(limiter.acquire() for _ in range(4))), timeout=1)
    assert limiter.in_use == 4


# --- Limits --------------------------------------------------------------------------------


async def test_slot_enforces_account_platform_and_total_caps_together() -> None:
    """Every cap holds at once, and each is actually reached under load."""
    limits = Limits(total=5, per_platform={"facebook": 3, "instagram": 2}, per_account=2)
    jobs = ([("facebook", f"fb-{n % 3}") for n in range(30)]
            + [("instagram", f"ig-{n % 2}") for n in range(20)]
            + [("linkedin", f"li-{n % 4}") for n in range(20)])
    random.Random(3).shuffle(jobs)
    now: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def job(platform: str, account: str) -> None:
        async with limits.slot(platform, account, priority=len(account) % 2):
            keys = ("total", f"platform:{platform}", f"account:{account}")
            for key in keys:
                now[key] += 1
                peak[key] = max(peak[key], now[key])
            await asyncio.sleep(0.002)
            for key in keys:
                now[key] -= 1

    await asyncio.gather(*(job(p, a) for p, a in jobs))

    assert peak["total"] == 5
    assert peak["platform:facebook"] == 3
    assert peak["platform:instagram"] == 2
    account_peaks = {k: v for k, v in peak.items() if k.startswith("account:")}
    assert len(account_peaks) == 9
    assert max(account_peaks.values()) == 2
    assert all(v <= 2 for v in account_peaks.values())
    assert sum(now.values()) == 0


async def test_slot_without_account_uses_platform_and_total() -> None:
    """Posts with no account still obey their platform's cap."""
    limits = Limits(total=10, per_platform={"youtube": 2}, per_account=1)
    active = peak = 0

    async def job() -> None:
        nonlocal active, peak
        async with limits.slot("youtube", None):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.001)
            active -= 1

    await asyncio.gather(*(job() for _ in range(12)))

    assert peak == 2


async def test_idle_account_limiters_are_removed() -> None:
    """After many accounts come and go, no per-account limiter is kept."""
    limits = Limits(total=8, per_platform={"facebook": 4}, per_account=1)

    async def job(account: str) -> None:
        async with limits.slot("facebook", account):
            await asyncio.sleep(0)

    await asyncio.gather(*(job(f"acct-{n}") for n in range(500)))

    assert limits._accounts == {}
    assert limits.total.idle
    assert limits.platforms["facebook"].idle


async def test_busy_account_limiter_is_kept_until_idle() -> None:
    """A holder leaving does not drop the limiter others wait on: the account cap holds."""
    limits = Limits(total=4, per_platform={}, per_account=1)
    gates = {name: asyncio.Event() for name in ("first", "second", "third")}
    inside: list[str] = []

    async def job(name: str) -> None:
        async with limits.slot("facebook", "shared"):
            inside.append(name)
            await gates[name].wait()
            inside.remove(name)

    first = asyncio.create_task(job("first"))
    await settle()
    second = asyncio.create_task(job("second"))
    await settle()
    assert inside == ["first"]

    gates["first"].set()
    await settle()
    assert inside == ["second"]
    third = asyncio.create_task(job("third"))  # same account, while second holds it
    await settle()
    assert inside == ["second"]
    assert "shared" in limits._accounts

    gates["second"].set()
    gates["third"].set()
    await asyncio.gather(first, second, third)

    assert inside == []
    assert limits._accounts == {}


async def test_account_limiter_removed_after_failing_body() -> None:
    """A slot whose body raises still drops its idle account limiter."""
    limits = Limits(total=4, per_platform={"facebook": 2}, per_account=1)

    async def job(account: str) -> None:
        async with limits.slot("facebook", account):
            raise RuntimeError("adapter crashed")

    results = await asyncio.gather(*(job(f"acct-{n}") for n in range(20)),
                                   return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in results)
    assert limits.total.idle
    assert limits._accounts == {}

"""`python -m benchmarks.engines ENGINE URL N POSTGRES_PID`: load N no-op jobs (untimed),
ANALYZE and CHECKPOINT, drain them (timed, with this process's, Postgres's and the machine's
CPU), check every job is done."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from benchmarks import engine_others as others
from benchmarks import engine_ours as ours
from benchmarks.common import emit_result, settle
from benchmarks.procs import CpuMeter
from publisher import eventloop

SETTLE_SECONDS = 0.5
Load = Callable[[str, int], Awaitable[None]]
Drain = Callable[[str], Awaitable[Any]]


async def _ours_done(url: str, n: int) -> tuple[int, str]:
    return await ours.check(url, n)


def _counted(count: Callable[[asyncpg.Connection], Awaitable[int]]
             ) -> Callable[[str, int], Awaitable[tuple[int, str]]]:
    async def check(url: str, n: int) -> tuple[int, str]:
        conn = await asyncpg.connect(url)
        try:
            done = await count(conn)
        finally:
            await conn.close()
        return done, "" if done == n else f"{done} of {n} jobs done"
    return check


ENGINES: dict[str, tuple[Load, Drain, Callable[[str, int], Awaitable[tuple[int, str]]]]] = {
    "publisher": (ours.load, ours.drain, _ours_done),
    "procrastinate": (others.procrastinate_load, others.procrastinate_drain,
                      _counted(others.procrastinate_done)),
    "pgqueuer": (others.pgqueuer_load, others.pgqueuer_drain, _counted(others.pgqueuer_done)),
    "plain-sql": (others.sql_load, others.sql_drain, _counted(others.sql_done)),
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _main(engine: str, url: str, n: int, postgres_pid: int) -> dict[str, Any]:
    load, drain, check = ENGINES[engine]
    await load(url, n)
    await settle(url)
    meter = CpuMeter({"postgres": postgres_pid})
    meter.start()
    cpu, clock = _cpu(), time.perf_counter()
    extra = await drain(url)
    seconds, cpu = time.perf_counter() - clock, _cpu() - cpu
    await asyncio.sleep(SETTLE_SECONDS)   # closed backends exit and are reaped: counted
    others = meter.stop()
    done, problem = await check(url, n)
    return {"engine": engine, "n": n, "seconds": seconds, "cpu": cpu, "done": done,
            "problem": problem, "statements": extra if isinstance(extra, int) else None,
            "postgres_cpu": others["postgres"],
            "machine_cores": others["machine busy"] / (seconds + SETTLE_SECONDS)}


def main() -> None:
    engine, url, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    emit_result(eventloop.run(_main(engine, url, n, pid)))  # every engine on the same loop


if __name__ == "__main__":
    main()

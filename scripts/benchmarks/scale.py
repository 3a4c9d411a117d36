"""scale-100k: 100,000 posts over 20,000 accounts, latency 200 ms, per-account limits.

The publisher runs as K separate processes (benchmarks.worker: the wiring of
`python -m publisher run`) against one database and one simulator process, so its CPU and
peak memory are measured apart from the simulator's and Postgres's. `--workers 1,2,4` runs
each K on a fresh database, one column each.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from benchmarks.common import (
    ChildResult,
    Server,
    Stopwatch,
    accounting,
    bench_settings,
    child_env,
    fresh_database,
    post_counts,
    run_child,
    seed_for_simulator,
    seeding_note,
    settle,
    sim_config,
    sim_stats,
    why_not_published,
)
from benchmarks.procs import CpuMeter, peak_rss_mb
from benchmarks.table import Table, cell
from publisher.seeding import SeedPlan
from publisher.settings import PLATFORMS
from publisher.simulator.server import SimulatorProcess

LATENCY = 0.2
PLATFORM_CONCURRENCY = 2000
ACCOUNT_CONCURRENCY = 2
TARGET_SECONDS = 300.0       # for 100,000 posts
TARGET_CPU_MS = 0.5
TARGET_STATEMENTS = 30       # per 1,000 posts
TARGET_RSS_MB = 200.0
MEDIA_BYTES = 65_536


@dataclass
class Measured:
    workers: int
    concurrency: int
    wall: float
    children: list[ChildResult]
    cpu: dict[str, float]
    sim_rss: float
    stats: dict[str, Any]
    problems: list[str]


async def _one(server: Server, platforms: Sequence[str], posts: int, accounts: int,
               workers: int, concurrency: int) -> Measured:
    url = await fresh_database(server, f"bench_scale_{workers}")
    per_worker = max(1, concurrency // workers)
    async with SimulatorProcess(sim_config(LATENCY)) as sim:
        assert sim.process is not None
        conn = await asyncpg.connect(url)
        try:
            await seed_for_simulator(
                conn, SeedPlan(posts=posts, accounts=accounts, platforms=platforms), sim.url,
                media_bytes=MEDIA_BYTES)
            seeded = Counter({r["platform"]: int(r["n"]) for r in await conn.fetch(
                "select platform, count(*) as n from public.created_content group by 1")})
        finally:
            await conn.close()
        await settle(url)
        settings = bench_settings(
            url, sim.url, max_concurrency=per_worker, account_concurrency=ACCOUNT_CONCURRENCY,
            platform_concurrency=dict.fromkeys(PLATFORMS, PLATFORM_CONCURRENCY))
        meter = CpuMeter({"simulator": sim.process.pid, "postgres": server.pid or 0})
        meter.start()
        clock = Stopwatch()
        children = await asyncio.gather(*[
            run_child(["-m", "benchmarks.worker"],
                      child_env(replace(settings, worker_id=f"bench-{workers}-{i}")),
                      server.folder / f"scale-{workers}-{i}.log")
            for i in range(workers)])
        wall = clock.seconds
        await asyncio.sleep(0.5)          # closed backends exit and are reaped: counted
        cpu = meter.stop()
        sim_rss = peak_rss_mb(sim.process.pid)
        stats = await sim_stats(sim.url)
    problems = [f"worker {i} exited {c.returncode}: {c.tail()}"
                for i, c in enumerate(children) if c.returncode or c.result is None]
    problems += accounting(seeded, await post_counts(url), stats)
    if problems:
        problems += await why_not_published(url)
    return Measured(workers, per_worker, wall, children, cpu, sim_rss, stats, problems)


def _by_function(m: Measured) -> Counter[str]:
    total: Counter[str] = Counter()
    for child in m.children:
        if child.result:
            total.update(child.result.get("by_function", {}))
    return total


def _sum(m: Measured, key: str) -> float:
    return sum(float(c.result[key]) for c in m.children if c.result)


async def run(server: Server, platforms: Sequence[str], size: float, workers: Sequence[int],
              concurrency: int) -> int:
    posts, accounts = max(1, round(100_000 * size)), max(1, round(20_000 * size))
    target_wall = TARGET_SECONDS * size
    runs = [await _one(server, platforms, posts, accounts, k, concurrency) for k in workers]
    table = Table(f"scale-100k: {posts:,} posts over {accounts:,} accounts, latency "
                  f"{LATENCY * 1000:.0f} ms, platforms {', '.join(platforms)}",
                  columns=[f"{m.workers} worker{'s' if m.workers > 1 else ''}" for m in runs])
    table.add("MAX_CONCURRENCY per worker (platforms / account)",
              *[f"{m.concurrency} ({PLATFORM_CONCURRENCY} / {ACCOUNT_CONCURRENCY})"
                for m in runs])
    table.add("wall time", *[cell(f"{m.wall:.1f} s", m.wall <= target_wall) for m in runs],
              target=f"<= {target_wall:g} s")
    table.add("posts/s", *[f"{posts / m.wall:,.0f}" for m in runs])
    table.add("publisher CPU per post (runs)",
              *[cell(f"{_sum(m, 'run_cpu') / posts * 1000:.2f} ms",
                     _sum(m, "run_cpu") / posts * 1000 <= TARGET_CPU_MS) for m in runs],
              target=f"<= {TARGET_CPU_MS} ms")
    table.add("publisher CPU per post (whole processes)",
              *[f"{_sum(m, 'process_cpu') / posts * 1000:.2f} ms" for m in runs])
    table.add("publisher peak memory (largest process)",
              *[cell(f"{max(float(c.result['peak_rss_mb']) for c in m.children if c.result):.0f}"
                     " MB", max(float(c.result["peak_rss_mb"]) for c in m.children
                                if c.result) <= TARGET_RSS_MB) if any(c.result for c in
                                                                      m.children) else "?"
                for m in runs],
              target=f"<= {TARGET_RSS_MB:.0f} MB")
    table.add("database statements per 1,000 posts",
              *[cell(f"{_sum(m, 'statements') / posts * 1000:.1f}",
                     _sum(m, "statements") / posts * 1000 <= TARGET_STATEMENTS) for m in runs],
              target=f"<= {TARGET_STATEMENTS}")
    table.add("statements per 1,000 posts by function",
              *[", ".join(f"{name} {n / posts * 1000:.1f}" for name, n in
                          _by_function(m).most_common(4)) for m in runs])
    table.add("CPU s: publisher / simulator / postgres",
              *[f"{_sum(m, 'process_cpu'):.0f} / {m.cpu['simulator']:.0f} / "
                f"{m.cpu['postgres']:.0f}" for m in runs])
    table.add("cores busy (machine, of 2) / simulator alone",
              *[f"{m.cpu['machine busy'] / (m.wall + 0.5):.2f} / "
                f"{m.cpu['simulator'] / m.wall:.2f}"
                for m in runs])
    table.add("simulator calls/s / peak memory",
              *[f"{int(m.stats.get('calls', 0)) / m.wall:,.0f} / {m.sim_rss:.0f} MB"
                for m in runs])
    table.add("simulator: accepted / duplicates",
              *[f"{m.stats.get('accepted')} / {m.stats.get('duplicates')}" for m in runs],
              target=f"{posts} / 0")
    table.note("wall time: from starting the worker processes to the last one's exit "
               "(includes their start-up); CPU per post (runs) is Publisher.run + the run "
               "summary, summed over workers; whole processes adds imports and start-up")
    table.note(seeding_note(MEDIA_BYTES))
    table.note("the simulator is one process on the same 2 cores: 'simulator alone' near "
               "1.0 means it is saturated and bounds the rate")
    for m in runs:
        for problem in m.problems:
            table.problem(f"{m.workers} worker(s): {problem}")
    return table.print()

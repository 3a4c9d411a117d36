"""seed-500: 100 accounts x 5 posts, simulator latency 2 s, default platform limits.

The bound: a platform with concurrency c that must make U latency-bearing calls (each
post type makes a measured number of them, see calibrate.py) cannot finish before
ceil(U / c) x latency; likewise an account (ACCOUNT_CONCURRENCY). The run's bound is the
largest of these; the target is a wall time within 5 % of it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

import asyncpg

from benchmarks.calibrate import Calls, latency_calls
from benchmarks.common import (
    CIPHER,
    Server,
    Stopwatch,
    accounting,
    bench_settings,
    fresh_database,
    post_counts,
    seed_for_simulator,
    seeding_note,
    sim_config,
    sim_stats,
    why_not_published,
)
from benchmarks.table import Table, cell
from publisher.app import finish_run, http_client
from publisher.platforms import PlatformAdapter
from publisher.run import Publisher
from publisher.seeding import SeedPlan
from publisher.simulator.server import SimulatorProcess
from publisher.store.postgres import PostgresTransport
from publisher.store.store import Store

TARGET_RATIO = 1.05


async def run(server: Server, adapters: Mapping[str, PlatformAdapter], size: float) -> int:
    platforms = sorted(adapters)
    accounts = max(len(platforms), round(100 * size))
    posts = max(len(platforms), round(500 * size))
    latency = 2.0 if size >= 1 else max(0.05, round(2.0 * size, 3))
    calls = await latency_calls(server, adapters, platforms)

    url = await fresh_database(server, "bench_seed500")
    async with SimulatorProcess(sim_config(latency)) as sim:
        settings = bench_settings(url, sim.url)
        conn = await asyncpg.connect(url)
        try:
            await seed_for_simulator(
                conn, SeedPlan(posts=posts, accounts=accounts, platforms=platforms), sim.url)
            mix = await conn.fetch("select platform, post_type, account_id, count(*) as n "
                                   "from public.created_content group by 1, 2, 3")
        finally:
            await conn.close()
        store = Store(await PostgresTransport.connect(url))
        try:
            async with http_client(settings) as client:
                publisher = Publisher(settings, store, client, adapters, CIPHER)
                clock = Stopwatch()
                summary = await publisher.run()
                wall = clock.seconds
                await finish_run(store, summary)
        finally:
            await store.close()
        stats = await sim_stats(sim.url)
    counts = await post_counts(url)

    table = Table(f"seed-500: {posts} posts over {accounts} accounts, latency {latency:g} s, "
                  f"platforms {', '.join(platforms)}")
    units: Counter[str] = Counter()
    per_account: Counter[str] = Counter()
    seeded: Counter[str] = Counter()
    by_type: Counter[tuple[str, str]] = Counter()
    for row in mix:
        key = (row["platform"], row["post_type"])
        used = calls.get(key, Calls(1, "?")).calls
        units[row["platform"]] += used * row["n"]
        per_account[str(row["account_id"])] += used * row["n"]
        seeded[row["platform"]] += row["n"]
        by_type[key] += row["n"]
    bounds = {}
    for platform in platforms:
        concurrency = settings.platform_concurrency.get(platform, 1)
        bounds[platform] = math.ceil(units[platform] / concurrency) * latency
        types = ", ".join(f"{t} {n}x{calls[(p, t)].calls}" for (p, t), n in sorted(by_type.items())
                          if p == platform)
        table.add(f"{platform}: posts / calls / concurrency / bound",
                  f"{seeded[platform]} / {units[platform]} / {concurrency} / "
                  f"{bounds[platform]:.1f} s", target=f"types: posts x calls: {types}")
    account_bound = max((math.ceil(u / settings.account_concurrency) * latency
                         for u in per_account.values()), default=0.0)
    bound = max([*bounds.values(), account_bound])
    ratio = wall / bound if bound else float("inf")
    table.add("bound from accounts (ACCOUNT_CONCURRENCY "
              f"{settings.account_concurrency})", f"{account_bound:.1f} s")
    table.add("theoretical bound", f"{bound:.1f} s")
    table.add("wall time (Publisher.run)", f"{wall:.2f} s")
    table.add("wall / bound", cell(f"{ratio:.3f}", ratio <= TARGET_RATIO),
              target=f"<= {TARGET_RATIO:.2f}")
    table.add("simulator: accepted / duplicates",
              f"{stats.get('accepted')} / {stats.get('duplicates')}", target="all / 0")
    table.add("database statements", str(store.statements))
    table.note("calls = latency-bearing simulator calls (the simulator delays only publishing "
               "calls; measured per post type by publishing one of each alone): "
               + "; ".join(f"{p}/{t} {c.calls} ({c.status})"
                           for (p, t), c in sorted(calls.items())))
    table.note(seeding_note())
    table.note("bound = max over platforms of ceil(calls_p / concurrency_p) x latency, and "
               "over accounts of ceil(calls_a / ACCOUNT_CONCURRENCY) x latency; the simulator "
               "jitters latency +/-10 %")
    for problem in accounting(seeded, counts, stats):
        table.problem(problem)
    if table.problems:
        for line in await why_not_published(url):
            table.problem(line)
    return table.print()

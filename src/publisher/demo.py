"""`publisher demo`: embedded database + platform simulator + seeded posts, one run.

Shows a new user the whole thing working in one command, and prints what happened:
published / failed / expired counts, wall time, posts per minute, and what the simulator
saw (accepted posts and duplicates: the latter must be 0).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import replace
from typing import Any

import asyncpg

from publisher.app import finish_run, http_client, load_cipher
from publisher.platforms import build_adapters
from publisher.run import Publisher
from publisher.seeding import SeedPlan, seed
from publisher.settings import Settings, simulator_endpoints
from publisher.simulator.server import SimulatorProcess
from publisher.simulator.state import SimConfig
from publisher.store.embedded import embedded_url
from publisher.store.migrations import apply_migrations
from publisher.store.postgres import PostgresTransport
from publisher.store.store import Store

DEMO_DATABASE = "publisher_demo"


async def fresh_demo_database(settings: Settings) -> str:
    """A clean database for the demo inside the embedded server (the user's data is kept)."""
    admin_url = await embedded_url(settings.data_dir, "postgres")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"drop database if exists {DEMO_DATABASE} with (force)")
    finally:
        await conn.close()
    url = await embedded_url(settings.data_dir, DEMO_DATABASE)
    await apply_migrations(url)
    return url


async def run_demo(settings: Settings, *, posts: int, accounts: int, latency: float,
                   fault_rate: float) -> int:
    if settings.store_kind != "embedded":
        print("publisher demo uses the embedded database; unset SUPABASE_URL/DATABASE_URL",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    url = await fresh_demo_database(settings)
    # The demo's YouTube accounts share one token, so the simulator sees them as one channel.
    config = SimConfig(latency=latency, fault_rate=fault_rate, youtube_daily_uploads=posts + 10)
    async with SimulatorProcess(config) as sim:
        simulator_url = sim.url
        demo_settings = replace(
            settings, database_url=url, simulator_url=simulator_url,
            endpoints=simulator_endpoints(simulator_url),
            run_deadline_seconds=max(settings.run_deadline_seconds, 3600))
        cipher = load_cipher(settings)
        adapters = build_adapters()
        conn = await asyncpg.connect(url)
        try:
            seeded = await seed(conn, SeedPlan(posts=posts, accounts=accounts,
                                               platforms=sorted(adapters),
                                               expired=max(1, posts // 100),
                                               local_time=min(4, posts),
                                               media_base=f"{simulator_url}/_media"), cipher)
            raised = await raise_quotas_for_demo(conn, posts)
        finally:
            await conn.close()
        if raised:
            print(f"demo: raised these quotas to fit {posts} posts: {', '.join(raised)}",
                  file=sys.stderr)
        print(f"seeded {seeded['posts']} due posts (+{seeded['expired']} over 24 h late, "
              f"+{seeded['local_time']} in local time zones) over {seeded['accounts']} "
              f"accounts; simulator at {simulator_url}, latency {latency:g}s, "
              f"fault rate {fault_rate:g}", file=sys.stderr)
        store = Store(await PostgresTransport.connect(url))
        try:
            async with http_client(demo_settings) as client:
                publisher = Publisher(demo_settings, store, client, adapters, cipher)
                total = seeded["posts"] + seeded["local_time"]
                progress = asyncio.create_task(_progress(publisher, total))
                summary = await publisher.run()
                progress.cancel()
                await finish_run(store, summary)
            sim_stats = await _simulator_stats(simulator_url, demo_settings)
            counts = await store.status()
        finally:
            await store.close()
    _print_report(summary.as_dict(), counts, sim_stats, time.monotonic() - started)
    return 0 if sim_stats.get("duplicates", 0) == 0 else 1


async def raise_quotas_for_demo(conn: asyncpg.Connection, posts: int) -> list[str]:
    """The documented caps (e.g. YouTube's 100 uploads a day) would hold most of a large demo
    back for a day; the demo database lifts them so the run shows publishing, not waiting."""
    rows = await conn.fetch(
        "update publish_quotas set max_posts = $1 where max_posts < $1 "
        "returning platform || ' ' || scope as name", posts)
    return [r["name"] for r in rows]


async def _progress(publisher: Publisher, total: int) -> None:
    if not sys.stderr.isatty():
        return
    while True:
        done = publisher.summary.finished
        width = 40
        filled = int(width * min(done, total) / max(total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} posts")
        sys.stderr.flush()
        await asyncio.sleep(0.2)


async def _simulator_stats(url: str, settings: Settings) -> dict[str, Any]:
    async with http_client(settings) as client:
        response = await client.get(f"{url}/_sim/stats")
        stats: dict[str, Any] = response.json()
        return stats


def _print_report(summary: dict[str, Any], status: dict[str, Any], sim: dict[str, Any],
                  total_seconds: float) -> None:
    by_status: dict[str, int] = {}
    for row in status.get("posts", []):
        by_status[row["status"]] = by_status.get(row["status"], 0) + int(row["count"])
    lines = [
        "",
        "demo finished",
        f"  published     {by_status.get('published', 0)}",
        f"  failed        {by_status.get('failed', 0)}",
        f"  expired       {by_status.get('expired', 0)}",
        f"  retrying      {by_status.get('retrying', 0)}",
        f"  needs_review  {by_status.get('needs_review', 0)}",
        f"  still due     {by_status.get('scheduled', 0)}",
        f"  run wall time {summary['wall_seconds']:.2f} s ({total_seconds:.2f} s with setup)",
        f"  posts/minute  {summary['posts_per_minute']:.0f}",
        f"  simulator     {sim.get('accepted', '?')} posts accepted, "
        f"{sim.get('duplicates', '?')} duplicates",
    ]
    print("\n".join(lines))

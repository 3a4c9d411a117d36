"""idle: the whole `python -m publisher run` process with nothing due, wall time.

Two ways to reach the database, both already running and migrated:
  * DATABASE_URL (what a deployment does; Supabase is the same code path plus rpc),
  * the embedded default (PUBLISHER_DATA_DIR: pgserver + the migration check each run).
The database holds not-yet-due posts, so the run does its real queries and finds nothing.
One more run under `python -X importtime` names the imports that dominate start-up.
"""

from __future__ import annotations

import asyncio
import statistics
import sys

import asyncpg

from benchmarks.common import Server, Stopwatch, bench_settings, child_env, fresh_database
from benchmarks.table import Table, cell
from publisher.seeding import SeedPlan, seed
from publisher.settings import PLATFORMS

TARGET_SECONDS = 1.0
FUTURE_POSTS = 1000


async def _seed_future(url: str, posts: int) -> None:
    from benchmarks.common import CIPHER

    conn = await asyncpg.connect(url)
    try:
        await seed(conn, SeedPlan(posts=posts, accounts=max(1, posts // 5),
                                  platforms=list(PLATFORMS)), CIPHER)
        await conn.execute("update public.created_content "
                           "set scheduled_at = now() + interval '1 day'")
    finally:
        await conn.close()


async def _once(env: dict[str, str], *flags: str) -> tuple[float, int, str]:
    clock = Stopwatch()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *flags, "-m", "publisher", "run", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    return clock.seconds, proc.returncode or 0, err.decode(errors="replace")


def _top_imports(importtime: str, count: int = 6) -> tuple[float, list[str]]:
    """(all imports in ms, the slowest imports made directly by the entry point)."""
    rows, total = [], 0
    for line in importtime.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if not cumulative.strip().isdigit():
            continue
        depth = len(name) - len(name.lstrip()) - 1       # one space, then 2 per level
        if depth == 0:
            total += int(cumulative)
            rows.append((int(cumulative), name.strip()))
    rows.sort(reverse=True)
    return total / 1000, [f"{name} {us / 1000:.0f} ms" for us, name in rows[:count]]


async def run(server: Server, size: float, runs: int) -> int:
    url = await fresh_database(server, "publisher")    # the embedded default's database name
    await _seed_future(url, max(5, round(FUTURE_POSTS * size)))
    direct = child_env(bench_settings(url), LOG_LEVEL="WARNING")
    embedded = {k: v for k, v in direct.items() if k not in ("DATABASE_URL", "ENCRYPTION_KEY")}
    embedded["PUBLISHER_DATA_DIR"] = str(server.folder)
    table = Table(f"idle: `python -m publisher run` with nothing due, {runs} runs each",
                  columns=["min", "median", "max"],
                  ok_message="correct (every run exited 0)")
    for label, env in (("DATABASE_URL", direct), ("embedded (PUBLISHER_DATA_DIR)", embedded)):
        await _once(env)                                   # warm the file cache
        times = []
        for _ in range(runs):
            seconds, code, err = await _once(env)
            if code:
                table.problem(f"{label}: exited {code}: {err.strip()[-500:]}")
            times.append(seconds)
        table.add(label, f"{min(times):.3f} s",
                  cell(f"{statistics.median(times):.3f} s",
                       statistics.median(times) <= TARGET_SECONDS),
                  f"{max(times):.3f} s", target=f"median <= {TARGET_SECONDS:g} s")
    _, _, report = await _once(direct, "-X", "importtime")
    total, slowest = _top_imports(report)
    table.note(f"imports: {total:.0f} ms under python -X importtime (which slows them); "
               f"the slowest, with what they import: {', '.join(slowest)}")
    interpreter, _, _ = await _bare_python()
    table.note(f"a bare `python -c pass` takes {interpreter:.3f} s on this machine now")
    return table.print()


async def _bare_python() -> tuple[float, int, str]:
    clock = Stopwatch()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await proc.wait()
    return clock.seconds, proc.returncode or 0, ""

"""Shared pieces: the embedded Postgres server, fresh databases, settings, child processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx

from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.seeding import SeedPlan, seed
from publisher.settings import PLATFORMS, Settings, simulator_endpoints
from publisher.simulator.state import SimConfig
from publisher.store.migrations import apply_migrations

RESULT_PREFIX = "BENCH_RESULT "
SCRIPTS_DIR = Path(__file__).resolve().parents[1]

KEY = generate_key()                      # one key per benchmark process, passed to children
CIPHER = TokenCipher(parse_key(KEY))


@dataclass(frozen=True)
class Server:
    """An embedded Postgres started for the benchmarks; its data lives in folder/pgdata, so
    PUBLISHER_DATA_DIR=folder makes `python -m publisher` use this very server."""

    url: str             # the maintenance database
    pid: int | None      # the postmaster
    folder: Path

    def database_url(self, name: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path="/" + quote(name)))


@contextlib.contextmanager
def postgres_server() -> Iterator[Server]:
    """A fresh server in a temporary folder (about 7 s of initdb); stopped and deleted after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # platformdirs: XDG_RUNTIME_DIR unset
        import pgserver

    folder = Path(tempfile.mkdtemp(prefix="publisher-bench-"))
    server = pgserver.get_server(str(folder / "pgdata"),  # type: ignore[attr-defined]
                                 cleanup_mode="delete")
    pid = server.get_pid()
    try:
        yield Server(url=server.get_uri("postgres"), pid=pid, folder=folder)
    finally:
        server.cleanup()
        _stop_leftover(pid)
        shutil.rmtree(folder, ignore_errors=True)


def _stop_leftover(pid: int | None) -> None:
    """pgserver leaves the server running when a child died holding a handle: stop ours."""
    import psutil  # type: ignore[import-untyped]

    if pid is None or not psutil.pid_exists(pid):
        return
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if proc.name() == "postgres":
            proc.terminate()
            proc.wait(10)


async def fresh_database(server: Server, name: str, *, migrate: bool = True) -> str:
    """Drops and creates database `name` on the server, migrated; returns its URL."""
    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    url = server.database_url(name)
    if migrate:
        await apply_migrations(url)
    return url


async def settle(url: str) -> None:
    """Untimed, between loading and the timed part (as in anchor-bench.md)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("analyze")
        await conn.execute("checkpoint")
    finally:
        await conn.close()


def bench_settings(database_url: str, simulator_url: str | None = None,
                   **changes: Any) -> Settings:
    base = Settings(database_url=database_url, encryption_key=KEY, run_deadline_seconds=3600,
                    log_level="WARNING")
    if simulator_url:
        base = replace(base, simulator_url=simulator_url,
                       endpoints=simulator_endpoints(simulator_url))
    return replace(base, **changes)


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment `python -m publisher` (or a benchmark child) reads these settings from."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SUPABASE_", "DATABASE_URL", "SIMULATOR_URL"))}
    env.update({
        "DATABASE_URL": settings.database_url or "",
        "ENCRYPTION_KEY": KEY,
        "RUN_DEADLINE_SECONDS": str(settings.run_deadline_seconds),
        "MAX_CONCURRENCY": str(settings.max_concurrency),
        "ACCOUNT_CONCURRENCY": str(settings.account_concurrency),
        "LOG_LEVEL": settings.log_level,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SCRIPTS_DIR),
                                                     os.environ.get("PYTHONPATH")])),
    })
    for platform in PLATFORMS:
        env[f"{platform.upper()}_CONCURRENCY"] = str(settings.platform_concurrency[platform])
    if settings.simulator_url:
        env["SIMULATOR_URL"] = settings.simulator_url
    env.update(extra)
    return env


@dataclass(frozen=True)
class ChildResult:
    returncode: int
    result: dict[str, Any] | None
    log: Path

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def run_child(args: Sequence[str], env: Mapping[str, str], log: Path) -> ChildResult:
    """Runs `python ARGS`; its stderr goes to `log`, its last BENCH_RESULT line is parsed."""
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=err)
        try:
            out, _ = await proc.communicate()
        except BaseException:            # interrupted: the child must not outlive us
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await asyncio.shield(proc.wait())
            raise
    result = None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line.removeprefix(RESULT_PREFIX))
    return ChildResult(proc.returncode or 0, result, log)


def emit_result(result: Mapping[str, Any]) -> None:
    """What a child prints for run_child."""
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)


async def sim_stats(simulator_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        stats: dict[str, Any] = (await client.get(f"{simulator_url}/_sim/stats")).json()
        return stats


async def post_counts(url: str) -> dict[str, Counter[str]]:
    """platform -> status -> posts."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("select platform, status, count(*) as n "
                                "from public.created_content group by 1, 2")
    finally:
        await conn.close()
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        counts.setdefault(row["platform"], Counter())[row["status"]] = int(row["n"])
    return counts


async def why_not_published(url: str, limit: int = 5) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "select platform, post_type, status, left(coalesce(last_error, ''), 160) as error, "
            "count(*) as n from public.created_content where status <> 'published' "
            "group by 1, 2, 3, 4 order by n desc limit $1", limit)
    finally:
        await conn.close()
    return [f"{r['n']} x {r['platform']}/{r['post_type']} {r['status']}: {r['error']}"
            for r in rows]


def accounting(seeded: Mapping[str, int], counts: Mapping[str, Counter[str]],
               stats: Mapping[str, Any]) -> list[str]:
    """What is wrong, if anything: every seeded post published once, as the simulator saw."""
    problems = []
    accepted = stats.get("by_platform", {})
    for platform, expected in sorted(seeded.items()):
        states = counts.get(platform, Counter())
        if states.get("published", 0) != expected:
            problems.append(f"{platform}: {states.get('published', 0)} of {expected} posts "
                            f"published in the database ({dict(states)})")
        if int(accepted.get(platform, 0)) != expected:
            problems.append(f"{platform}: the simulator accepted {accepted.get(platform, 0)} "
                            f"posts, {expected} were seeded")
    if int(stats.get("duplicates", 0)):
        problems.append(f"the simulator counted {stats['duplicates']} duplicate posts")
    return problems


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


async def seed_for_simulator(conn: asyncpg.Connection, plan: SeedPlan, simulator_url: str,
                             *, media_bytes: int | None = None) -> dict[str, int]:
    """seed() with media on the simulator's media host (as the demo does), then the rolling
    quotas lifted (publisher.demo.raise_quotas_for_demo): YouTube's 100 uploads a day per
    project would defer all but 100 posts, and these benchmarks measure throughput.
    media_bytes: shrink every media file to this size (scale-100k: 25,000 videos of 2 MB
    would turn it into a benchmark of streaming media through localhost)."""
    from publisher.demo import raise_quotas_for_demo

    seeded = await seed(conn, replace(plan, media_base=f"{simulator_url}/_media"), CIPHER)
    if media_bytes is not None:
        await conn.execute(
            "update public.created_content set media_urls = array("
            "  select regexp_replace(u, 'size=[0-9]+', 'size=' || $1) from unnest(media_urls) u)"
            " where cardinality(media_urls) > 0", str(media_bytes))
    await raise_quotas_for_demo(conn, 1_000_000_000)
    return seeded


def sim_config(latency: float) -> SimConfig:
    """The simulator for throughput: its platform quotas (YouTube's uploads a day, Instagram's
    posts a day) lifted like publish_quotas, so nothing waits for tomorrow."""
    return SimConfig(latency=latency, youtube_daily_uploads=1_000_000_000,
                     instagram_quota=1_000_000_000)


def seeding_note(media_bytes: int | None = None) -> str:
    size = (f"shrunk to {media_bytes // 1024} KiB each" if media_bytes
            else "seeding's sizes (images 200 KB, videos 2 MB)")
    return ("seeded with publisher.seeding (POST_MIX), media on the simulator's media host, "
            f"{size}; publish_quotas and the simulator's daily quotas lifted")

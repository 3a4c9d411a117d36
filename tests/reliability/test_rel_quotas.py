"""Publishing quotas across concurrent runner processes: never exceeded, the rest deferred."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import asyncpg
import relkit

SETTINGS = {"LEASE_SECONDS": 60, "HTTP_TIMEOUT_SECONDS": 10, "FACEBOOK_CONCURRENCY": 16,
            "ACCOUNT_CONCURRENCY": 4, "RUN_DEADLINE_SECONDS": 60}


async def _set_quota(conn: asyncpg.Connection, max_posts: int, window_seconds: int) -> None:
    await conn.execute(
        "insert into publish_quotas (platform, scope, post_types, max_posts, window_seconds) "
        "values ('facebook', 'account', null, $1, $2) on conflict (platform, scope) do update "
        "set post_types = null, max_posts = $1, window_seconds = $2", max_posts, window_seconds)


def _runners(database_url: str, sim: str, tmp: str, name: str, n: int) -> list[relkit.Runner]:
    return [relkit.Runner(relkit.runner_env(database_url, sim, f"{name}-{i}", **SETTINGS),
                          Path(tmp)) for i in range(n)]


async def test_concurrent_runners_never_exceed_an_account_quota(database_url: str) -> None:
    """5 posts per account per hour, 15 due each, 3 runners at once: exactly 5 go out."""
    conn = await asyncpg.connect(database_url)
    try:
        await _set_quota(conn, 5, 3600)
        accounts = await relkit.seed_facebook(conn, posts=60, accounts=4, tag="quota")
        with tempfile.TemporaryDirectory() as tmp:
            async with relkit.simulator(relkit.SimConfig(latency=0.02)) as sim:
                codes = await relkit.run_all(_runners(database_url, sim, tmp, "quota", 3))
                assert codes == [0, 0, 0]
                records = await relkit.sim_get(sim, "/_sim/posts")
                audit = await relkit.audit(conn, sim)
        per_page: dict[str, int] = {}
        for record in records:
            per_page[record["account"]] = per_page.get(record["account"], 0) + 1
        assert sorted(per_page.values()) == [5, 5, 5, 5]
        assert audit.duplicates == 0
        assert audit.violations == []
        assert dict(audit.by_status) == {"published": 20, "scheduled": 40}
        for account in accounts:
            reserved = await conn.fetch("select reserved_at from quota_reservations "
                                        "where account_id = $1 order by reserved_at", account)
            assert len(reserved) == 5
            # Held back: not failed, no attempt used, due at the window's next free slot
            # (when the oldest of the five reservations leaves the hour).
            held = await conn.fetch(
                "select attempts, last_error, extract(epoch from not_before - $2::timestamptz) "
                "as after_oldest from created_content where account_id = $1 "
                "and status = 'scheduled'", account, reserved[0]["reserved_at"])
            assert len(held) == 10
            for row in held:
                assert row["attempts"] == 0
                assert "waiting for quota" in row["last_error"]
                assert abs(float(row["after_oldest"]) - 3600) < 1.0
    finally:
        await conn.close()


async def test_deferred_posts_go_out_in_later_runs_within_a_two_second_window(
        database_url: str) -> None:
    """3 posts per account per 2 s: 9 per account go out over later runs, never 4 in 2 s."""
    conn = await asyncpg.connect(database_url)
    try:
        await _set_quota(conn, 3, 2)
        await relkit.seed_facebook(conn, posts=27, accounts=3, tag="window")
        rounds = 0
        with tempfile.TemporaryDirectory() as tmp:
            async with relkit.simulator(relkit.SimConfig(latency=0.01)) as sim:
                deadline = time.monotonic() + 60
                while await relkit.count(conn, "status <> 'published'"):
                    assert time.monotonic() < deadline, "deferred posts never went out"
                    rounds += 1
                    codes = await relkit.run_all(_runners(database_url, sim, tmp,
                                                          f"window{rounds}", 2))
                    assert codes == [0, 0]
                    wait = await conn.fetchval(
                        "select extract(epoch from min(not_before) - now())::float8 "
                        "from created_content where status = 'scheduled'")
                    await asyncio.sleep(max(0.0, wait or 0.0))
                audit = await relkit.audit(conn, sim)
        assert audit.violations == []
        assert audit.duplicates == 0
        assert dict(audit.by_status) == {"published": 27}
        assert rounds >= 3  # 9 posts at 3 per window need at least three windows
        # No 2-second window of any account holds more than 3 reservations.
        worst = await conn.fetchval(
            "select max(n) from (select (select count(*) from quota_reservations r2 "
            "where r2.account_id = r.account_id and r2.reserved_at <= r.reserved_at "
            "and r2.reserved_at > r.reserved_at - interval '2 seconds') as n "
            "from quota_reservations r) w")
        assert worst == 3
        spans = await conn.fetch(
            "select extract(epoch from max(published_at) - min(published_at))::float8 as s "
            "from created_content group by account_id")
        assert all(row["s"] >= 3.9 for row in spans), [row["s"] for row in spans]
        assert await relkit.count(conn, "attempts <> 1") == 0
    finally:
        await conn.close()

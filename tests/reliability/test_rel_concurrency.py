"""Concurrent runner processes on one queue: every post goes out exactly once."""

from __future__ import annotations

import asyncpg
import relkit


async def test_three_runner_processes_publish_each_post_exactly_once(database_url: str) -> None:
    """3 `publisher run` processes, 2,000 posts: 2,000 at the simulator, 0 duplicates."""
    result = await relkit.concurrency(database_url, runners=3, posts=2000, accounts=100,
                                      latency=0.01)
    why = result.explain()
    assert result.notes["exit_codes"] == [0, 0, 0], why
    assert result.notes["crashed"] == [], why
    # Each runner really took part, and the claims add up to the posts: no post was
    # claimed by two runners at once.
    assert all(n > 0 for n in result.notes["claimed_by_runner"]), why
    assert sum(result.notes["claimed_by_runner"]) == 2000, why
    audit = result.audit
    assert audit.violations == [], why
    assert audit.sim_accepted == 2000, why
    assert audit.duplicates == 0, why
    assert dict(audit.by_status) == {"published": 2000}, why
    assert audit.lost == 0, why

    conn = await asyncpg.connect(database_url)
    try:
        assert await relkit.count(conn, "attempts <> 1") == 0
        assert await relkit.count(conn, "status in ('scheduled', 'publishing')") == 0
        # One applied attempt-log row per post, none fenced out.
        logged = await conn.fetchrow(
            "select count(*) filter (where applied) as applied, "
            "count(*) filter (where not applied) as fenced, count(distinct post_id) as posts "
            "from publish_attempts")
        assert dict(logged) == {"applied": 2000, "fenced": 0, "posts": 2000}
    finally:
        await conn.close()

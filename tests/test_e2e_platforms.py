"""Every post type on every platform, through the simulator: each published exactly once."""

from __future__ import annotations

import re
from collections import Counter

import asyncpg
import httpx

from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.seeding import POST_MIX, SeedPlan, seed
from publisher.settings import Settings, simulator_endpoints
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig

KEY = generate_key()
URLS = {
    "facebook": re.compile(r"^https://www\.facebook\.com/\S+$"),
    "instagram": re.compile(r"^https://www\.instagram\.com/(p|reel)/[\w-]+/$"),
    "linkedin": re.compile(r"^https://www\.linkedin\.com/feed/update/urn:li:share:\d+/$"),
    "youtube": re.compile(r"^https://www\.youtube\.com/watch\?v=[\w-]+$"),
}


async def test_every_post_type_on_every_platform_once(database_url: str,
                                                      db: asyncpg.Connection) -> None:
    """A mixed run: all published, one simulator record each, URLs of each platform's form."""
    platforms = sorted(POST_MIX)
    async with run_in_process(SimConfig(latency=0.0)) as sim:
        await seed(db, SeedPlan(posts=96, accounts=16, platforms=platforms,
                                media_base=f"{sim}/_media"), TokenCipher(parse_key(KEY)))
        settings = Settings(database_url=database_url, simulator_url=sim, encryption_key=KEY,
                            endpoints=simulator_endpoints(sim))
        summary = await run_once(settings)
        async with httpx.AsyncClient() as client:
            stats = (await client.get(f"{sim}/_sim/stats")).json()
            accepted = (await client.get(f"{sim}/_sim/posts")).json()

    rows = await db.fetch("select platform, post_type, status, platform_post_id, platform_url, "
                          "last_error from created_content")
    problems = [dict(r) for r in rows if r["status"] != "published"]
    assert problems == []
    assert summary.by_status == {"published": 96}
    assert (stats["accepted"], stats["duplicates"]) == (96, 0)
    assert Counter(p["platform"] for p in accepted) == Counter(r["platform"] for r in rows)
    types = {(r["platform"], r["post_type"]) for r in rows}
    assert types == {(p, t) for p, mix in POST_MIX.items() for t in mix}
    for row in rows:
        assert URLS[row["platform"]].match(row["platform_url"]), dict(row)
    ids = {(r["platform"], r["platform_post_id"]) for r in rows}
    assert ids == {(p["platform"], p["post_id"]) for p in accepted}
    # Instagram accounts of both login types published, each through its own host.
    logins = await db.fetch("select a.login_type, count(*) from created_content c "
                            "join social_accounts a on a.id = c.account_id "
                            "where c.platform = 'instagram' and c.status = 'published' "
                            "group by 1")
    assert {r["login_type"] for r in logins} == {"facebook", "instagram"}

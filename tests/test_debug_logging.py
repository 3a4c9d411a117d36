"""LOG_LEVEL=DEBUG adds the publisher's own lines (per HTTP request, per outcome, per store
call, claims per platform), never a token or a query string; at INFO none of them appear.

Each run is `python -m publisher run` in a child process against the simulator, reading the
JSON lines it writes to stderr, as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections import Counter
from typing import Any

import asyncpg
import httpx

from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.seeding import POST_MIX, SeedPlan, seed
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))
DEBUG_EVENTS = ("http_request", "outcome", "store_call")
# Settings the child must not inherit from the shell that started the tests.
OWN_VARS = ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "DATABASE_URL", "RENDER",
            "SIMULATOR_URL", "ENCRYPTION_KEY", "ENCRYPTION_KEYS_PREVIOUS", "WORKER_ID",
            "LOG_FORMAT", "LOG_LEVEL")


async def seed_posts(db: asyncpg.Connection, sim: str) -> tuple[list[int], list[str]]:
    """Posts on every platform, each account with its own token; (post ids, tokens)."""
    before = {r["id"] for r in await db.fetch("select id from created_content")}
    await seed(db, SeedPlan(posts=8, accounts=4, platforms=sorted(POST_MIX),
                            media_base=f"{sim}/_media"), CIPHER)
    tokens = []
    for row in await db.fetch("select id from social_accounts "
                              "where access_token_encrypted is not null"):
        token = f"EAAB{secrets.token_hex(16)}"
        tokens.append(token)
        await db.execute("update social_accounts set access_token_encrypted = $2 "
                         "where id = $1", row["id"], CIPHER.encrypt(token))
    ids = [r["id"] for r in await db.fetch("select id from created_content")
           if r["id"] not in before]
    return sorted(ids), tokens


async def run_publisher(database_url: str, sim: str, level: str) -> tuple[int, str]:
    """(exit code, stderr) of one `python -m publisher run` at this LOG_LEVEL."""
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARS}
    env.update(DATABASE_URL=database_url, SIMULATOR_URL=sim, ENCRYPTION_KEY=KEY,
               WORKER_ID=f"log-{level.lower()}", LOG_FORMAT="json", LOG_LEVEL=level)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "publisher", "run", env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 100)
    return process.returncode or 0, err.decode(errors="replace")


def entries(log: str) -> list[dict[str, Any]]:
    lines = [line for line in log.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), log[-2000:]
    return [json.loads(line) for line in lines]


async def test_debug_and_info_runs(database_url: str, db: asyncpg.Connection) -> None:
    """DEBUG: a line per request (no query string), per outcome, per statement, claims per
    platform, no token anywhere; INFO: none of those lines."""
    async with run_in_process(SimConfig(latency=0.0)) as sim:
        debug_posts, debug_tokens = await seed_posts(db, sim)
        debug_code, debug_log = await run_publisher(database_url, sim, "DEBUG")
        async with httpx.AsyncClient() as client:  # same texts again: not duplicates
            (await client.post(f"{sim}/_sim/reset")).raise_for_status()
        info_posts, info_tokens = await seed_posts(db, sim)
        info_code, info_log = await run_publisher(database_url, sim, "INFO")

    assert (debug_code, info_code) == (0, 0), (debug_log[-2000:], info_log[-2000:])
    statuses = {r["id"]: r["status"] for r in await db.fetch(
        "select id, status from created_content")}
    assert {statuses[i] for i in debug_posts + info_posts} == {"published"}

    both = debug_log + info_log
    for token in debug_tokens + info_tokens:
        for piece in (token, token[:12], token[-12:]):
            assert piece not in both

    debug = entries(debug_log)
    events = Counter(e.get("event") for e in debug)
    requests = [e for e in debug if e.get("event") == "http_request"]
    assert len(requests) >= len(debug_posts), events
    for line in requests:
        assert line["level"] == "debug"
        assert {"method", "host", "path", "status", "ms"} <= line.keys(), line
        assert "?" not in line["path"], line
        assert "?" not in line["message"], line
    assert "size=" not in debug_log  # the media URLs' query strings
    outcomes = {e["post_id"]: e for e in debug if e.get("event") == "outcome"}
    assert set(outcomes) == set(debug_posts)
    assert {(e["status"], e["outcome"]) for e in outcomes.values()} == {
        ("published", "published")}
    calls = [e for e in debug if e.get("event") == "store_call"]
    assert {"prepare_due_posts", "claim_due_posts", "sync_posts"} <= {
        e["function"] for e in calls}
    claimed: Counter[str] = Counter()
    for e in calls:
        claimed.update(e.get("claimed") or {})
    assert claimed == Counter(r["platform"] for r in await db.fetch(
        "select platform from created_content where id = any($1::bigint[])", debug_posts))
    assert not [e for e in debug if e["logger"].startswith(("httpx", "httpcore", "asyncio"))]

    info = entries(info_log)
    assert not [e for e in info if e.get("event") in DEBUG_EVENTS or e["level"] == "debug"]
    assert any(e.get("event") == "run_summary" for e in info)

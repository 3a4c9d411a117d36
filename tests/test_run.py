"""A whole run against real Postgres and the platform simulator."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest

from helpers import fetch_post, insert_account, insert_post, insert_posts, sql
from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext
from publisher.run import Publisher
from publisher.seeding import SeedPlan, seed
from publisher.settings import Settings, simulator_endpoints
from publisher.simulator.server import SimulatorProcess, run_in_process
from publisher.simulator.state import SimConfig
from publisher.store import Store

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    async with run_in_process(SimConfig(latency=0.0, seed=1)) as url:
        yield url


def settings_for(database_url: str, simulator_url: str, **changes: Any) -> Settings:
    base = Settings(database_url=database_url, simulator_url=simulator_url, encryption_key=KEY,
                    run_deadline_seconds=60, max_concurrency=32,
                    endpoints=simulator_endpoints(simulator_url))
    return replace(base, **changes)


async def sim_posts(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        posts: list[dict[str, Any]] = (await client.get(f"{url}/_sim/posts")).json()
        return posts


async def sim_stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        stats: dict[str, Any] = (await client.get(f"{url}/_sim/stats")).json()
        return stats


async def test_whole_run_publishes_every_post_once(database_url: str, db: asyncpg.Connection,
                                                   simulator: str) -> None:
    """Every seeded post is accepted once by the simulator and its row says so."""
    await seed(db, SeedPlan(posts=300, accounts=30, platforms=["facebook"]), CIPHER,
               rng=random.Random(3))
    summary = await run_once(settings_for(database_url, simulator))

    accepted = await sim_posts(simulator)
    assert len(accepted) == 300
    assert (await sim_stats(simulator))["duplicates"] == 0
    rows = await db.fetch("select status, platform_post_id, platform_url, attempts "
                          "from created_content")
    assert {r["status"] for r in rows} == {"published"}
    sim_ids = {p["post_id"] for p in accepted}
    assert {r["platform_post_id"] for r in rows} == sim_ids
    assert all(r["platform_url"].endswith(r["platform_post_id"]) for r in rows)
    assert await db.fetchval("select count(*) from publish_attempts where applied "
                             "and outcome = 'published'") == 300
    run = await db.fetchrow("select summary from publisher_runs")
    assert json.loads(run["summary"])["by_status"] == {"published": 300}
    assert summary.claimed == 300
    assert summary.stopped_because == "nothing due"


async def test_second_run_publishes_nothing_again(database_url: str, db: asyncpg.Connection,
                                                  simulator: str) -> None:
    """A run after everything went out claims nothing and posts nothing."""
    await seed(db, SeedPlan(posts=40, accounts=5, platforms=["facebook"]), CIPHER)
    await run_once(settings_for(database_url, simulator))
    again = await run_once(settings_for(database_url, simulator))
    assert again.claimed == 0
    assert len(await sim_posts(simulator)) == 40


async def test_concurrent_runs_never_publish_twice(database_url: str, db: asyncpg.Connection,
                                                   simulator: str) -> None:
    """Three runs at once share the posts: each goes out exactly once."""
    await seed(db, SeedPlan(posts=400, accounts=40, platforms=["facebook"]), CIPHER)
    summaries = await asyncio.gather(*(
        run_once(settings_for(database_url, simulator, worker_id=f"w{i}")) for i in range(3)))
    assert sum(s.claimed for s in summaries) == 400
    assert len(await sim_posts(simulator)) == 400
    assert (await sim_stats(simulator))["duplicates"] == 0
    assert await db.fetchval("select count(*) from created_content "
                             "where status = 'published'") == 400


async def test_expiry_boundary_in_a_run(database_url: str, db: asyncpg.Connection,
                                        simulator: str) -> None:
    """24 h + 1 s late is expired; 23 h 59 m late is still published."""
    account = await insert_account(db, external_id="page-exp",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    [late] = await insert_posts(db, 1, account_id=account, content="too late",
                                scheduled_at=sql("now() - interval '24 hours 1 second'"))
    [ok] = await insert_posts(db, 1, account_id=account, content="just in time",
                              scheduled_at=sql("now() - interval '23 hours 59 minutes'"))
    await run_once(settings_for(database_url, simulator))
    statuses = dict(await db.fetch("select id, status from created_content"))
    assert statuses == {late: "expired", ok: "published"}
    reason = await db.fetchval("select last_error from created_content where id = $1", late)
    assert "24" in reason
    assert "expired" in reason


async def test_bad_posts_fail_with_reasons_and_the_rest_goes_on(
        database_url: str, db: asyncpg.Connection, simulator: str) -> None:
    """Each malformed post fails with its own reason; the good ones are published."""
    good = await insert_account(db, external_id="page-good",
                                access_token_encrypted=CIPHER.encrypt("tok"))
    garbled = await insert_account(db, external_id="page-garbled",
                                   access_token_encrypted="v1:deadbeef:bm9wZQ==")
    linkedin = await insert_account(db, platform="linkedin", external_id="urn:li:person:1",
                                    access_token_encrypted=CIPHER.encrypt("tok"))
    cases = {
        "cannot use the account's access token": await insert_posts(
            db, 1, account_id=garbled, content="garbled token"),
        "no connected account": await insert_posts(db, 1, content="orphan"),
        "its account is a linkedin account": await insert_posts(
            db, 1, account_id=linkedin, content="wrong account"),
        "needs text": await insert_posts(db, 1, account_id=good, content=""),
        "unknown platform 'tiktok'": await insert_posts(db, 1, platform="tiktok",
                                                        account_id=good, content="x"),
        "unknown time zone 'Mars/Olympus'": await insert_posts(
            db, 1, account_id=good, content="tz", scheduled_at=None,
            scheduled_local=sql("now()::timestamp"), scheduled_timezone="Mars/Olympus"),
        "exactly 1 image": await insert_posts(db, 1, account_id=good, content="p",
                                              post_type="photo"),
    }
    fine = await insert_posts(db, 5, account_id=good, content=sql("'fine ' || random()"))
    await run_once(settings_for(database_url, simulator))
    for expected, [post_id] in cases.items():
        row = await db.fetchrow("select status, last_error, god_mode_metadata "
                                "from created_content where id = $1", post_id)
        assert row["status"] == "failed", (expected, dict(row))
        assert expected in row["last_error"], (expected, row["last_error"])
        assert expected in json.loads(row["god_mode_metadata"])["publish_error"] or \
            row["last_error"].startswith("unknown platform")
    statuses = await db.fetch("select status from created_content where id = any($1)", fine)
    assert [r["status"] for r in statuses] == ["published"] * 5


async def test_revoked_token_fails_the_accounts_posts_fast(
        database_url: str, db: asyncpg.Connection, simulator: str) -> None:
    """A revoked token marks the account needs_reauth; its other posts don't each call."""
    account = await insert_account(db, external_id="page-revoked",
                                   access_token_encrypted=CIPHER.encrypt("revoked-token"))
    await insert_posts(db, 10, account_id=account, content=sql("'r ' || random()"))
    await run_once(settings_for(database_url, simulator, account_concurrency=1))
    assert await db.fetchval("select status from social_accounts where id = $1",
                             account) == "needs_reauth"
    rows = await db.fetch("select status, last_error from created_content")
    assert {r["status"] for r in rows} == {"failed"}
    assert all("re-authorization" in r["last_error"] for r in rows)
    calls = await db.fetchval("select count(*) from publish_attempts where outcome = 'reauth'")
    assert calls == 1  # one call found the token dead; the other nine failed without calling


async def test_cli_run_and_dry_run(database_url: str, db: asyncpg.Connection) -> None:
    """`python -m publisher run` in a subprocess publishes and logs one summary line."""
    await seed(db, SeedPlan(posts=20, accounts=4, platforms=["facebook"]), CIPHER)
    async with SimulatorProcess(SimConfig(latency=0.0)) as sim:
        env = {**os.environ, "DATABASE_URL": database_url, "SIMULATOR_URL": sim.url,
               "ENCRYPTION_KEY": KEY}
        dry = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "publisher", "run",
                                                       "--dry-run"],
                                      env=env, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, dry.stderr
        assert len(dry.stdout.splitlines()) == 20
        assert await db.fetchval("select count(*) from created_content "
                                 "where status = 'scheduled'") == 20
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "publisher", "run"],
                                       env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        summary = next(line for line in lines if line.get("event") == "run_summary")
        assert summary["by_status"] == {"published": 20}
        assert len(await sim_posts(sim.url)) == 20
        assert KEY not in done.stderr
        assert "demo-access-token" not in done.stderr


async def test_cli_bad_setting_exits_2_and_claims_nothing(database_url: str,
                                                          db: asyncpg.Connection) -> None:
    """A bad setting names the variable, exits 2, and leaves the posts alone."""
    await seed(db, SeedPlan(posts=3, accounts=1, platforms=["facebook"]), CIPHER)
    env = {**os.environ, "DATABASE_URL": database_url, "ENCRYPTION_KEY": KEY,
           "FACEBOOK_CONCURRENCY": "lots"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "publisher", "run"],
                                   env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "FACEBOOK_CONCURRENCY" in done.stderr
    assert await db.fetchval("select count(*) from created_content "
                             "where status = 'scheduled'") == 3


async def test_transient_errors_are_retried_within_the_run(
        database_url: str, db: asyncpg.Connection) -> None:
    """With 30 % of Instagram containers going to ERROR 2207001 ("try again"; nothing went
    out), in-run retries publish nearly all posts in one run, once. (A 5xx on a publishing
    call is no such error: it may follow a made post, so it goes to review, never retried.)"""
    account = await insert_account(db, platform="instagram", external_id="ig-flaky",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    async with run_in_process(SimConfig(latency=0.0, fault_rate=0.3,
                                        faults=("container_error",))) as sim:
        await insert_posts(db, 60, platform="instagram", account_id=account,
                           post_type="image", media_urls=[f"{sim}/_media/a.jpg"],
                           content=sql("'t ' || random()"))
        await run_once(settings_for(database_url, sim, account_concurrency=8))
        stats = await sim_stats(sim)
    assert stats["faults_injected"]["container_error"] > 0
    statuses = dict(await db.fetch("select status, count(*) from created_content group by 1"))
    assert set(statuses) <= {"published", "retrying"}
    # One try each would publish about 42; three tries leave about 2 for a later run.
    assert statuses["published"] >= 54
    assert stats["accepted"] == statuses["published"]
    assert stats["duplicates"] == 0


async def test_run_ends_when_the_only_platform_is_paused(
        database_url: str, db: asyncpg.Connection) -> None:
    """A platform paused for the day (quota used up) counts as drained: no idling to the
    deadline, and the held-back posts wait, attempts intact."""
    async with run_in_process(SimConfig(latency=0.0, youtube_daily_uploads=2)) as sim:
        await seed(db, SeedPlan(posts=6, accounts=1, platforms=["youtube"],
                                media_base=f"{sim}/_media"), CIPHER)
        await db.execute("update publish_quotas set max_posts = 1000")
        summary = await run_once(settings_for(database_url, sim, run_deadline_seconds=120))
    assert summary.stopped_because == "nothing due"
    assert summary.as_dict()["wall_seconds"] < 60
    statuses = dict(await db.fetch("select status, count(*) from created_content group by 1"))
    assert statuses == {"published": 2, "scheduled": 4}
    assert await db.fetchval("select max(attempts) from created_content "
                             "where status = 'scheduled'") == 0


class Resuming:
    """A platform whose first try prepares container c1 and then hits a blip; each try
    records the publish_state it was given."""

    platform = "facebook"

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def validate(self, post: ClaimedPost) -> str | None:
        return None

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        self.seen.append(dict(post.publish_state))
        if len(self.seen) == 1:
            return Outcome(kind=OutcomeKind.RETRY, reason="blip after preparing",
                           state={"container_id": "c1", "publish_tried": True})
        if len(self.seen) == 2:
            return Outcome(kind=OutcomeKind.RETRY, reason="another blip", state={"step": 2})
        return Outcome(kind=OutcomeKind.PUBLISHED, platform_post_id="m1", url=None,
                       state={"media_id": "m1"})


async def test_in_run_retry_resumes_from_the_state_the_first_try_left(
        database_url: str, db: asyncpg.Connection, store: Store) -> None:
    """Issue 11: the immediate retries within a run get the post with what the tries before
    them left merged into its publish_state (a new container, say), never the old state
    that would start over; and the row keeps what every try left."""
    account = await insert_account(db, external_id="page-resume",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    post_id = await insert_post(db, account_id=account, content="resume me")
    adapter = Resuming()
    settings = Settings(database_url=database_url, encryption_key=KEY, worker_id="resume",
                        run_deadline_seconds=60, retry_base_seconds=60)
    async with httpx.AsyncClient() as client:
        await Publisher(settings, store, client, {"facebook": adapter}, CIPHER).run()

    assert adapter.seen == [{}, {"container_id": "c1", "publish_tried": True},
                            {"container_id": "c1", "publish_tried": True, "step": 2}]
    row = await fetch_post(db, post_id)
    assert row["status"] == "published"
    assert json.loads(row["publish_state"]) == {"container_id": "c1", "publish_tried": True,
                                                "step": 2, "media_id": "m1"}

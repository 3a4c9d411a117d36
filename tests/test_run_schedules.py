"""Schedules through a whole Publisher run (real Postgres, the simulator): one post's
schedule never stops the run, nothing goes out more than MAX_PUBLISH_DELAY_HOURS late,
and a long-running loop keeps resolving, expiring and releasing (issue 10, items 1, 2, 9)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from helpers import fetch_post, insert_account, insert_post, sql
from publisher import run as run_module
from publisher.app import http_client
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.platforms import build_adapters
from publisher.run import UNWRITABLE_SCHEDULE, Publisher
from publisher.settings import Settings, simulator_endpoints
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig
from publisher.store import Store
from publisher.summary import RunSummary

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))
# Local wall-clock "now" in a zone, as the product would store it.
LOCAL_NOW = "(now() at time zone '{zone}')::timestamp"


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    async with run_in_process(SimConfig(latency=0.0, seed=1)) as url:
        yield url


@pytest.fixture
async def account(db: asyncpg.Connection) -> str:
    return await insert_account(db, external_id="page-sched",
                                access_token_encrypted=CIPHER.encrypt("tok"))


async def run_publisher(store: Store, simulator: str, stop: asyncio.Event | None = None, *,
                        forever: bool = False) -> RunSummary:
    settings = Settings(database_url="postgresql://unused", simulator_url=simulator,
                        encryption_key=KEY, run_deadline_seconds=60, max_concurrency=16,
                        endpoints=simulator_endpoints(simulator))
    async with http_client(settings) as client:
        publisher = Publisher(settings, store, client, build_adapters(), CIPHER)
        return await publisher.run(stop, forever=forever)


async def sim_contents(url: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        posts: list[dict[str, Any]] = (await client.get(f"{url}/_sim/posts")).json()
    return [str(p["message"]) for p in posts]


async def local_post(db: asyncpg.Connection, account: str, content: str, local: object,
                     zone: str | None, **columns: Any) -> int:
    return await insert_post(db, account_id=account, content=content, scheduled_at=None,
                             scheduled_local=local, scheduled_timezone=zone, **columns)


async def eventually(db: asyncpg.Connection, query: str, *args: Any) -> bool:
    """True once the query returns true (checked every 0.1 s, for at most 30 s)."""
    for _ in range(300):
        if await db.fetchval(query, *args):
            return True
        await asyncio.sleep(0.1)
    return False


# -- item 1: one post's schedule never stops the run ----------------------------------------

async def test_out_of_range_local_time_fails_alone(db: asyncpg.Connection, store: Store,
                                                   account: str, simulator: str) -> None:
    """The issue's posts (year 1 in Tokyo, 9999-12-31 23:00 in Los Angeles) and zones that
    made ZoneInfo raise OSError fail, each naming scheduled_local / scheduled_timezone;
    the run goes on and publishes the posts beside them."""
    bad = {
        "year 1": await local_post(db, account, "b1", "0001-01-01 00:00", "Asia/Tokyo"),
        "year 9999": await local_post(db, account, "b2", "9999-12-31 23:00",
                                      "America/Los_Angeles"),
        "directory zone": await local_post(db, account, "b3", sql(LOCAL_NOW.format(
            zone="UTC")), "America"),
        "long zone": await local_post(db, account, "b4", sql(LOCAL_NOW.format(zone="UTC")),
                                      "Europe/" + "x" * 400),
    }
    good = [await local_post(db, account, "good local", sql(LOCAL_NOW.format(
                zone="Europe/Berlin")), "Europe/Berlin"),
            await insert_post(db, account_id=account, content="good instant")]
    summary = await run_publisher(store, simulator)
    assert not summary.failed_run
    for what, post in bad.items():
        row = await fetch_post(db, post)
        assert row["status"] == "failed", what
        assert "scheduled_timezone" in row["last_error"], (what, row["last_error"])
        assert json.loads(row["god_mode_metadata"])["publish_error"] == row["last_error"]
    assert "scheduled_local '0001-01-01T00:00:00'" in (
        await fetch_post(db, bad["year 1"]))["last_error"]
    assert {(await fetch_post(db, p))["status"] for p in good} == {"published"}
    assert sorted(await sim_contents(simulator)) == ["good instant", "good local"]
    assert summary.housekeeping["schedules_failed"] == 4


async def test_schedule_the_database_refuses_fails_that_post_alone(
        db: asyncpg.Connection, store: Store, account: str, simulator: str) -> None:
    """When the batch write fails because of one post's instant, the others are written one
    by one and published; that post fails with a plain reason naming both columns."""
    refused = await local_post(db, account, "refused", sql(LOCAL_NOW.format(zone="UTC")), "UTC")
    others = [await local_post(db, account, f"ok {i}", sql(LOCAL_NOW.format(zone="UTC")),
                               "UTC") for i in range(3)]
    # The product's own rule, say: this row may not get a scheduled_at.
    await db.execute(f"""
        create function refuse_schedule() returns trigger language plpgsql as $$
        begin
          if new.id = {refused} and new.scheduled_at is not null then
            raise exception 'refused by the product';
          end if;
          return new;
        end $$;
        create trigger refuse_schedule before update on created_content
          for each row execute function refuse_schedule();""")
    summary = await run_publisher(store, simulator)
    assert not summary.failed_run
    row = await fetch_post(db, refused)
    assert (row["status"], row["last_error"]) == ("failed", UNWRITABLE_SCHEDULE)
    assert {(await fetch_post(db, p))["status"] for p in others} == {"published"}


async def test_post_the_database_will_not_update_does_not_stop_the_run(
        db: asyncpg.Connection, store: Store, account: str, simulator: str) -> None:
    """A post whose every write is refused stays as it was; the posts after it are still
    resolved and published, and the run ends normally."""
    stuck = await local_post(db, account, "stuck", sql(LOCAL_NOW.format(zone="UTC")), "UTC")
    others = [await local_post(db, account, f"ok {i}", sql(LOCAL_NOW.format(zone="UTC")),
                               "UTC") for i in range(3)]
    await db.execute(f"""
        create function refuse_all() returns trigger language plpgsql as $$
        begin
          if new.id = {stuck} then raise exception 'refused by the product'; end if;
          return new;
        end $$;
        create trigger refuse_all before update on created_content
          for each row execute function refuse_all();""")
    summary = await run_publisher(store, simulator)
    assert not summary.failed_run
    assert summary.stopped_because == "nothing due"
    assert (await fetch_post(db, stuck))["status"] == "scheduled"
    assert {(await fetch_post(db, p))["status"] for p in others} == {"published"}


# -- item 2: nothing is published more than MAX_PUBLISH_DELAY_HOURS late ---------------------

async def test_local_time_post_too_late_is_expired(db: asyncpg.Connection, store: Store,
                                                   account: str, simulator: str) -> None:
    """Every way of scheduling: a local time 30 days late, a retrying post and a post
    deferred by not_before more than 24 h past their time are expired with the reason; a
    local time 23 h 59 m late in another zone still goes out."""
    late = {
        "local": await local_post(
            db, account, "late local",
            sql(LOCAL_NOW.format(zone="Asia/Tokyo") + " - interval '30 days'"), "Asia/Tokyo"),
        "local, just over": await local_post(
            db, account, "late local 2",
            sql(LOCAL_NOW.format(zone="America/New_York") + " - interval '24 hours 1 minute'"),
            "America/New_York"),
        "retrying": await insert_post(
            db, account_id=account, content="late retry", status="retrying", attempts=1,
            scheduled_at=sql("now() - interval '25 hours'"),
            not_before=sql("now() - interval '1 minute'")),
        "deferred": await insert_post(
            db, account_id=account, content="late deferred",
            scheduled_at=sql("now() - interval '25 hours'"),
            not_before=sql("now() - interval '1 minute'")),
    }
    in_time = await local_post(
        db, account, "in time",
        sql(LOCAL_NOW.format(zone="Asia/Tokyo") + " - interval '23 hours 59 minutes'"),
        "Asia/Tokyo")
    await run_publisher(store, simulator)
    for what, post in late.items():
        row = await fetch_post(db, post)
        assert row["status"] == "expired", what
        assert row["last_error"] == ("expired: not published within 24 hours of its "
                                     "scheduled time"), what
    assert (await fetch_post(db, in_time))["status"] == "published"
    assert await sim_contents(simulator) == ["in time"]


# -- a loop that runs for hours keeps doing its housekeeping (items 2 and 9) ---------------

async def test_forever_run_keeps_resolving_expiring_and_releasing(
        db: asyncpg.Connection, store: Store, account: str, simulator: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """run(forever=True) resolves, expires and releases posts written after it started:
    a local time 30 days late is expired (never sent), one due now goes out, and a post
    stuck in publishing without a lease is released and published."""
    monkeypatch.setattr(run_module, "HOUSEKEEPING_EVERY_SECONDS", 0.2)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_publisher(store, simulator, stop, forever=True))
    try:
        # Once this is out, the run's first housekeeping is behind it: what follows is
        # only found by the periodic one.
        first = await insert_post(db, account_id=account, content="first")
        assert await eventually(db, "select status = 'published' from created_content "
                                    "where id = $1", first)
        late = await local_post(db, account, "late", sql(
            LOCAL_NOW.format(zone="UTC") + " - interval '30 days'"), "UTC")
        due = await local_post(db, account, "due", sql(LOCAL_NOW.format(zone="UTC")), "UTC")
        stuck = await insert_post(db, account_id=account, content="stuck",
                                  status="publishing", attempts=1, locked_by="gone",
                                  lease_expires_at=None)
        assert await eventually(db, "select status = 'expired' from created_content "
                                    "where id = $1", late)
        assert await eventually(db, "select count(*) = 2 from created_content "
                                    "where id = any($1) and status = 'published'",
                                [due, stuck])
    finally:
        stop.set()
        summary = await asyncio.wait_for(worker, 30)
    assert summary.housekeeping["stuck_claims"] == 1
    assert sorted(await sim_contents(simulator)) == ["due", "first", "stuck"]

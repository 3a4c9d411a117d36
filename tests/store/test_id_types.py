"""The SQL contract, the attempt log, quotas and a whole run, with bigint and uuid post ids.

Each test runs twice (fixture id_type_database_url): on a created_content our migrations
made (bigint ids) and on the product's own, made first with uuid ids and then migrated.
Ids come back as the database holds them: int for bigint, str for uuid.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from helpers import fetch_post, insert_account, insert_posts, set_post, sql
from product_db import USER_A
from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.settings import PLATFORMS, Settings, simulator_endpoints
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig
from publisher.store import Store
from publisher.store.postgres import PostgresTransport
from publisher.store.store import OutcomeRow

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))


@pytest.fixture
async def conn(id_type_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(id_type_database_url, statement_cache_size=0)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def id_store(id_type_database_url: str) -> AsyncIterator[Store]:
    s = Store(await PostgresTransport.connect(id_type_database_url, max_size=2))
    try:
        yield s
    finally:
        await s.close()


async def posts(conn: asyncpg.Connection, count: int = 1, **columns: Any) -> list[Any]:
    """Due posts owned by a product user (its table requires one), status given (its
    table's default is 'draft'); their ids as the database holds them."""
    values: dict[str, Any] = {"user_id": USER_A, "status": "scheduled",
                              "content": sql("'post ' || gen_random_uuid()"), **columns}
    return await insert_posts(conn, count, **values)


async def id_type(conn: asyncpg.Connection) -> type:
    kind = await conn.fetchval("select format_type(typbasetype, null) from pg_type "
                               "where oid = 'public.publisher_post_id'::regtype")
    return int if kind == "bigint" else str


async def test_claim_returns_ids_of_the_tables_type(conn: asyncpg.Connection,
                                                    id_store: Store) -> None:
    """Claims take posts highest priority first and give their ids as int or str."""
    low = await posts(conn, priority=0)
    high = await posts(conn, priority=5)
    claimed = await id_store.claim("w", {"facebook": 10}, 60)
    assert [p.id for p in claimed] == high + low
    assert {type(p.id) for p in claimed} == {await id_type(conn)}
    assert await id_store.claim("w", {"facebook": 10}, 60) == []


async def test_sync_stamps_records_and_fences_by_id(conn: asyncpg.Connection,
                                                    id_store: Store) -> None:
    """sync_posts stamps "sending" and writes outcomes by id; an outcome for a lost claim
    comes back in `lost` with the same id; every attempt is logged under its post id."""
    account = await insert_account(conn)
    ids = await posts(conn, 3, account_id=account)
    claimed = {p.id: p for p in await id_store.claim("w", {"facebook": 10}, 60)}
    assert set(claimed) == set(ids)
    result = await id_store.sync("w", [(i, claimed[i].attempt) for i in ids], [])
    assert result.marked == frozenset(ids)
    done, retry, stolen = ids
    await set_post(conn, stolen, locked_by="another-worker")
    result = await id_store.sync("w", [], [
        OutcomeRow(id=done, attempt=1, status="published", outcome="published",
                   platform_post_id="fb_1"),
        OutcomeRow(id=retry, attempt=1, status="retrying", outcome="retry", error="503",
                   delay_seconds=60),
        OutcomeRow(id=stolen, attempt=1, status="published", outcome="published")])
    assert (result.applied, result.lost) == (2, (stolen,))
    assert (await fetch_post(conn, done))["status"] == "published"
    assert (await fetch_post(conn, retry))["status"] == "retrying"
    logged = {r["post_id"]: r["applied"] for r in await conn.fetch(
        "select post_id::text, applied from publish_attempts")}
    assert logged == {str(done): True, str(retry): True, str(stolen): False}


async def test_quota_reservations_carry_the_post_id(conn: asyncpg.Connection,
                                                    id_store: Store) -> None:
    """An account quota of 2: two posts claimed and reserved under their ids, the third
    waits; a failed attempt gives its reservation back."""
    await conn.execute("update publish_quotas set max_posts = 2 "
                       "where platform = 'instagram' and scope = 'account'")
    account = await insert_account(conn, platform="instagram")
    ids = await posts(conn, 3, platform="instagram", account_id=account, post_type="image")
    claimed = await id_store.claim("w", {"instagram": 10}, 60)
    assert [p.id for p in claimed] == ids[:2]
    reserved = {r[0] for r in await conn.fetch("select post_id::text from quota_reservations")}
    assert reserved == {str(i) for i in ids[:2]}
    assert (await fetch_post(conn, ids[2]))["not_before"] is not None
    await id_store.record("w", [OutcomeRow(id=ids[0], attempt=1, status="failed",
                                           outcome="failed", error="bad media")])
    assert {r[0] for r in await conn.fetch(
        "select post_id::text from quota_reservations")} == {str(ids[1])}


async def test_housekeeping_and_schedules_by_id(conn: asyncpg.Connection,
                                                id_store: Store) -> None:
    """prepare expires a late post and releases a lapsed claim; local times are listed and
    written back by id."""
    [late] = await posts(conn, scheduled_at=sql("now() - interval '3 days'"))
    [lapsed] = await posts(conn, status="publishing", locked_by="gone", attempts=1,
                           lease_expires_at=sql("now() - interval '1 minute'"))
    [local] = await posts(conn, scheduled_at=None, scheduled_local="2026-03-08 02:30",
                          scheduled_timezone="America/New_York")
    counts = await id_store.prepare(24, PLATFORMS)
    assert (counts["expired"], counts["released"]) == (1, 1)
    assert (await fetch_post(conn, late))["status"] == "expired"
    assert (await fetch_post(conn, lapsed))["status"] == "scheduled"
    [row] = await id_store.list_unresolved_schedules(10)
    assert row["id"] == local
    assert await id_store.apply_resolved_schedules(
        [{"id": row["id"], "scheduled_at": "2026-03-08T07:30:00+00:00"}]) == 1
    assert (await fetch_post(conn, local))["scheduled_at"] is not None


async def test_review_claim_and_listings_by_id(conn: asyncpg.Connection,
                                               id_store: Store) -> None:
    """claim_for_review and list_due give ids of the table's type."""
    [review] = await posts(conn, status="needs_review", attempts=1,
                           sending_started_at=sql("now() - interval '1 hour'"))
    [due] = await posts(conn)
    assert [p["id"] for p in await id_store.list_due(10)] == [due]
    [held] = await id_store.claim_for_review("w", PLATFORMS, limit=10, max_checks=6,
                                             every_seconds=600, lease_seconds=60)
    assert held.id == review
    assert type(held.id) is await id_type(conn)


async def test_fenced_writes_use_the_primary_key(conn: asyncpg.Connection) -> None:
    """Ids from the json batch (the domain) can reach posts through the primary key index:
    no cast on the table's column stands in the way (a seq scan is the only other way)."""
    await conn.execute("set enable_seqscan = off")
    plan = "\n".join(r[0] for r in await conn.fetch(
        "explain update created_content c set sending_started_at = now() "
        "from jsonb_to_recordset($1::jsonb) as x(id public.publisher_post_id, attempt integer) "
        "where c.id = x.id and c.attempts = x.attempt",
        json.dumps([{"id": i, "attempt": 0} for i in await posts(conn, 2)])))
    assert "created_content_pkey" in plan
    assert "(c.id)::" not in plan


async def test_a_whole_run_publishes_every_post_once(id_type_database_url: str,
                                                     conn: asyncpg.Connection) -> None:
    """Publisher end to end against the simulator: every post published once, its row and
    its attempt log under its own id."""
    accounts = [await insert_account(conn, access_token_encrypted=CIPHER.encrypt(f"t{n}"))
                for n in range(3)]
    ids = [i for account in accounts for i in await posts(conn, 10, account_id=account)]
    async with run_in_process(SimConfig(latency=0.0, seed=1)) as sim:
        settings = Settings(database_url=id_type_database_url, simulator_url=sim,
                            encryption_key=KEY, run_deadline_seconds=60, max_concurrency=16,
                            endpoints=simulator_endpoints(sim))
        summary = await run_once(settings)
        async with httpx.AsyncClient() as client:
            stats = (await client.get(f"{sim}/_sim/stats")).json()
            accepted = (await client.get(f"{sim}/_sim/posts")).json()
    assert summary.claimed == len(ids) == len(accepted)
    assert stats["duplicates"] == 0
    rows = await conn.fetch("select id::text, status from created_content")
    assert {r["id"]: r["status"] for r in rows} == {str(i): "published" for i in ids}
    logged = await conn.fetch("select post_id::text from publish_attempts "
                              "where applied and outcome = 'published'")
    assert sorted(r[0] for r in logged) == sorted(str(i) for i in ids)

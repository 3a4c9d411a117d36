"""The outbox (20261207001100_outbox.sql): an event exactly for each applied outcome, read by
its owner only, and leased to one webhook deliverer at a time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from supabase_advisor import SUPABASE_DEFAULT_PRIVILEGES

from helpers import fetch_post, insert_account, insert_post, insert_posts, set_post, sql
from product_db import USER_A, USER_B
from publisher.settings import PLATFORMS
from publisher.store import Store
from publisher.store.migrations import apply_migrations
from publisher.store.postgres import PostgresTransport
from publisher.store.store import OutcomeRow

LEASED = sql("now() + interval '5 minutes'")


async def held(db: asyncpg.Connection, worker: str = "w", **columns: Any) -> Any:
    """A post `worker` holds at attempt 1, as a claim leaves it."""
    return await insert_post(db, status="publishing", locked_by=worker, attempts=1,
                             lease_expires_at=LEASED, **columns)


async def events(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await db.fetch("select * from publisher_events order by id"))


def facts(event: asyncpg.Record) -> dict[str, Any]:
    """The event's facts, which it keeps as plain columns."""
    return {key: event[key] for key in ("platform", "status", "reason", "platform_post_id",
                                        "url")}


def outcome(post: Any, status: str, **extra: Any) -> OutcomeRow:
    kind = {"published": "published", "needs_review": "unknown"}.get(status, "failed")
    return OutcomeRow(id=post, attempt=1, status=status, outcome=kind, **extra)


# --- which outcomes make events ---------------------------------------------------------

async def test_each_applied_outcome_writes_its_event(db: asyncpg.Connection,
                                                     store: Store) -> None:
    """published, failed and needs_review each write one event of their type, with the
    post's facts; a retry or a deferral (the post is still on its way) writes none."""
    account = await insert_account(db, user_id=USER_A)
    posts = {status: await held(db, account_id=account, user_id=USER_A)
             for status in ("published", "failed", "needs_review", "retrying", "scheduled")}
    result = await store.record("w", [
        outcome(posts["published"], "published", platform_post_id="fb_1",
                platform_url="https://facebook.com/fb_1"),
        outcome(posts["failed"], "failed", error="caption too long"),
        outcome(posts["needs_review"], "needs_review", error="outcome unknown: timeout"),
        outcome(posts["retrying"], "retrying", error="503", delay_seconds=60),
        outcome(posts["scheduled"], "scheduled", error="quota", delay_seconds=60,
                refund_attempt=True)])
    assert result.applied == 5
    rows = {r["type"]: r for r in await events(db)}
    assert set(rows) == {"post.published", "post.failed", "post.needs_review"}
    published = rows["post.published"]
    assert (published["post_id"], str(published["account_id"]), str(published["user_id"])) == (
        posts["published"], account, USER_A)
    assert facts(published) == {
        "platform": "facebook", "status": "published", "platform_post_id": "fb_1",
        "url": "https://facebook.com/fb_1", "reason": None}
    assert json.loads(published["payload"]) == {}
    assert published["created_at"] == (await fetch_post(db, posts["published"]))["published_at"]
    assert rows["post.failed"]["reason"] == "caption too long"
    assert all(r["delivered_at"] is None and r["attempts"] == 0 for r in rows.values())


async def test_a_fenced_out_write_makes_no_event(db: asyncpg.Connection,
                                                 store: Store) -> None:
    """A worker that lost its claim writes nothing: no status, no event."""
    post = await held(db, worker="someone-else")
    result = await store.record("w", [outcome(post, "published")])
    assert result.lost == (post,)
    assert await events(db) == []


async def test_an_account_that_needs_reauth_is_announced_once(db: asyncpg.Connection,
                                                              store: Store) -> None:
    """Two posts of one account fail on a revoked token: two post.failed, one
    account.needs_reauth (with the reason, never a token); a later one, none more."""
    account = await insert_account(db, user_id=USER_B, access_token_encrypted="v1:0:sealed")
    first, second, later = [await held(db, account_id=account) for _ in range(3)]
    reauth = {"account_id": account, "account_status": "needs_reauth",
              "error": "account needs re-authorization: token revoked"}
    await store.record("w", [outcome(first, "failed", **reauth),
                             outcome(second, "failed", **reauth)])
    await store.record("w", [outcome(later, "failed", **reauth)])
    types = [r["type"] for r in await events(db)]
    assert sorted(types) == ["account.needs_reauth"] + ["post.failed"] * 3
    [announced] = [r for r in await events(db) if r["type"] == "account.needs_reauth"]
    assert (str(announced["account_id"]), str(announced["user_id"]),
            announced["post_id"]) == (account, USER_B, None)
    assert facts(announced) == {
        "platform": "facebook", "status": "needs_reauth", "platform_post_id": None,
        "url": None, "reason": "account needs re-authorization: token revoked"}
    assert "sealed" not in json.dumps([dict(r) for r in await events(db)], default=str)


async def test_a_review_check_that_cannot_tell_is_no_news(db: asyncpg.Connection,
                                                          store: Store) -> None:
    """A post already in needs_review, checked again and still unknown: no second
    post.needs_review; found live on the next check: post.published."""
    post = await insert_post(db, status="needs_review", attempts=1,
                             sending_started_at=sql("now() - interval '1 hour'"))
    for status, expected in (("needs_review", []), ("published", ["post.published"])):
        [hold] = await store.claim_for_review("w", list(PLATFORMS), limit=5, max_checks=5,
                                              every_seconds=0, lease_seconds=60)
        assert hold.id == post
        await store.record("w", [outcome(post, status, error="still unknown"
                                         if status == "needs_review" else None)])
        assert [r["type"] for r in await events(db)] == expected


async def test_housekeeping_announces_what_it_ends(db: asyncpg.Connection,
                                                   store: Store) -> None:
    """prepare_due_posts: expired -> post.expired; no time or an unknown platform ->
    post.failed; a lapsed claim after sending -> post.needs_review. A lapsed claim that
    never sent (due again), a lapsed review hold (under review already) and a post whose
    time is to be worked out again: none."""
    lapsed = sql("now() - interval '1 minute'")
    expired = await insert_post(db, scheduled_at=sql("now() - interval '3 days'"))
    no_time = await insert_post(db, scheduled_at=None)
    unknown = await insert_post(db, platform="myspace")
    sent = await insert_post(db, status="publishing", locked_by="dead", attempts=1,
                             lease_expires_at=lapsed, sending_started_at=lapsed)
    await insert_post(db, status="publishing", locked_by="dead", attempts=1,
                      lease_expires_at=lapsed)
    review = await insert_post(db, status="needs_review", attempts=1,
                               sending_started_at=lapsed)
    await store.claim_for_review("dead", list(PLATFORMS), limit=5, max_checks=5,
                                 every_seconds=0, lease_seconds=60)
    await set_post(db, review, lease_expires_at=lapsed)
    await insert_post(db, status="retrying", scheduled_at=None,
                      scheduled_local="2030-01-01 09:00", scheduled_timezone="UTC")
    counts = await store.prepare(24, PLATFORMS)
    assert (counts["expired"], counts["needs_review"], counts["released"],
            counts["to_resolve"]) == (1, 2, 1, 1)
    assert {(r["post_id"], r["type"]) for r in await events(db)} == {
        (expired, "post.expired"), (no_time, "post.failed"), (unknown, "post.failed"),
        (sent, "post.needs_review")}
    reasons = {r["post_id"]: r["reason"] for r in await events(db)}
    assert reasons[expired] == (await fetch_post(db, expired))["last_error"]


async def test_resolved_schedules_announce_failures_and_expiry(db: asyncpg.Connection,
                                                              store: Store) -> None:
    """apply_resolved_schedules: an unresolvable local time -> post.failed, one that
    resolves too far in the past -> post.expired, a good one -> nothing."""
    local = {"scheduled_at": None, "scheduled_local": "2030-01-01 09:00",
             "scheduled_timezone": "Europe/Berlin"}
    bad, late, good = [await insert_post(db, **local) for _ in range(3)]
    written = await store.apply_resolved_schedules(
        [{"id": bad, "error": "no such time zone"},
         {"id": late, "scheduled_at": "2020-01-01T08:00:00+00:00"},
         {"id": good, "scheduled_at": "2030-01-01T08:00:00+00:00"}], max_delay_hours=24)
    assert written == 3
    assert {(r["post_id"], r["type"]) for r in await events(db)} == {
        (bad, "post.failed"), (late, "post.expired")}


async def test_events_with_the_products_own_ids(id_type_database_url: str) -> None:
    """On the product's own created_content (uuid ids) as on ours: the event carries the
    post's id in its own type and the owner."""
    conn = await asyncpg.connect(id_type_database_url, statement_cache_size=0)
    store = Store(await PostgresTransport.connect(id_type_database_url, max_size=1))
    try:
        [post] = await insert_posts(conn, 1, user_id=USER_A, status="publishing",
                                    locked_by="w", attempts=1, lease_expires_at=LEASED)
        await store.record("w", [outcome(post, "published")])
        row = await conn.fetchrow("select post_id::text, user_id::text from publisher_events")
        assert row is not None
        assert (row["post_id"], row["user_id"]) == (str(post), USER_A)
        [claimed] = await store.claim_events("d", 10, 60)
        assert (claimed["type"], claimed["data"]["post_id"]) == ("post.published", post)
    finally:
        await store.close()
        await conn.close()


# --- who reads them ----------------------------------------------------------------------

@asynccontextmanager
async def as_user(conn: asyncpg.Connection, user: str | None,
                  role: str = "authenticated") -> AsyncIterator[None]:
    """A request as PostgREST makes it (role, JWT claims), rolled back at the end."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(f"set local role {role}")
        claims = {"role": role} if user is None else {"sub": user, "role": role}
        await conn.execute("select set_config('request.jwt.claims', $1, true)",
                           json.dumps(claims))
        yield
    finally:
        await transaction.rollback()


async def _two_users_events(db: asyncpg.Connection, store: Store) -> dict[str, Any]:
    posts = {user: await held(db, user_id=user) for user in (USER_A, USER_B)}
    await store.record("w", [outcome(p, "published") for p in posts.values()])
    return posts


async def test_owners_read_their_own_events_only(db: asyncpg.Connection,
                                                 store: Store) -> None:
    """authenticated reads its own events' columns, not the delivery columns, and no
    other user's; nobody but service_role writes; anon reads nothing."""
    posts = await _two_users_events(db, store)
    select = ("select post_id, type, platform, status, reason, platform_post_id, url, payload, "
              "created_at from publisher_events")
    for user in (USER_A, USER_B):
        async with as_user(db, user):
            assert [r["post_id"] for r in await db.fetch(select)] == [posts[user]]
    async with as_user(db, None):
        assert await db.fetch(select) == []
    for statement in ("select last_error from publisher_events",
                      "select * from publisher_events",
                      "update publisher_events set delivered_at = now()",
                      "delete from publisher_events"):
        async with as_user(db, USER_A):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await db.execute(statement)
    async with as_user(db, None, role="anon"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute(select)


AUTH_SCHEMA = """
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;
create or replace function auth.uid() returns uuid language sql stable as $$
  select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid
$$;
grant execute on function auth.uid() to anon, authenticated, service_role;
create publication supabase_realtime;
"""


async def test_on_supabase_realtime_publishes_events_to_their_owner(
        make_database: Callable[..., Awaitable[str]]) -> None:
    """On a database like a fresh Supabase project: publisher_events is in the
    supabase_realtime publication once (also after the file is applied again), and its
    policy calls auth.uid(), as Realtime checks each change for each subscriber."""
    url = await make_database(empty=True)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    store = Store(await PostgresTransport.connect(url, max_size=1))
    try:
        await conn.execute(SUPABASE_DEFAULT_PRIVILEGES + AUTH_SCHEMA)
        await apply_migrations(url)
        published = ("select count(*) from pg_publication_tables where pubname = "
                     "'supabase_realtime' and tablename = 'publisher_events'")
        assert await conn.fetchval(published) == 1
        await conn.execute("delete from supabase_migrations.schema_migrations "
                           "where version = '20261207001100'")
        await apply_migrations(url)
        assert await conn.fetchval(published) == 1
        policy = await conn.fetchval("select qual from pg_policies "
                                     "where tablename = 'publisher_events'")
        assert "auth.uid()" in policy
        posts = await _two_users_events(conn, store)
        async with as_user(conn, USER_B):
            await conn.execute("select set_config('request.jwt.claim.sub', $1, true)", USER_B)
            assert [r[0] for r in await conn.fetch("select post_id from publisher_events")
                    ] == [posts[USER_B]]
    finally:
        await store.close()
        await conn.close()


# --- delivery: claim_events / finish_events -----------------------------------------------

async def _some_events(db: asyncpg.Connection, store: Store, count: int) -> list[Any]:
    posts = [await held(db) for _ in range(count)]
    await store.record("w", [outcome(p, "published") for p in posts])
    return [r["id"] for r in await events(db)]


async def test_a_webhook_carries_each_event_s_facts(db: asyncpg.Connection,
                                                    store: Store) -> None:
    """A webhook's data: the ids and the event's facts; a post's outcome names the post on
    the platform, an account's event has no post fields."""
    account = await insert_account(db)
    post, other = await held(db, account_id=account), await held(db, account_id=account)
    await store.record("w", [
        outcome(post, "published", platform_post_id="fb_9", platform_url="https://fb/9"),
        outcome(other, "failed", account_id=account, account_status="needs_reauth",
                error="token revoked")])
    data = {e["type"]: e["data"] for e in await store.claim_events("d", 10, 60)}
    assert data["post.published"] == {
        "post_id": post, "account_id": account, "platform": "facebook",
        "status": "published", "reason": None, "platform_post_id": "fb_9",
        "url": "https://fb/9"}
    assert data["post.failed"]["reason"] == "token revoked"
    assert data["account.needs_reauth"] == {
        "post_id": None, "account_id": account, "platform": "facebook",
        "status": "needs_reauth", "reason": "token revoked"}


async def test_claims_lease_each_event_to_one_deliverer(db: asyncpg.Connection,
                                                        store: Store) -> None:
    """Two deliverers claiming at once get disjoint events, each an attempt; a leased
    event is claimed by nobody until its lease ends, then again with the same id."""
    ids = await _some_events(db, store, 5)
    first = await store.claim_events("d1", 3, 60)
    second = await store.claim_events("d2", 10, 60)
    assert len(first) == 3
    assert len(second) == 2
    assert sorted(e["id"] for e in first + second) == ids
    assert {e["attempt"] for e in first + second} == {1}
    assert len({e["webhook_id"] for e in first + second}) == 5
    assert await store.claim_events("d3", 10, 60) == []
    await db.execute("update publisher_events set next_attempt_at = now() "
                     "where id = $1", first[0]["id"])
    [again] = await store.claim_events("d3", 10, 60)
    assert (again["id"], again["webhook_id"], again["attempt"], again["type"]) == (
        first[0]["id"], first[0]["webhook_id"], 2, "post.published")


async def test_finish_marks_delivered_or_backs_off(db: asyncpg.Connection,
                                                   store: Store) -> None:
    """Delivered leaves the queue; a failure is due again after 30 s x 2^(attempt-1)
    (less up to a quarter), or Retry-After when longer, capped at 6 h; a result for an
    attempt that is no longer the latest changes nothing."""
    ok, failing, throttled = await _some_events(db, store, 3)
    await store.claim_events("d", 10, 60)
    counts = await store.finish_events([
        {"id": ok, "attempt": 1, "error": None},
        {"id": failing, "attempt": 1, "error": "HTTP 500"},
        {"id": throttled, "attempt": 1, "error": "HTTP 429", "retry_after": 999_999}])
    assert counts == {"delivered": 1, "retrying": 2, "given_up": 0}
    waits = {r["id"]: r for r in await db.fetch(
        "select id, delivered_at, last_error, locked_by, extract(epoch from "
        "next_attempt_at - now())::float8 as wait from publisher_events")}
    assert waits[ok]["delivered_at"] is not None
    assert 22.4 <= waits[failing]["wait"] <= 30.1
    assert waits[failing]["last_error"] == "HTTP 500"
    assert waits[throttled]["wait"] == pytest.approx(21_600, abs=1)
    assert {r["locked_by"] for r in waits.values()} == {None}
    await db.execute("update publisher_events set next_attempt_at = now(), attempts = 4 "
                     "where id = $1", failing)
    [claimed] = await store.claim_events("d", 10, 60)
    assert claimed["attempt"] == 5
    stale = await store.finish_events([{"id": failing, "attempt": 4, "error": "late"}])
    assert stale == {"delivered": 0, "retrying": 0, "given_up": 0}
    await store.finish_events([{"id": failing, "attempt": 5, "error": "HTTP 500"}])
    wait = await db.fetchval("select extract(epoch from next_attempt_at - now())::float8 "
                             "from publisher_events where id = $1", failing)
    assert 360 <= wait <= 480.1


async def test_retries_end_after_three_days(db: asyncpg.Connection, store: Store) -> None:
    """An event still failing 3 days after it happened is given up, its last error kept;
    one never sent in those 3 days (no WEBHOOK_URL then) is given up when claimed."""
    failing, never_sent = await _some_events(db, store, 2)
    await db.execute("update publisher_events set next_attempt_at = now() + interval '1 hour'"
                     " where id = $1", never_sent)
    [claimed] = await store.claim_events("d", 10, 60)
    assert claimed["id"] == failing
    await db.execute("update publisher_events set created_at = now() - interval '4 days'")
    assert await store.finish_events([{"id": failing, "attempt": 1,
                                       "error": "HTTP 503"}]) == {
        "delivered": 0, "retrying": 0, "given_up": 1}
    await db.execute("update publisher_events set next_attempt_at = now() where id = $1",
                     never_sent)
    assert await store.claim_events("d", 10, 60) == []
    rows = {r["id"]: r for r in await events(db)}
    assert (rows[failing]["next_attempt_at"], rows[failing]["last_error"]) == (None, "HTTP 503")
    assert rows[never_sent]["next_attempt_at"] is None
    assert "older than the 3 days" in rows[never_sent]["last_error"]
    assert rows[never_sent]["attempts"] == 0


async def test_events_are_kept_30_days(db: asyncpg.Connection, store: Store) -> None:
    """Housekeeping deletes events from more than 30 days ago, delivered or not, and keeps
    the rest."""
    old, older, kept = await _some_events(db, store, 3)
    await store.prepare(24, PLATFORMS)
    assert [r["id"] for r in await events(db)] == [old, older, kept]
    await db.execute("update publisher_events set created_at = now() - interval '31 days', "
                     "delivered_at = case when id = $1 then now() end where id <= $2",
                     old, older)
    await store.prepare(24, PLATFORMS)
    assert [r["id"] for r in await events(db)] == [kept]

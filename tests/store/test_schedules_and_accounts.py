"""Local schedules resolved through the store, and connecting accounts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg

from helpers import fetch_post, insert_account, insert_post, sql
from publisher.errors import ScheduleError
from publisher.schedule import resolve
from publisher.store import Store


async def test_unresolved_schedules_round_trip(db: asyncpg.Connection, store: Store) -> None:
    """Listed local times resolve to scheduled_at; unresolvable ones fail with the reason."""
    spring = await insert_post(db, scheduled_at=None, scheduled_local="2026-03-08 02:30",
                               scheduled_timezone="America/New_York")
    kolkata = await insert_post(db, scheduled_at=None, scheduled_local="2026-06-01 09:00",
                                scheduled_timezone="Asia/Kolkata")
    bad_zone = await insert_post(db, scheduled_at=None, scheduled_local="2026-06-01 09:00",
                                 scheduled_timezone="Mars/Olympus_Mons")
    await insert_post(db)  # already has an instant: not listed
    await insert_post(db, status="draft", scheduled_at=None,
                      scheduled_local="2026-06-01 09:00", scheduled_timezone="UTC")

    listed = await store.list_unresolved_schedules(100)
    assert [item["id"] for item in listed] == [spring, kolkata, bad_zone]
    assert listed[0]["timezone"] == "America/New_York"

    items: list[dict[str, object]] = []
    for item in listed:
        try:
            instant = resolve(item["local"], item["timezone"])
        except ScheduleError as exc:
            items.append({"id": item["id"], "error": str(exc)})
        else:
            items.append({"id": item["id"], "scheduled_at": instant.isoformat()})
    assert await store.apply_resolved_schedules(items) == 3

    assert (await fetch_post(db, spring))["scheduled_at"] == datetime(2026, 3, 8, 7, 30,
                                                                      tzinfo=UTC)
    assert (await fetch_post(db, kolkata))["scheduled_at"] == datetime(2026, 6, 1, 3, 30,
                                                                       tzinfo=UTC)
    failed = await fetch_post(db, bad_zone)
    assert failed["status"] == "failed"
    assert "Mars/Olympus_Mons" in failed["last_error"]
    assert "Mars/Olympus_Mons" in json.loads(failed["god_mode_metadata"])["publish_error"]
    assert await store.list_unresolved_schedules(100) == []
    assert await store.apply_resolved_schedules(items) == 0  # applying again changes nothing


async def test_list_unresolved_schedules_respects_the_limit(db: asyncpg.Connection,
                                                            store: Store) -> None:
    """At most p_limit rows come back, lowest id first."""
    ids = [await insert_post(db, scheduled_at=None, scheduled_local="2026-01-01 10:00",
                             scheduled_timezone="UTC") for _ in range(5)]
    assert [i["id"] for i in await store.list_unresolved_schedules(2)] == ids[:2]


async def test_resolved_post_becomes_claimable(db: asyncpg.Connection, store: Store) -> None:
    """Once resolved to a past instant, a local-time post is claimed like any other."""
    post = await insert_post(db, scheduled_at=None, scheduled_local=sql("now()::timestamp"),
                             scheduled_timezone="UTC")
    assert await store.claim("w", {"facebook": 5}, 60) == []
    [item] = await store.list_unresolved_schedules(10)
    instant = resolve(item["local"], item["timezone"])
    assert await store.apply_resolved_schedules(
        [{"id": post, "scheduled_at": instant.isoformat()}]) == 1
    assert [p.id for p in await store.claim("w", {"facebook": 5}, 60)] == [post]


async def test_connect_account_inserts_then_updates(db: asyncpg.Connection,
                                                    store: Store) -> None:
    """connect_account upserts by (platform, external_id), reactivates, keeps refresh token."""
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    first = await store.connect_account(
        platform="facebook", external_id="page-1", display_name="Page",
        user_id="6f1c1d8e-2a8b-4f6e-9a57-000000000001", access_token_encrypted="v1:k:a1",
        refresh_token_encrypted="v1:k:r1", token_expires_at=expires)
    await db.execute("update social_accounts set status = 'needs_reauth', "
                     "status_reason = 'revoked', paused_until = now() + interval '1 hour'")
    again = await store.connect_account(
        platform="facebook", external_id="page-1", display_name=None, user_id=None,
        access_token_encrypted="v1:k:a2", refresh_token_encrypted=None, token_expires_at=None)
    assert again == first
    row = await db.fetchrow("select * from social_accounts where id = $1", first)
    assert (row["access_token_encrypted"], row["refresh_token_encrypted"]) == (
        "v1:k:a2", "v1:k:r1")
    assert (row["status"], row["status_reason"], row["paused_until"]) == ("active", None, None)
    assert row["display_name"] == "Page"
    assert str(row["user_id"]) == "6f1c1d8e-2a8b-4f6e-9a57-000000000001"
    other = await store.connect_account(
        platform="instagram", external_id="page-1", display_name=None, user_id=None,
        access_token_encrypted="v1:k:b", refresh_token_encrypted=None,
        token_expires_at=expires)
    assert other != first
    assert await db.fetchval("select count(*) from social_accounts") == 2


async def test_refresh_lock_is_held_by_one_worker_at_a_time(db: asyncpg.Connection,
                                                            store: Store) -> None:
    """One worker gets the refresh lock; others see the current tokens until it runs out."""
    account = await insert_account(db, access_token_encrypted="v1:k:old",
                                   refresh_token_encrypted="v1:k:refresh")
    got, tokens = await store.lock_account_refresh(account, "w1", 30)
    assert got
    assert tokens is not None
    assert (tokens.id, tokens.refresh_token_encrypted) == (account, "v1:k:refresh")
    assert (await store.lock_account_refresh(account, "w2", 30))[0] is False
    assert (await store.lock_account_refresh(account, "w1", 30))[0] is False  # not re-entrant
    await db.execute("update social_accounts set refresh_locked_until = now() - "
                     "interval '1 second' where id = $1::uuid", account)
    assert (await store.lock_account_refresh(account, "w2", 30))[0] is True
    assert await db.fetchval("select refresh_locked_by from social_accounts") == "w2"


async def test_lock_on_a_missing_account_returns_nothing(store: Store) -> None:
    """Locking an account that does not exist gives (False, None)."""
    assert await store.lock_account_refresh("00000000-0000-4000-8000-000000000000",
                                            "w1", 30) == (False, None)


async def test_save_refreshed_tokens_needs_the_lock(db: asyncpg.Connection,
                                                    store: Store) -> None:
    """Only the lock holder saves; a missing refresh token keeps the old one; lock released."""
    account = await insert_account(db, access_token_encrypted="v1:k:old",
                                   refresh_token_encrypted="v1:k:refresh")
    expires = datetime(2027, 2, 1, tzinfo=UTC)
    assert not await store.save_refreshed_tokens(
        account, "w1", access_token_encrypted="v1:k:new", refresh_token_encrypted=None,
        token_expires_at=expires)
    assert (await store.lock_account_refresh(account, "w1", 30))[0]
    assert not await store.save_refreshed_tokens(
        account, "w2", access_token_encrypted="v1:k:stolen", refresh_token_encrypted=None,
        token_expires_at=expires)
    assert await store.save_refreshed_tokens(
        account, "w1", access_token_encrypted="v1:k:new", refresh_token_encrypted=None,
        token_expires_at=expires)
    row = await db.fetchrow("select * from social_accounts where id = $1::uuid", account)
    assert (row["access_token_encrypted"], row["refresh_token_encrypted"]) == (
        "v1:k:new", "v1:k:refresh")
    assert row["token_expires_at"] == expires
    assert (row["refresh_locked_by"], row["refresh_locked_until"]) == (None, None)


async def test_refused_refresh_marks_the_account_for_reauth(db: asyncpg.Connection,
                                                            store: Store) -> None:
    """A refused refresh keeps the tokens and sets needs_reauth with the reason."""
    account = await insert_account(db, access_token_encrypted="v1:k:old")
    await store.lock_account_refresh(account, "w1", 30)
    assert await store.save_refreshed_tokens(
        account, "w1", access_token_encrypted=None, refresh_token_encrypted=None,
        token_expires_at=None, status="needs_reauth", reason="invalid_grant: reconnect")
    row = await db.fetchrow("select * from social_accounts where id = $1::uuid", account)
    assert (row["status"], row["status_reason"]) == ("needs_reauth", "invalid_grant: reconnect")
    assert row["access_token_encrypted"] == "v1:k:old"

"""prepare_due_posts: expiry, unknown platforms and lease release, in one statement."""

from __future__ import annotations

import json

import asyncpg

from helpers import fetch_post, insert_post, set_post, sql
from publisher.settings import PLATFORMS
from publisher.store import Store


async def test_post_due_more_than_24_hours_ago_expires(db: asyncpg.Connection,
                                                       store: Store) -> None:
    """24 h + 1 s late: expired, with the reason in last_error and publish_error."""
    late = await insert_post(db, scheduled_at=sql("now() - interval '24 hours 1 second'"))
    counts = await store.prepare(24, PLATFORMS)
    assert counts["expired"] == 1
    row = await fetch_post(db, late)
    assert row["status"] == "expired"
    assert "24 hours" in row["last_error"]
    assert json.loads(row["god_mode_metadata"])["publish_error"] == row["last_error"]
    assert await store.claim("w", {"facebook": 10}, 60) == []


async def test_post_just_under_24_hours_late_is_still_claimable(db: asyncpg.Connection,
                                                                store: Store) -> None:
    """23 h 59 m late: not expired, and the next claim takes it."""
    post = await insert_post(db, scheduled_at=sql("now() - interval '23 hours 59 minutes'"))
    counts = await store.prepare(24, PLATFORMS)
    assert counts == {"expired": 0, "unknown_platform": 0, "released": 0, "needs_review": 0}
    assert (await fetch_post(db, post))["status"] == "scheduled"
    assert [p.id for p in await store.claim("w", {"facebook": 10}, 60)] == [post]


async def test_expiry_keeps_existing_metadata_and_spares_other_states(
        db: asyncpg.Connection, store: Store) -> None:
    """Expiry merges into god_mode_metadata and leaves drafts, published and leased posts."""
    old = sql("now() - interval '3 days'")
    retrying = await insert_post(db, status="retrying", scheduled_at=old,
                                 god_mode_metadata='{"source": "composer"}')
    untouched = {status: await insert_post(db, status=status, scheduled_at=old)
                 for status in ("draft", "published", "failed", "canceled")}
    leased = await insert_post(db, status="publishing", scheduled_at=old, locked_by="w",
                               attempts=1, lease_expires_at=sql("now() + interval '5 minutes'"))
    counts = await store.prepare(24, PLATFORMS)
    assert counts["expired"] == 1
    row = await fetch_post(db, retrying)
    assert row["status"] == "expired"
    meta = json.loads(row["god_mode_metadata"])
    assert meta["source"] == "composer"
    assert "expired" in meta["publish_error"]
    for status, post in untouched.items():
        assert (await fetch_post(db, post))["status"] == status
    assert (await fetch_post(db, leased))["status"] == "publishing"


async def test_expiry_uses_the_configured_delay(db: asyncpg.Connection, store: Store) -> None:
    """With a 2-hour limit, a post 3 hours late expires and one 1 hour late does not."""
    three = await insert_post(db, scheduled_at=sql("now() - interval '3 hours'"))
    one = await insert_post(db, scheduled_at=sql("now() - interval '1 hour'"))
    assert (await store.prepare(2, PLATFORMS))["expired"] == 1
    assert (await fetch_post(db, three))["status"] == "expired"
    assert "2 hours" in (await fetch_post(db, three))["last_error"]
    assert (await fetch_post(db, one))["status"] == "scheduled"


async def test_unknown_platform_fails_with_its_name(db: asyncpg.Connection,
                                                    store: Store) -> None:
    """A due post for a platform the publisher lacks fails, naming the platform."""
    post = await insert_post(db, platform="myspace")
    later = await insert_post(db, platform="myspace",
                              scheduled_at=sql("now() + interval '1 hour'"))
    counts = await store.prepare(24, PLATFORMS)
    assert counts["unknown_platform"] == 1
    row = await fetch_post(db, post)
    assert row["status"] == "failed"
    assert "myspace" in row["last_error"]
    assert "myspace" in json.loads(row["god_mode_metadata"])["publish_error"]
    assert (await fetch_post(db, later))["status"] == "scheduled"


async def test_expired_lease_without_sending_is_released(db: asyncpg.Connection,
                                                         store: Store) -> None:
    """A lease that ran out before sending goes back to scheduled with its attempt refunded."""
    post = await insert_post(db)
    [claimed] = await store.claim("dead-worker", {"facebook": 1}, 60)
    assert claimed.attempt == 1
    await set_post(db, post, lease_expires_at=sql("now() - interval '1 second'"))
    counts = await store.prepare(24, PLATFORMS)
    assert (counts["released"], counts["needs_review"]) == (1, 0)
    row = await fetch_post(db, post)
    assert row["status"] == "scheduled"
    assert row["attempts"] == 0
    assert row["locked_by"] is None
    assert row["lease_expires_at"] is None
    [again] = await store.claim("next-worker", {"facebook": 1}, 60)
    assert (again.id, again.attempt) == (post, 1)


async def test_expired_lease_after_sending_needs_review(db: asyncpg.Connection,
                                                        store: Store) -> None:
    """A lease that ran out after sending started goes to needs_review, never the queue."""
    post = await insert_post(db)
    [claimed] = await store.claim("dead-worker", {"facebook": 1}, 60)
    assert await store.mark_sending("dead-worker", [(post, claimed.attempt)]) == {post}
    await set_post(db, post, lease_expires_at=sql("now() - interval '1 second'"))
    counts = await store.prepare(24, PLATFORMS)
    assert (counts["released"], counts["needs_review"]) == (0, 1)
    row = await fetch_post(db, post)
    assert row["status"] == "needs_review"
    assert row["attempts"] == 1
    assert row["sending_started_at"] is not None
    assert "dead-worker" in row["last_error"]
    assert await store.claim("next-worker", {"facebook": 10}, 60) == []
    await store.prepare(24, PLATFORMS)  # and a later run leaves it alone
    assert (await fetch_post(db, post))["status"] == "needs_review"


async def test_live_lease_is_not_released(db: asyncpg.Connection, store: Store) -> None:
    """A claim whose lease has not run out stays with its worker."""
    post = await insert_post(db)
    await store.claim("busy-worker", {"facebook": 1}, 600)
    counts = await store.prepare(24, PLATFORMS)
    assert counts["released"] == 0
    row = await fetch_post(db, post)
    assert (row["status"], row["locked_by"]) == ("publishing", "busy-worker")

"""prepare_due_posts: expiry, unknown platforms, lease release and stuck posts, in one
statement."""

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
    assert set(counts) >= {"expired", "unknown_platform", "released", "needs_review"}
    assert not any(counts.values()), counts
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


# -- posts in a state no step would ever move (issue 10, item 9) ----------------------------

# Rows that, left alone, no claim, outcome write or housekeeping would ever move: what
# prepare_due_posts must leave empty.
STUCK = """
    select id, status from public.created_content
     where (status = 'publishing'
            and (lease_expires_at is null or locked_by is null
                 or lease_expires_at > now() + interval '25 hours'))
        or (status in ('scheduled', 'retrying') and scheduled_at is null
            and scheduled_local is null)
        or (status = 'retrying' and (scheduled_at is null or attempts >= max_attempts))
"""


async def test_publishing_without_lease_is_released(db: asyncpg.Connection,
                                                    store: Store) -> None:
    """publishing with no lease_expires_at: back in the queue (attempt refunded) with a
    reason naming the column when sending never started; needs_review when it had."""
    unsent = await insert_post(db, status="publishing", locked_by="w", attempts=1,
                               lease_expires_at=None)
    sent = await insert_post(db, status="publishing", locked_by="w", attempts=1,
                             lease_expires_at=None, sending_started_at=sql("now()"))
    counts = await store.prepare(24, PLATFORMS)
    assert (counts["released"], counts["needs_review"], counts["stuck_claims"]) == (1, 1, 2)
    row = await fetch_post(db, unsent)
    assert (row["status"], row["attempts"], row["locked_by"]) == ("scheduled", 0, None)
    assert "lease_expires_at" in row["last_error"]
    row = await fetch_post(db, sent)
    assert row["status"] == "needs_review"
    assert "lease_expires_at" in row["last_error"]
    assert "outcome unknown" in json.loads(row["god_mode_metadata"])["publish_error"]
    assert [p.id for p in await store.claim("w2", {"facebook": 10}, 60)] == [unsent]


async def test_publishing_without_holder_or_with_an_endless_lease_is_released(
        db: asyncpg.Connection, store: Store) -> None:
    """No locked_by (no worker can write its outcome) or a lease longer than LEASE_SECONDS
    allows: released at once, each with a reason naming what was wrong."""
    orphan = await insert_post(db, status="publishing", locked_by=None, attempts=1,
                               lease_expires_at=sql("now() + interval '5 minutes'"))
    endless = await insert_post(db, status="publishing", locked_by="w", attempts=2,
                                lease_expires_at=sql("now() + interval '100 years'"))
    await store.prepare(24, PLATFORMS)
    assert "locked_by" in (await fetch_post(db, orphan))["last_error"]
    row = await fetch_post(db, endless)
    assert (row["status"], row["attempts"]) == ("scheduled", 1)
    assert "longer than any claim" in row["last_error"]


async def test_a_live_claim_with_a_long_lease_stays(db: asyncpg.Connection,
                                                    store: Store) -> None:
    """A real claim with the longest LEASE_SECONDS (24 h) is not taken for a stuck one."""
    post = await insert_post(db)
    await store.claim("slow-worker", {"facebook": 1}, 86_400)
    assert (await store.prepare(24, PLATFORMS))["stuck_claims"] == 0
    assert (await fetch_post(db, post))["locked_by"] == "slow-worker"


async def test_lapsed_review_hold_stays_in_needs_review(db: asyncpg.Connection,
                                                        store: Store) -> None:
    """A post under review whose checker died goes back to needs_review, never to the
    queue, even with no "sending" stamp: it may be live."""
    post = await insert_post(db, status="needs_review", attempts=1,
                             last_error="outcome unknown: read timeout")
    [held] = await store.claim_for_review("checker", ["facebook"], limit=5, max_checks=3,
                                          every_seconds=0, lease_seconds=60)
    assert held.id == post
    await set_post(db, post, lease_expires_at=sql("now() - interval '1 second'"))
    counts = await store.prepare(24, PLATFORMS)
    assert (counts["released"], counts["needs_review"]) == (0, 1)
    row = await fetch_post(db, post)
    assert (row["status"], row["attempts"]) == ("needs_review", 1)
    assert "checker" in row["last_error"]


async def test_waiting_post_without_any_time_fails(db: asyncpg.Connection,
                                                   store: Store) -> None:
    """scheduled or retrying with neither scheduled_at nor scheduled_local (even one a
    not_before would make claimable) fails, naming both columns."""
    posts = [await insert_post(db, status=status, scheduled_at=None, not_before=not_before)
             for status in ("scheduled", "retrying")
             for not_before in (None, sql("now() - interval '1 minute'"))]
    counts = await store.prepare(24, PLATFORMS)
    assert counts["unschedulable"] == 4
    for post in posts:
        row = await fetch_post(db, post)
        assert row["status"] == "failed"
        assert "neither scheduled_at nor scheduled_local" in row["last_error"]
        assert json.loads(row["god_mode_metadata"])["publish_error"] == row["last_error"]


async def test_retrying_post_without_scheduled_at_is_resolved_again(
        db: asyncpg.Connection, store: Store) -> None:
    """retrying with only scheduled_local goes back to scheduled, not claimable until its
    local time is resolved (resolution reads scheduled posts only)."""
    post = await insert_post(db, status="retrying", attempts=1, scheduled_at=None,
                             scheduled_local="2026-06-01 09:00", scheduled_timezone="UTC",
                             not_before=sql("now() - interval '1 minute'"))
    assert (await store.prepare(24, PLATFORMS))["to_resolve"] == 1
    row = await fetch_post(db, post)
    assert (row["status"], row["not_before"], row["attempts"]) == ("scheduled", None, 1)
    assert "scheduled_local" in row["last_error"]
    assert await store.claim("w", {"facebook": 10}, 60) == []
    assert [item["id"] for item in await store.list_unresolved_schedules(10)] == [post]


async def test_retrying_post_out_of_attempts_fails(db: asyncpg.Connection,
                                                   store: Store) -> None:
    """retrying with attempts >= max_attempts fails with the last error, not one more try."""
    spent = await insert_post(db, status="retrying", attempts=3, max_attempts=3,
                              last_error="HTTP 503")
    left = await insert_post(db, status="retrying", attempts=2, max_attempts=3)
    assert (await store.prepare(24, PLATFORMS))["out_of_attempts"] == 1
    row = await fetch_post(db, spent)
    assert row["status"] == "failed"
    assert row["last_error"] == "gave up after 3 attempts (max_attempts is 3): HTTP 503"
    assert (await fetch_post(db, left))["status"] == "retrying"


async def test_no_stuck_post_is_left_after_housekeeping(db: asyncpg.Connection,
                                                        store: Store) -> None:
    """One of each inconsistent state: after one prepare none is left, and each moved post
    has a reason."""
    stuck = [
        await insert_post(db, status="publishing", lease_expires_at=None, locked_by="w"),
        await insert_post(db, status="publishing", locked_by=None,
                          lease_expires_at=sql("now() + interval '1 hour'")),
        await insert_post(db, status="publishing", locked_by="w", attempts=1,
                          sending_started_at=sql("now()"),
                          lease_expires_at=sql("'9999-12-31'::timestamptz")),
        await insert_post(db, status="scheduled", scheduled_at=None),
        await insert_post(db, status="retrying", scheduled_at=None),
        await insert_post(db, status="retrying", scheduled_at=None,
                          scheduled_local="2026-01-01 10:00", scheduled_timezone="UTC"),
        await insert_post(db, status="retrying", attempts=5, max_attempts=5),
    ]
    assert {r["id"] for r in await db.fetch(STUCK)} == set(stuck)
    await store.prepare(24, PLATFORMS)
    assert await db.fetch(STUCK) == []
    for post in stuck:
        assert (await fetch_post(db, post))["last_error"], post


async def test_housekeeping_skips_posts_another_transaction_holds(
        db: asyncpg.Connection, database_url: str, store: Store) -> None:
    """A post locked by a claim or outcome write in flight is left for the next
    housekeeping instead of being waited for."""
    post = await insert_post(db, status="publishing", lease_expires_at=None, locked_by="w")
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            await other.execute("select 1 from created_content where id = $1 for update", post)
            counts = await store.prepare(24, PLATFORMS)
        assert counts["stuck_claims"] == 0
        assert (await fetch_post(db, post))["status"] == "publishing"
    finally:
        await other.close()
    assert (await store.prepare(24, PLATFORMS))["stuck_claims"] == 1


# -- local times that resolve too late (issue 10, item 2) -----------------------------------

async def test_local_time_post_too_late_is_expired(db: asyncpg.Connection,
                                                   store: Store) -> None:
    """apply_resolved_schedules expires a post whose local time resolves more than
    max_delay_hours ago, in the same statement and with prepare_due_posts' reason; one just
    inside the limit stays scheduled and is claimed."""
    late = await insert_post(db, scheduled_at=None, scheduled_local="2026-01-01 09:00",
                             scheduled_timezone="UTC")
    fresh = await insert_post(db, scheduled_at=None, scheduled_local="2026-01-01 09:00",
                              scheduled_timezone="UTC")
    in_time = await db.fetchval("select now() - interval '23 hours 59 minutes'")
    long_ago = await db.fetchval("select now() - interval '30 days'")
    assert await store.apply_resolved_schedules(
        [{"id": late, "scheduled_at": long_ago.isoformat()},
         {"id": fresh, "scheduled_at": in_time.isoformat()}], max_delay_hours=24) == 2
    row = await fetch_post(db, late)
    assert row["status"] == "expired"
    assert row["last_error"] == "expired: not published within 24 hours of its scheduled time"
    assert json.loads(row["god_mode_metadata"])["publish_error"] == row["last_error"]
    assert [p.id for p in await store.claim("w", {"facebook": 10}, 60)] == [fresh]
    # the same words as the expiry step
    old = await insert_post(db, scheduled_at=sql("now() - interval '30 days'"))
    await store.prepare(24, PLATFORMS)
    assert (await fetch_post(db, old))["last_error"] == row["last_error"]


async def test_resolved_schedules_without_a_limit_expire_nothing(db: asyncpg.Connection,
                                                                 store: Store) -> None:
    """Items without max_delay_hours (an older caller) keep the old behaviour."""
    post = await insert_post(db, scheduled_at=None, scheduled_local="2026-01-01 09:00",
                             scheduled_timezone="UTC")
    long_ago = await db.fetchval("select now() - interval '30 days'")
    assert await store.apply_resolved_schedules(
        [{"id": post, "scheduled_at": long_ago.isoformat()}]) == 1
    assert (await fetch_post(db, post))["status"] == "scheduled"


async def test_attempts_at_the_column_limits_stop_nothing(db: asyncpg.Connection,
                                                          store: Store) -> None:
    """attempts at int4's ends (found by the property test): the claim's attempts + 1 and the
    release's refund overflowed, failing the whole claim or housekeeping in every run. Now the
    claim skips a post out of attempts, housekeeping fails it with the reason, and a
    release refunds without going below zero; the valid post beside them goes out."""
    worn = await insert_post(db, attempts=2_147_483_647, max_attempts=2_147_483_647)
    odd = await insert_post(db, status="publishing", locked_by="w", lease_expires_at=None,
                            attempts=-2_147_483_648)
    fine = await insert_post(db)
    assert [p.id for p in await store.claim("w1", {"facebook": 10}, 60)] == [fine]
    counts = await store.prepare(24, PLATFORMS)
    assert counts["out_of_attempts"] == 1
    row = await fetch_post(db, worn)
    assert row["status"] == "failed"
    assert "gave up after" in row["last_error"]
    row = await fetch_post(db, odd)
    assert (row["status"], row["attempts"]) == ("scheduled", 0)

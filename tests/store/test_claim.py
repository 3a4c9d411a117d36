"""claim_due_posts: atomic, never overlapping, ordered, and within the limits asked for."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import asyncpg
import pytest

from helpers import fetch_post, insert_account, insert_post, insert_posts, post_statuses, sql
from publisher.store import Store
from publisher.store.postgres import PostgresTransport

PLATFORMS = ("facebook", "instagram", "linkedin", "youtube")


async def _seed_round(db: asyncpg.Connection, total: int, rng: random.Random) -> set[int]:
    """`total` due posts spread over the platforms, with mixed priorities and due times
    (quotas lifted: these tests are about claims never overlapping)."""
    await db.execute("update publish_quotas set max_posts = 1000000")
    accounts = [await insert_account(db, platform=p) for p in PLATFORMS for _ in range(3)]
    ids = await db.fetch(
        """
        insert into created_content (platform, account_id, content, priority, scheduled_at)
        select a.platform, a.id, 'post ' || g, (g * 7919 % 5)::smallint,
               now() - make_interval(secs => ($2::integer + g % 3600)::double precision)
          from generate_series(1, $1::integer) g
          join lateral (select id, platform from social_accounts
                         where id = ($3::uuid[])[1 + g % array_length($3::uuid[], 1)]) a on true
        returning id
        """, total, rng.randint(60, 600), accounts)
    return {int(r["id"]) for r in ids}


async def _drain(worker: str, store: Store, claimed: list[tuple[str, int]],
                 batch: int) -> int:
    """Claims in a loop until a claim comes back empty; returns the number of claims."""
    calls = 0
    while True:
        posts = await store.claim(worker, dict.fromkeys(PLATFORMS, batch), 300)
        calls += 1
        if not posts:
            return calls
        claimed.extend((worker, p.id) for p in posts)
        for platform in PLATFORMS:
            assert sum(p.platform == platform for p in posts) <= batch
        await asyncio.sleep(0)


async def test_concurrent_claims_never_overlap(database_url: str,
                                               db: asyncpg.Connection) -> None:
    """Four workers on four connections drain 2,000 due posts, 5 rounds: each post exactly once."""
    rng = random.Random(20261130)
    stores = [Store(await PostgresTransport.connect(database_url, max_size=1))
              for _ in range(4)]
    try:
        for round_no in range(5):
            seeded = await _seed_round(db, 2000, rng)
            claimed: list[tuple[str, int]] = []
            await asyncio.gather(*(
                _drain(f"w{round_no}-{i}", s, claimed, batch=rng.choice((13, 25, 50)))
                for i, s in enumerate(stores)))
            counts = Counter(post_id for _, post_id in claimed)
            duplicates = {post_id: n for post_id, n in counts.items() if n > 1}
            assert duplicates == {}, f"round {round_no}: claimed twice: {duplicates}"
            assert set(counts) == seeded, f"round {round_no}: not every post was claimed"
            # the database agrees: each row is held by the worker that got it, attempt 1
            rows = await db.fetch(
                "select id, locked_by, attempts, status from created_content "
                "where id = any($1::bigint[])", list(seeded))
            holder = {post_id: worker for worker, post_id in claimed}
            assert all(r["status"] == "publishing" and r["attempts"] == 1
                       and r["locked_by"] == holder[r["id"]] for r in rows)
            assert len({w for w, _ in claimed}) > 1, "only one worker ever claimed"
    finally:
        for s in stores:
            await s.close()


async def test_claim_orders_by_priority_then_oldest_due(db: asyncpg.Connection,
                                                       store: Store) -> None:
    """Highest priority first, then the oldest due, then the lowest id."""
    low_old = await insert_post(db, priority=0, scheduled_at=sql("now() - interval '3 hours'"))
    high_new = await insert_post(db, priority=5, scheduled_at=sql("now() - interval '1 minute'"))
    high_old = await insert_post(db, priority=5, scheduled_at=sql("now() - interval '2 hours'"))
    mid = await insert_post(db, priority=1, scheduled_at=sql("now() - interval '1 minute'"))
    low_new = await insert_post(db, priority=0, scheduled_at=sql("now() - interval '1 minute'"))
    # not_before later than scheduled_at makes a post due later (due_at = greatest of both)
    retried = await insert_post(db, priority=0, scheduled_at=sql("now() - interval '5 hours'"),
                                not_before=sql("now() - interval '30 seconds'"))
    first = await store.claim("w", {"facebook": 3}, 60)
    assert [p.id for p in first] == [high_old, high_new, mid]
    rest = await store.claim("w", {"facebook": 10}, 60)
    assert [p.id for p in rest] == [low_old, low_new, retried]


async def test_claim_respects_per_platform_limits(db: asyncpg.Connection,
                                                  store: Store) -> None:
    """Each platform gets at most its limit; platforms absent or at 0 get nothing."""
    for platform in PLATFORMS:
        await insert_posts(db, 10, platform=platform)
    posts = await store.claim("w", {"facebook": 4, "instagram": 1, "linkedin": 0}, 60)
    assert Counter(p.platform for p in posts) == {"facebook": 4, "instagram": 1}
    assert Counter((await post_statuses(db)).values()) == {"publishing": 5, "scheduled": 35}


async def test_claim_skips_paused_accounts(db: asyncpg.Connection, store: Store) -> None:
    """Posts of an account paused into the future are left; a lapsed pause does not hold."""
    paused = await insert_account(db, paused_until=sql("now() + interval '10 minutes'"))
    lapsed = await insert_account(db, paused_until=sql("now() - interval '1 second'"))
    held = await insert_posts(db, 3, account_id=paused)
    free = await insert_posts(db, 2, account_id=lapsed)
    posts = await store.claim("w", {"facebook": 50}, 60)
    assert sorted(p.id for p in posts) == free
    assert await post_statuses(db, held) == dict.fromkeys(held, "scheduled")


async def test_claim_skips_posts_not_yet_due(db: asyncpg.Connection, store: Store) -> None:
    """not_before or scheduled_at in the future, drafts and unresolved posts are not claimed."""
    due = await insert_post(db)
    await insert_post(db, not_before=sql("now() + interval '5 minutes'"))
    await insert_post(db, scheduled_at=sql("now() + interval '1 minute'"))
    await insert_post(db, status="draft")
    await insert_post(db, scheduled_at=None, scheduled_local=sql("now()::timestamp"),
                      scheduled_timezone="UTC")
    for status in ("published", "failed", "needs_review", "expired", "canceled"):
        await insert_post(db, status=status)
    posts = await store.claim("w", {"facebook": 50}, 60)
    assert [p.id for p in posts] == [due]
    assert await store.claim("w", {"facebook": 50}, 60) == []


async def test_claim_takes_retrying_posts_and_counts_attempts(db: asyncpg.Connection,
                                                              store: Store) -> None:
    """A retrying post whose not_before passed is claimed with its next attempt number."""
    post = await insert_post(db, status="retrying", attempts=2,
                             not_before=sql("now() - interval '1 second'"))
    [claimed] = await store.claim("w", {"facebook": 1}, 60)
    assert (claimed.id, claimed.attempt) == (post, 3)
    row = await fetch_post(db, post)
    assert row["status"] == "publishing"
    assert row["locked_by"] == "w"
    assert row["sending_started_at"] is None


async def test_claim_sets_a_lease_in_database_time(db: asyncpg.Connection,
                                                   store: Store) -> None:
    """The lease deadline is now() + lease seconds on the database's clock."""
    post = await insert_post(db)
    await store.claim("w", {"facebook": 1}, 90)
    remaining = await db.fetchval(
        "select extract(epoch from lease_expires_at - now()) from created_content "
        "where id = $1", post)
    assert 80 < float(remaining) <= 90


async def test_claim_returns_post_and_account(db: asyncpg.Connection, store: Store) -> None:
    """A claimed post carries its content and its account with the encrypted tokens."""
    account = await insert_account(db, platform="linkedin", external_id="urn:li:person:1",
                                   access_token_encrypted="v1:k:access",
                                   refresh_token_encrypted="v1:k:refresh",
                                   token_expires_at=sql("now() + interval '1 day'"))
    post = await insert_post(db, platform="linkedin", account_id=account, content="Hi",
                             title="T", link_url="https://example.com/a", post_type="link",
                             media_urls=["https://example.com/a.png"],
                             platform_options='{"visibility": "PUBLIC"}', priority=3)
    orphan = await insert_post(db, platform="linkedin")
    posts = {p.id: p for p in await store.claim("w", {"linkedin": 5}, 60)}
    claimed = posts[post]
    assert (claimed.content, claimed.title, claimed.link_url, claimed.post_type) == (
        "Hi", "T", "https://example.com/a", "link")
    assert claimed.media_urls == ("https://example.com/a.png",)
    assert claimed.options == {"visibility": "PUBLIC"}
    assert claimed.priority == 3
    assert claimed.scheduled_at is not None
    assert claimed.account is not None
    assert claimed.account.id == account
    assert claimed.account.external_id == "urn:li:person:1"
    assert claimed.account.access_token_encrypted == "v1:k:access"
    assert claimed.account.refresh_token_encrypted == "v1:k:refresh"
    assert claimed.account.token_expires_at is not None
    assert posts[orphan].account is None


@pytest.mark.parametrize("limit", [0, -3])
async def test_claim_with_no_room_claims_nothing(db: asyncpg.Connection, store: Store,
                                                 limit: int) -> None:
    """A zero or negative limit claims nothing and touches no row."""
    await insert_posts(db, 3)
    assert await store.claim("w", {"facebook": limit}, 60) == []
    assert await db.fetchval(
        "select count(*) from created_content where status = 'scheduled'") == 3

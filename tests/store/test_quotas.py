"""Rolling quotas, reserved in the claim's own transaction: exact across concurrent claimers."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from helpers import insert_account, insert_posts, sql
from publisher.store import Store
from publisher.store.postgres import PostgresTransport
from publisher.store.store import OutcomeRow


async def set_quota(db: asyncpg.Connection, platform: str, scope: str, max_posts: int,
                    window_seconds: int, post_types: list[str] | None = None) -> None:
    await db.execute("delete from publish_quotas")
    await db.execute("insert into publish_quotas (platform, scope, post_types, max_posts, "
                     "window_seconds) values ($1, $2, $3, $4, $5)",
                     platform, scope, post_types, max_posts, window_seconds)


async def claim_everything(database_url: str, workers: int, platform: str) -> Counter[str]:
    """Several claimers on their own connections claim until nothing more comes back."""
    stores = [Store(await PostgresTransport.connect(database_url)) for _ in range(workers)]

    async def drain(i: int) -> list[str]:
        got: list[str] = []
        while batch := await stores[i].claim(f"w{i}", {platform: 7}, 60):
            got.extend(p.account.id for p in batch if p.account)
        return got

    try:
        results = await asyncio.gather(*(drain(i) for i in range(workers)))
    finally:
        for store in stores:
            await store.close()
    return Counter(a for r in results for a in r)


async def test_concurrent_claimers_never_exceed_an_account_quota(
        database_url: str, db: asyncpg.Connection) -> None:
    """Four claimers at once hand out exactly the quota per account, no more."""
    await set_quota(db, "instagram", "account", 10, 3600)
    accounts = [await insert_account(db, platform="instagram") for _ in range(3)]
    for account in accounts:
        await insert_posts(db, 40, platform="instagram", account_id=account)
    claimed = await claim_everything(database_url, 4, "instagram")
    # Under contention a claim may leave posts whose quota key another claimer holds for the
    # next claim; one more pass after the others are done settles them.
    claimed.update(await claim_everything(database_url, 1, "instagram"))
    assert claimed == dict.fromkeys(accounts, 10)
    rows = await db.fetch("select status, attempts, not_before, last_error "
                          "from created_content where status <> 'publishing'")
    assert len(rows) == 90
    assert {(r["status"], r["attempts"]) for r in rows} == {("scheduled", 0)}
    assert all(r["not_before"] is not None for r in rows)
    assert all("instagram account quota full" in r["last_error"] for r in rows)
    wait = await db.fetchval("select min(not_before - now()) from created_content "
                             "where status = 'scheduled'")
    assert 3500 < wait.total_seconds() <= 3600  # the window's next free slot


async def test_platform_quota_counts_every_account(database_url: str,
                                                   db: asyncpg.Connection) -> None:
    """A per-platform (app) quota caps the sum over all accounts."""
    await set_quota(db, "youtube", "platform", 5, 86400)
    for _ in range(3):
        account = await insert_account(db, platform="youtube")
        await insert_posts(db, 4, platform="youtube", account_id=account)
    claimed = await claim_everything(database_url, 3, "youtube")
    assert sum(claimed.values()) == 5


async def test_attempt_that_published_nothing_frees_its_slot(store: Store,
                                                             db: asyncpg.Connection) -> None:
    """A failed attempt gives its quota slot back; a published one keeps it."""
    await set_quota(db, "instagram", "account", 2, 3600)
    account = await insert_account(db, platform="instagram")
    await insert_posts(db, 4, platform="instagram", account_id=account)
    first = await store.claim("w", {"instagram": 10}, 60)
    assert len(first) == 2
    await store.record("w", [
        OutcomeRow(id=first[0].id, attempt=first[0].attempt, status="published",
                   outcome="published"),
        OutcomeRow(id=first[1].id, attempt=first[1].attempt, status="failed",
                   outcome="failed", error="bad media")])
    await db.execute("update created_content set not_before = null where status = 'scheduled'")
    second = await store.claim("w", {"instagram": 10}, 60)
    assert len(second) == 1  # one slot used by the published post, one freed by the failure


async def test_deferred_posts_go_out_when_the_window_frees(store: Store,
                                                           db: asyncpg.Connection) -> None:
    """Held-back posts become due at the next free slot and are claimed then."""
    await set_quota(db, "instagram", "account", 2, 2)
    account = await insert_account(db, platform="instagram")
    await insert_posts(db, 4, platform="instagram", account_id=account)
    first = await store.claim("w", {"instagram": 10}, 60)
    await store.record("w", [OutcomeRow(id=p.id, attempt=p.attempt, status="published",
                                        outcome="published") for p in first])
    assert await store.claim("w", {"instagram": 10}, 60) == []
    await asyncio.sleep(2.2)
    later = await store.claim("w", {"instagram": 10}, 60)
    assert len(later) == 2
    assert {p.id for p in later}.isdisjoint({p.id for p in first})


async def test_quota_for_some_post_types_leaves_others_alone(store: Store,
                                                             db: asyncpg.Connection) -> None:
    """The Reels cap holds reels back and lets text posts of the same Page through."""
    await set_quota(db, "facebook", "account", 1, 3600, ["reel"])
    account = await insert_account(db)
    await insert_posts(db, 3, account_id=account, post_type="reel")
    await insert_posts(db, 3, account_id=account, post_type="text",
                       scheduled_at=sql("now() - interval '2 minutes'"))
    claimed = await store.claim("w", {"facebook": 10}, 60)
    assert Counter(p.post_type for p in claimed) == {"text": 3, "reel": 1}


async def test_released_lease_gives_its_slot_back(store: Store, db: asyncpg.Connection) -> None:
    """A claim whose lease ran out before sending frees its reservation."""
    await set_quota(db, "instagram", "account", 1, 3600)
    account = await insert_account(db, platform="instagram")
    await insert_posts(db, 2, platform="instagram", account_id=account)
    [first] = await store.claim("w", {"instagram": 10}, 60)
    await db.execute("update created_content set lease_expires_at = now() - interval '1 s' "
                     "where id = $1", first.id)
    await db.execute("update created_content set not_before = null where status = 'scheduled'")
    assert (await store.prepare(24, ["instagram"]))["released"] == 1
    assert await db.fetchval("select count(*) from quota_reservations") == 0
    assert len(await store.claim("w", {"instagram": 10}, 60)) == 1


async def test_paused_platform_is_not_claimed(store: Store, db: asyncpg.Connection) -> None:
    """While a platform's app budget is spent, its posts stay put; others are claimed."""
    await insert_posts(db, 3, platform="youtube")
    await insert_posts(db, 2, platform="facebook")
    await store.pause_platform("youtube", 60, "quotaExceeded")
    claimed = await store.claim("w", {"youtube": 10, "facebook": 10}, 60)
    assert Counter(p.platform for p in claimed) == {"facebook": 2}
    await db.execute("update platform_pauses set paused_until = now() - interval '1 s'")
    assert len(await store.claim("w", {"youtube": 10}, 60)) == 3

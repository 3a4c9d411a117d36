"""mark_sending and record_outcomes: every write fenced by worker and attempt."""

from __future__ import annotations

import json

import asyncpg

from helpers import (
    attempts_for,
    fetch_post,
    insert_account,
    insert_post,
    insert_posts,
    set_post,
    sql,
)
from publisher.models import ClaimedPost
from publisher.store import Store
from publisher.store.store import OutcomeRow


async def _claim_one(store: Store, worker: str = "w1") -> ClaimedPost:
    [post] = await store.claim(worker, {"facebook": 1}, 60)
    return post


async def set_claim(db: asyncpg.Connection, post: int, worker: str, attempt: int) -> None:
    """Makes `worker` hold `post` at `attempt`, as a claim would."""
    await set_post(db, post, status="publishing", locked_by=worker, attempts=attempt,
                   lease_expires_at=sql("now() + interval '5 minutes'"))


async def test_mark_sending_only_touches_own_current_claims(db: asyncpg.Connection,
                                                           store: Store) -> None:
    """mark_sending marks this worker's claims at this attempt, nothing else."""
    mine, theirs, stale, unclaimed = await insert_posts(db, 4)
    await set_claim(db, mine, "w1", 1)
    await set_claim(db, theirs, "w2", 1)
    await set_claim(db, stale, "w1", 2)
    marked = await store.mark_sending(
        "w1", [(mine, 1), (theirs, 1), (stale, 1), (unclaimed, 0)])
    assert marked == {mine}
    rows = {i: await fetch_post(db, i) for i in (mine, theirs, stale, unclaimed)}
    assert rows[mine]["sending_started_at"] is not None
    assert all(rows[i]["sending_started_at"] is None for i in (theirs, stale, unclaimed))


async def test_a_stamp_writes_its_state_with_it(db: asyncpg.Connection, store: Store) -> None:
    """A stamp's state is merged into publish_state by the stamping statement (what a check
    after a crash reads); a stamp without one, or a fenced-out one, leaves it as it was."""
    with_state, without, theirs = await insert_posts(db, 3)
    for post in (with_state, without, theirs):
        await set_post(db, post, publish_state=sql("""'{"kept": 1}'::jsonb"""))
    await set_claim(db, with_state, "w1", 1)
    await set_claim(db, without, "w1", 1)
    await set_claim(db, theirs, "w2", 1)
    container = {"container_id": "c9", "publish_tried": True}
    result = await store.sync("w1", [(with_state, 1, container), (without, 1, None),
                                     (theirs, 1, container)], [])
    assert result.marked == {with_state, without}
    states = {p: json.loads((await fetch_post(db, p))["publish_state"])
              for p in (with_state, without, theirs)}
    assert states == {with_state: {"kept": 1, **container}, without: {"kept": 1},
                      theirs: {"kept": 1}}


async def test_mark_sending_refuses_an_expired_lease(db: asyncpg.Connection,
                                                     store: Store) -> None:
    """A claim whose lease has run out cannot be marked as sending."""
    post = await insert_post(db)
    claimed = await _claim_one(store)
    await set_post(db, post, lease_expires_at=sql("now() - interval '1 second'"))
    assert await store.mark_sending("w1", [(post, claimed.attempt)]) == set()
    assert (await fetch_post(db, post))["sending_started_at"] is None


async def test_record_published_writes_post_and_attempt_log(db: asyncpg.Connection,
                                                            store: Store) -> None:
    """A published outcome sets status, ids, url, published_at and logs one attempt row."""
    post = await insert_post(db, god_mode_metadata='{"publish_error": "old", "keep": 1}')
    claimed = await _claim_one(store)
    result = await store.record("w1", [OutcomeRow(
        id=post, attempt=claimed.attempt, status="published", outcome="published",
        platform_post_id="123_456", platform_url="https://facebook.com/123_456",
        detail={"http_status": 200})])
    assert (result.applied, result.lost) == (1, ())
    row = await fetch_post(db, post)
    assert row["status"] == "published"
    assert (row["platform_post_id"], row["platform_url"]) == (
        "123_456", "https://facebook.com/123_456")
    assert row["published_at"] is not None
    assert (row["locked_by"], row["lease_expires_at"], row["last_error"]) == (None, None, None)
    assert json.loads(row["god_mode_metadata"]) == {"keep": 1}
    [log] = await attempts_for(db, post)
    assert (log["worker_id"], log["attempt"], log["outcome"], log["status"], log["applied"]) == (
        "w1", 1, "published", "published", True)
    assert log["platform_post_id"] == "123_456"
    assert json.loads(log["detail"]) == {"http_status": 200}


async def test_record_from_a_lost_claim_is_fenced_out(db: asyncpg.Connection,
                                                      store: Store) -> None:
    """A write by a worker that lost its claim changes nothing, is reported lost and logged."""
    post = await insert_post(db)
    await _claim_one(store, "w1")
    # w1's lease runs out, a run releases it, w2 claims it again (attempt 1 again)
    await set_post(db, post, lease_expires_at=sql("now() - interval '1 second'"))
    await store.prepare(24, ["facebook"])
    second = await _claim_one(store, "w2")
    late = await store.record("w1", [OutcomeRow(
        id=post, attempt=1, status="published", outcome="published", platform_post_id="dup")])
    assert (late.applied, late.lost) == (0, (post,))
    row = await fetch_post(db, post)
    assert (row["status"], row["locked_by"], row["platform_post_id"]) == (
        "publishing", "w2", None)
    [log] = await attempts_for(db, post)
    assert (log["worker_id"], log["applied"], log["platform_post_id"]) == ("w1", False, "dup")
    ok = await store.record("w2", [OutcomeRow(
        id=post, attempt=second.attempt, status="published", outcome="published")])
    assert (ok.applied, ok.lost) == (1, ())


async def test_record_with_a_stale_attempt_is_fenced_out(db: asyncpg.Connection,
                                                         store: Store) -> None:
    """The same worker writing for an older attempt of the post is fenced out."""
    post = await insert_post(db)
    await set_claim(db, post, "w1", 3)
    result = await store.record("w1", [OutcomeRow(
        id=post, attempt=2, status="failed", outcome="failed", error="boom")])
    assert result.lost == (post,)
    row = await fetch_post(db, post)
    assert (row["status"], row["last_error"]) == ("publishing", None)


async def test_record_batch_mixes_applied_and_lost(db: asyncpg.Connection,
                                                   store: Store) -> None:
    """One batch: applied rows are written, lost ones reported, every outcome logged."""
    ids = await insert_posts(db, 3)
    claimed = await store.claim("w1", {"facebook": 2}, 60)
    assert [p.id for p in claimed] == ids[:2]
    result = await store.record("w1", [
        OutcomeRow(id=ids[0], attempt=1, status="published", outcome="published"),
        OutcomeRow(id=ids[1], attempt=1, status="failed", outcome="failed",
                   error="caption too long"),
        OutcomeRow(id=ids[2], attempt=1, status="published", outcome="published"),
    ])
    assert (result.applied, result.lost) == (2, (ids[2],))
    assert store.statements == 2  # the claim and one statement for the whole batch
    logs = await db.fetch("select post_id, applied from publish_attempts order by post_id")
    assert [(r["post_id"], r["applied"]) for r in logs] == [
        (ids[0], True), (ids[1], True), (ids[2], False)]
    failed = await fetch_post(db, ids[1])
    assert failed["status"] == "failed"
    assert failed["last_error"] == "caption too long"
    assert json.loads(failed["god_mode_metadata"])["publish_error"] == "caption too long"
    assert (await fetch_post(db, ids[2]))["status"] == "scheduled"


async def test_defer_with_refund_gives_the_attempt_back(db: asyncpg.Connection,
                                                        store: Store) -> None:
    """A defer back to scheduled refunds the attempt, sets not_before, and is claimable later."""
    post = await insert_post(db)
    claimed = await _claim_one(store)
    await store.record("w1", [OutcomeRow(
        id=post, attempt=claimed.attempt, status="scheduled", outcome="defer",
        error="quota used up", delay_seconds=120, refund_attempt=True)])
    row = await fetch_post(db, post)
    assert (row["status"], row["attempts"], row["locked_by"]) == ("scheduled", 0, None)
    wait = await db.fetchval(
        "select extract(epoch from not_before - now()) from created_content where id = $1", post)
    assert 110 < float(wait) <= 120
    assert row["due_at"] == row["not_before"]
    assert await store.claim("w1", {"facebook": 1}, 60) == []
    await set_post(db, post, not_before=sql("now() - interval '1 second'"))
    [again] = await store.claim("w1", {"facebook": 1}, 60)
    assert again.attempt == 1


async def test_retry_keeps_the_attempt_used(db: asyncpg.Connection, store: Store) -> None:
    """A retry outcome keeps the attempt counted and waits until not_before."""
    post = await insert_post(db)
    claimed = await _claim_one(store)
    await store.record("w1", [OutcomeRow(
        id=post, attempt=claimed.attempt, status="retrying", outcome="retry",
        error="HTTP 503", delay_seconds=60)])
    row = await fetch_post(db, post)
    assert (row["status"], row["attempts"], row["last_error"]) == ("retrying", 1, "HTTP 503")
    assert row["not_before"] is not None


async def test_needs_review_keeps_the_sending_evidence(db: asyncpg.Connection,
                                                       store: Store) -> None:
    """An unknown outcome keeps sending_started_at; other outcomes clear it."""
    first, second = await insert_posts(db, 2)
    claimed = await store.claim("w1", {"facebook": 2}, 60)
    assert await store.mark_sending("w1", [(p.id, p.attempt) for p in claimed]) == {
        first, second}
    await store.record("w1", [
        OutcomeRow(id=first, attempt=1, status="needs_review", outcome="unknown",
                   error="read timeout after sending"),
        OutcomeRow(id=second, attempt=1, status="published", outcome="published"),
    ])
    assert (await fetch_post(db, first))["sending_started_at"] is not None
    assert (await fetch_post(db, second))["sending_started_at"] is None


async def test_account_status_in_outcome_updates_the_account(db: asyncpg.Connection,
                                                             store: Store) -> None:
    """account_status in an outcome sets social_accounts.status and its reason."""
    account = await insert_account(db)
    post = await insert_post(db, account_id=account)
    claimed = await _claim_one(store)
    await store.record("w1", [OutcomeRow(
        id=post, attempt=claimed.attempt, status="failed", outcome="reauth",
        error="token revoked: reconnect the page", account_id=account,
        account_status="needs_reauth")])
    row = await db.fetchrow("select status, status_reason from social_accounts where id = $1",
                            account)
    assert (row["status"], row["status_reason"]) == (
        "needs_reauth", "token revoked: reconnect the page")
    assert (await fetch_post(db, post))["status"] == "failed"


async def test_outcome_without_account_status_leaves_account(db: asyncpg.Connection,
                                                             store: Store) -> None:
    """An outcome naming an account but no status leaves the account as it was."""
    account = await insert_account(db, status_reason="fine")
    post = await insert_post(db, account_id=account)
    claimed = await _claim_one(store)
    await store.record("w1", [OutcomeRow(id=post, attempt=claimed.attempt, status="published",
                                         outcome="published", account_id=account)])
    row = await db.fetchrow("select status, status_reason from social_accounts where id = $1",
                            account)
    assert (row["status"], row["status_reason"]) == ("active", "fine")


async def test_pause_account_holds_its_posts(db: asyncpg.Connection, store: Store) -> None:
    """pause_account keeps the account's posts out of claims until the pause ends."""
    account = await insert_account(db)
    other = await insert_account(db)
    held = await insert_post(db, account_id=account)
    free = await insert_post(db, account_id=other)
    await store.pause_account(account, 300, "rate limited (code 32)")
    assert [p.id for p in await store.claim("w1", {"facebook": 10}, 60)] == [free]
    row = await db.fetchrow(
        "select extract(epoch from paused_until - now()) as wait, status_reason "
        "from social_accounts where id = $1", account)
    assert 290 < float(row["wait"]) <= 300
    assert row["status_reason"] == "rate limited (code 32)"
    await store.pause_account(account, 10, "shorter")  # a shorter pause never cuts one short
    assert float(await db.fetchval(
        "select extract(epoch from paused_until - now()) from social_accounts where id = $1",
        account)) > 290
    await db.execute("update social_accounts set paused_until = now() - interval '1 second'")
    assert [p.id for p in await store.claim("w1", {"facebook": 10}, 60)] == [held]


async def test_record_run_and_status(db: asyncpg.Connection, store: Store) -> None:
    """record_run stores the summary; status counts posts and shows the last run."""
    await insert_posts(db, 2)
    await insert_posts(db, 1, platform="youtube", status="published")
    await insert_post(db, scheduled_at=sql("now() + interval '1 hour'"))
    started = await db.fetchval("select now() - interval '30 seconds'")
    run_id = await store.record_run("w1", started, {"published": 3, "rate_per_minute": 6.0})
    status = await store.status()
    assert status["due_now"] == 2
    assert {(p["status"], p["platform"], p["count"]) for p in status["posts"]} == {
        ("scheduled", "facebook", 3), ("published", "youtube", 1)}
    assert status["last_run"]["id"] == run_id
    assert status["last_run"]["worker_id"] == "w1"
    assert status["last_run"]["summary"] == {"published": 3, "rate_per_minute": 6.0}


async def test_fenced_out_outcome_does_not_touch_the_account(db: asyncpg.Connection,
                                                             store: Store) -> None:
    """A worker that lost its claim cannot mark the account needs_reauth."""
    account = await insert_account(db)
    post = await insert_post(db, account_id=account)
    claimed = await _claim_one(store)
    result = await store.record("someone-else", [OutcomeRow(
        id=post, attempt=claimed.attempt, status="failed", outcome="reauth",
        error="stale verdict", account_id=account, account_status="needs_reauth")])
    assert result.lost == (post,)
    assert await db.fetchval("select status from social_accounts where id = $1",
                             account) == "active"


async def test_sync_writes_outcomes_and_stamps_in_one_statement(db: asyncpg.Connection,
                                                                store: Store) -> None:
    """sync_posts: one finished post's outcome and another's sending stamp together."""
    done, next_up = await insert_posts(db, 2)
    await set_claim(db, done, "w1", 1)
    await set_claim(db, next_up, "w1", 1)
    before = store.statements
    result = await store.sync("w1", [(next_up, 1)], [OutcomeRow(
        id=done, attempt=1, status="published", outcome="published", platform_post_id="p-1")])
    assert store.statements == before + 1
    assert (result.marked, result.applied, result.lost) == ({next_up}, 1, ())
    assert (await fetch_post(db, done))["status"] == "published"
    assert (await fetch_post(db, next_up))["sending_started_at"] is not None
    assert (await fetch_post(db, done))["platform_post_id"] == "p-1"

"""Review and recovery: the SQL functions of 20261207001000_recovery.sql through the Store,
and the `publisher review` / `publisher posts ...` commands that wrap them.

Every action is fenced: a post a worker holds (publishing, lease not run out) is refused
and left exactly as it was. Each change writes an attempt-log row (outcome 'manual').
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from helpers import attempts_for, fetch_post, insert_post, insert_posts, set_post, sql
from product_db import USER_A
from publisher.cli import _parser
from publisher.recovery_cli import _since, run_command
from publisher.settings import Settings
from publisher.store import Store
from publisher.store.postgres import PostgresTransport

AGO = sql("now() - interval '10 minutes'")
HELD = {"status": "publishing", "locked_by": "worker-a", "attempts": 1,
        "lease_expires_at": sql("now() + interval '5 minutes'")}


async def held_post(db: asyncpg.Connection, **columns: Any) -> int:
    return await insert_post(db, **{**HELD, **columns})


async def review_post(db: asyncpg.Connection, **columns: Any) -> int:
    """A post whose publish call was sent and never answered."""
    values: dict[str, Any] = {
        "status": "needs_review", "attempts": 2, "max_attempts": 5,
        "sending_started_at": AGO, "review_checks": 3,
        "review_checked_at": sql("now() - interval '1 minute'"),
        "last_error": "outcome unknown, not retried to avoid a duplicate: read timeout",
        "publish_state": '{"container_id": "17890"}', **columns}
    return await insert_post(db, **values)


async def reserve(db: asyncpg.Connection, post: int, attempt: int) -> None:
    await db.execute(
        "insert into quota_reservations (post_id, attempt, platform, scope, post_type) "
        "values ($1, $2, 'facebook', 'account', 'text')", post, attempt)


async def reservations(db: asyncpg.Connection, post: int) -> int:
    return int(await db.fetchval("select count(*) from quota_reservations where post_id = $1",
                                 post))


async def unchanged(db: asyncpg.Connection, post: int, before: asyncpg.Record) -> None:
    """The row is exactly as it was, and no attempt was logged for it."""
    assert dict(await fetch_post(db, post)) == dict(before)
    assert [r["outcome"] for r in await attempts_for(db, post)] == []


# ---------------------------------------------------------------- requeue_posts


async def test_requeue_puts_posts_back_due_now_with_a_fresh_budget(
        store: Store, db: asyncpg.Connection) -> None:
    """Failed, expired, canceled and needs_review posts go back to the queue: due now,
    stamps and counters cleared, attempts kept, max_attempts raised by the budget, quota
    released, the old error kept in god_mode_metadata.recovery, a 'manual' log row."""
    failed = await insert_post(db, status="failed", attempts=5, max_attempts=5,
                               scheduled_at=sql("now() - interval '30 hours'"),
                               last_error="gave up after 5 attempts: HTTP 500",
                               god_mode_metadata='{"publish_error": "HTTP 500", "keep": 1}')
    expired = await insert_post(db, status="expired", scheduled_at=sql(
        "now() - interval '2 days'"))
    canceled = await insert_post(db, status="canceled",
                                 scheduled_at=sql("now() + interval '3 hours'"))
    review = await review_post(db)
    await reserve(db, review, 2)

    answer = await store.requeue_posts([str(failed), str(expired), str(canceled), str(review)],
                                       from_states=None, operator="alice", note="page fixed")
    assert answer["refused"] == []
    assert answer["unchanged"] == []
    assert {(c["id"], c["from"], c["to"]) for c in answer["changed"]} == {
        (failed, "failed", "scheduled"), (expired, "expired", "scheduled"),
        (canceled, "canceled", "scheduled"), (review, "needs_review", "scheduled")}

    row = await fetch_post(db, failed)
    assert (row["status"], row["not_before"], row["last_error"]) == ("scheduled", None, None)
    assert (row["attempts"], row["max_attempts"]) == (5, 10)
    assert await db.fetchval("select $1::timestamptz <= now() and $1::timestamptz "
                             "> now() - interval '1 minute'", row["scheduled_at"])
    meta = json.loads(row["god_mode_metadata"])
    assert "publish_error" not in meta
    assert meta["keep"] == 1
    assert meta["recovery"]["last_error"] == "gave up after 5 attempts: HTTP 500"
    assert meta["recovery"]["by"] == "operator:alice"
    assert meta["recovery"]["attempt_budget"] == 5
    assert meta["recovery"]["scheduled_at"] is not None  # the original time, kept

    future = await fetch_post(db, canceled)
    assert await db.fetchval("select $1::timestamptz > now() + interval '2 hours'",
                             future["scheduled_at"])  # still ahead: keeps its time

    back = await fetch_post(db, review)
    assert (back["sending_started_at"], back["review_checks"], back["review_checked_at"]) == (
        None, 0, None)
    assert json.loads(back["publish_state"]) == {"container_id": "17890"}  # resumes from it
    assert await reservations(db, review) == 0

    [log] = await attempts_for(db, failed)
    assert (log["worker_id"], log["outcome"], log["status"], log["attempt"],
            log["applied"]) == ("operator:alice", "manual", "scheduled", 5, True)
    assert json.loads(log["detail"]) == {"action": "requeue", "from": "failed",
                                         "note": "page fixed"}
    # The claim takes them as any due post.
    claimed = await store.claim("w", {"facebook": 10}, 60)
    assert {p.id for p in claimed} == {failed, expired, review}


async def test_a_second_requeue_gives_the_same_budget_not_a_growing_one(
        store: Store, db: asyncpg.Connection) -> None:
    post = await insert_post(db, status="failed", attempts=3, max_attempts=3)
    await store.requeue_posts([str(post)], from_states=None, operator=None, note=None)
    assert (await fetch_post(db, post))["max_attempts"] == 6
    await set_post(db, post, status="failed", attempts=6)
    await store.requeue_posts([str(post)], from_states=None, operator=None, note=None)
    assert (await fetch_post(db, post))["max_attempts"] == 9
    assert {r["worker_id"] for r in await attempts_for(db, post)} == {"operator"}


async def test_requeue_refuses_a_held_post_and_leaves_it_alone(
        store: Store, db: asyncpg.Connection) -> None:
    """A claim (or review hold) whose lease is live is never touched; one whose lease ran
    out is no one's and goes back to the queue; unknown and malformed ids are named."""
    held = await held_post(db, sending_started_at=sql("now()"))
    lapsed = await insert_post(db, status="publishing", locked_by="dead-worker", attempts=1,
                               lease_expires_at=sql("now() - interval '1 minute'"))
    published = await insert_post(db, status="published")
    queued = await insert_post(db)
    before = await fetch_post(db, held)

    answer = await store.requeue_posts(
        [str(held), str(lapsed), str(published), str(queued), "999999", "not-an-id"],
        from_states=None, operator="bob", note=None)

    assert [(c["id"], c["from"]) for c in answer["changed"]] == [(lapsed, "publishing")]
    assert [(u["id"], u["reason"]) for u in answer["unchanged"]] == [
        (queued, "already in the queue")]
    refused = {str(r["id"]): r["reason"] for r in answer["refused"]}
    assert set(refused) == {str(held), str(published), "999999", "not-an-id"}
    assert refused[str(held)].startswith("a worker holds it (worker-a, lease until")
    assert refused["999999"] == refused["not-an-id"] == "no such post"
    assert "published" in refused[str(published)]
    await unchanged(db, held, before)
    assert (await fetch_post(db, lapsed))["locked_by"] is None


async def test_requeue_from_review_states_only(store: Store, db: asyncpg.Connection) -> None:
    """`review --not-published` is a requeue from needs_review: a failed post is refused."""
    review = await review_post(db)
    failed = await insert_post(db, status="failed")
    answer = await store.requeue_posts([str(review), str(failed)],
                                       from_states=["needs_review", "publishing"],
                                       operator=None, note="checked")
    assert [c["id"] for c in answer["changed"]] == [review]
    assert [r["id"] for r in answer["refused"]] == [failed]
    assert "only needs_review, publishing" in answer["refused"][0]["reason"]
    assert (await fetch_post(db, failed))["status"] == "failed"


# ---------------------------------------------------------------- cancel_posts


async def test_cancel_any_unpublished_state_but_not_a_held_or_published_post(
        store: Store, db: asyncpg.Connection) -> None:
    draft = await insert_post(db, status="draft")
    waiting = await insert_post(db, status="retrying", attempts=1)
    await reserve(db, waiting, 1)
    review = await review_post(db)
    await reserve(db, review, 2)
    held = await held_post(db)
    published = await insert_post(db, status="published")
    done = await insert_post(db, status="canceled")
    before = await fetch_post(db, held)

    answer = await store.cancel_posts(
        [str(i) for i in (draft, waiting, review, held, published, done)],
        operator="carol", note="user asked")

    assert {c["id"] for c in answer["changed"]} == {draft, waiting, review}
    assert [u["id"] for u in answer["unchanged"]] == [done]
    assert {r["id"] for r in answer["refused"]} == {held, published}
    for post in (draft, waiting, review):
        assert (await fetch_post(db, post))["status"] == "canceled"
    await unchanged(db, held, before)
    assert await reservations(db, waiting) == 0
    assert await reservations(db, review) == 1  # it may be live: it still counts
    [log] = await attempts_for(db, review)
    assert (log["worker_id"], log["outcome"], log["status"]) == (
        "operator:carol", "manual", "canceled")


# ---------------------------------------------------------------- mark_published


async def test_mark_published_records_the_persons_decision(store: Store,
                                                           db: asyncpg.Connection) -> None:
    review = await review_post(db)
    await reserve(db, review, 2)
    answer = await store.mark_published(str(review), platform_post_id="42_7",
                                        platform_url="https://facebook.com/42_7",
                                        operator="dana", note="seen on the Page")
    assert answer["changed"] == [{"id": review, "from": "needs_review", "to": "published"}]
    row = await fetch_post(db, review)
    assert (row["status"], row["platform_post_id"], row["platform_url"], row["last_error"]) == (
        "published", "42_7", "https://facebook.com/42_7", None)
    assert row["published_at"] == row["sending_started_at"]  # when it went out
    assert await reservations(db, review) == 1  # it is live: it counts against the quota
    [log] = await attempts_for(db, review)
    assert (log["worker_id"], log["outcome"], log["status"], log["platform_post_id"]) == (
        "operator:dana", "manual", "published", "42_7")
    assert json.loads(log["detail"])["action"] == "published"

    again = await store.mark_published(str(review), platform_post_id=None, platform_url=None,
                                       operator=None, note=None)
    assert (again["changed"], again["unchanged"][0]["reason"]) == ([], "already published")


async def test_mark_published_tells_the_owner_like_any_publish(store: Store,
                                                               db: asyncpg.Connection) -> None:
    """A person's 'it is live' writes the same post.published event a run would, once."""
    review = await review_post(db)
    await store.mark_published(str(review), platform_post_id="42_8",
                               platform_url="https://facebook.com/42_8", operator="dana",
                               note=None)
    await store.mark_published(str(review), platform_post_id=None, platform_url=None,
                               operator=None, note=None)  # already published: no second event
    events = await db.fetch("select type, status, platform_post_id, url from publisher_events "
                            "where post_id = $1", review)
    assert [e["type"] for e in events] == ["post.published"]
    assert (events[0]["status"], events[0]["platform_post_id"], events[0]["url"]) == (
        "published", "42_8", "https://facebook.com/42_8")


async def test_mark_published_refuses_a_held_post(store: Store, db: asyncpg.Connection) -> None:
    held = await held_post(db, sending_started_at=sql("now()"))
    before = await fetch_post(db, held)
    answer = await store.mark_published(str(held), platform_post_id="1", platform_url=None,
                                        operator=None, note=None)
    assert answer["changed"] == []
    assert answer["refused"][0]["reason"].startswith("a worker holds it")
    await unchanged(db, held, before)
    missing = await store.mark_published("12x", platform_post_id=None, platform_url=None,
                                         operator=None, note=None)
    assert missing["refused"] == [{"id": "12x", "status": None, "reason": "no such post"}]


# ---------------------------------------------------------------- retry_failed_posts


async def _failures(db: asyncpg.Connection) -> dict[str, int]:
    token = "account needs re-authorization: Error validating access token (code 190)"
    return {
        "token": await insert_post(db, status="failed", attempts=1, last_error=token,
                                   updated_at=sql("now() - interval '1 hour'")),
        "token_yt": await insert_post(db, status="failed", attempts=1, platform="youtube",
                                      last_error=token.upper()),
        "old": await insert_post(db, status="failed", attempts=1, last_error=token,
                                 updated_at=sql("now() - interval '3 days'")),
        "other": await insert_post(db, status="failed", attempts=1,
                                   last_error="caption is longer than 2200 characters"),
        "percent": await insert_post(db, status="failed", attempts=1,
                                     last_error="quota 100% used"),
        "not_failed": await insert_post(db, status="expired", last_error=token),
    }


async def test_retry_failed_dry_run_changes_nothing(store: Store,
                                                    db: asyncpg.Connection) -> None:
    posts = await _failures(db)
    since = datetime.now(UTC) - timedelta(days=1)
    before = {k: dict(await fetch_post(db, v)) for k, v in posts.items()}
    answer = await store.retry_failed_posts(reason="ACCESS TOKEN", since=since, platform=None,
                                            dry_run=True, operator="erin")
    assert (answer["matched"], answer["requeued"], answer["dry_run"]) == (2, 0, True)
    assert set(answer["ids"]) == {posts["token"], posts["token_yt"]}
    assert {k: dict(await fetch_post(db, v)) for k, v in posts.items()} == before
    assert await db.fetchval("select count(*) from publish_attempts") == 0


async def test_retry_failed_by_reason_since_and_platform(store: Store,
                                                         db: asyncpg.Connection) -> None:
    """Only failed posts, failed since T, whose error contains the text (any case); with a
    platform, only its posts; % and _ in the text are literal."""
    posts = await _failures(db)
    since = datetime.now(UTC) - timedelta(days=1)
    answer = await store.retry_failed_posts(reason="access token", since=since,
                                            platform="facebook", dry_run=False,
                                            operator="erin")
    assert (answer["matched"], answer["requeued"], answer["ids"]) == (1, 1, [posts["token"]])
    statuses = {k: (await fetch_post(db, v))["status"] for k, v in posts.items()}
    assert statuses == {"token": "scheduled", "token_yt": "failed", "old": "failed",
                        "other": "failed", "percent": "failed", "not_failed": "expired"}
    [log] = await attempts_for(db, posts["token"])
    assert "retry-failed" in json.loads(log["detail"])["note"]

    literal = await store.retry_failed_posts(reason="100%", since=since, platform=None,
                                             dry_run=True, operator=None)
    assert literal["ids"] == [posts["percent"]]
    wildcard = await store.retry_failed_posts(reason="_", since=since, platform=None,
                                              dry_run=True, operator=None)
    assert wildcard["matched"] == 0  # no error has an underscore: '_' is not "any character"


# ---------------------------------------------------------------- list_review_posts


async def test_review_listing_carries_the_evidence(store: Store, db: asyncpg.Connection) -> None:
    review = await review_post(db)
    await db.execute(
        "insert into publish_attempts (post_id, worker_id, attempt, outcome, status, applied, "
        "error) values ($1, 'w1', 2, 'unknown', 'needs_review', true, 'read timeout')", review)
    await insert_post(db, status="failed")
    listing = await store.list_review_posts(None, platform=None, limit=10)
    assert listing["total"] == 1
    [post] = listing["posts"]
    assert (post["id"], post["attempts"], post["review_checks"]) == (review, 2, 3)
    assert post["sending_started_at"] is not None
    assert post["review_checked_at"] is not None
    assert post["publish_state"] == {"container_id": "17890"}
    assert "read timeout" in post["last_error"]
    assert [(r["worker_id"], r["error"]) for r in post["attempt_log"]] == [
        ("w1", "read timeout")]

    other = await store.list_review_posts(None, platform="youtube", limit=10)
    assert (other["posts"], other["total"]) == ([], 0)
    named = await store.list_review_posts([str(review), "424242"], platform=None, limit=10)
    assert [p["id"] for p in named["posts"]] == [review]
    assert named["unknown"] == [424242]


# ---------------------------------------------------------------- either id type


async def test_recovery_with_uuid_or_bigint_ids(id_type_database_url: str) -> None:
    """Ids are passed as text and cast in SQL to the table's own type."""
    conn = await asyncpg.connect(id_type_database_url, statement_cache_size=0)
    store = Store(await PostgresTransport.connect(id_type_database_url, max_size=1))
    try:
        failed, review = (await insert_posts(conn, 1, user_id=USER_A, status="failed")
                          + await insert_posts(conn, 1, user_id=USER_A, status="needs_review",
                                               sending_started_at=AGO))
        requeued = await store.requeue_posts([str(failed), "nope"], from_states=None,
                                             operator=None, note=None)
        assert [c["id"] for c in requeued["changed"]] == [failed]
        assert [r["id"] for r in requeued["refused"]] == ["nope"]
        marked = await store.mark_published(str(review).upper(), platform_post_id="p1",
                                            platform_url=None, operator=None, note=None)
        assert [c["id"] for c in marked["changed"]] == [review]
        assert await conn.fetchval("select status from created_content where id = $1",
                                   review) == "published"
    finally:
        await store.close()
        await conn.close()


# ---------------------------------------------------------------- the commands


@pytest.fixture
async def cli(database_url: str) -> Callable[..., Awaitable[tuple[int, str, str]]]:
    """Runs `publisher <args>` in this process against the test database: (exit code,
    stdout, stderr)."""
    settings = Settings(database_url=database_url)

    async def call(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await run_command(settings, _parser().parse_args(argv), out, err)
        return code, out.getvalue(), err.getvalue()

    return call


async def test_review_command_lists_and_decides(cli: Any, db: asyncpg.Connection) -> None:
    live = await review_post(db, content="Fresh bread today",
                             publish_state='{"upload_session": "https://up.example/s?upload_id'
                                           '=SECRETID", "total": 10}')
    gone = await review_post(db)
    code, out, _ = await cli("review")
    assert code == 0
    assert f"post {live} [needs_review] facebook" in out
    assert "Fresh bread today" in out
    assert "checked 3 time(s)" in out
    assert "2 post(s) in needs_review; 2 shown" in out
    assert f"publisher review {live} --published" in out
    assert "SECRETID" not in out  # an upload session's address is not shown whole

    code, out, _ = await cli("review", str(live), "--json")
    listed = json.loads(out)
    assert (code, [p["id"] for p in listed["posts"]]) == (0, [live])
    assert "SECRETID" not in out

    code, out, _ = await cli("review", str(live), "--published", "--url", "https://fb.com/1",
                             "--by", "fay")
    assert (code, out.strip()) == (0, f"{live}: needs_review -> published")
    code, out, _ = await cli("review", str(gone), "--not-published")
    assert (code, out.strip()) == (0, f"{gone}: needs_review -> scheduled")
    assert (await fetch_post(db, gone))["status"] == "scheduled"
    [log] = await attempts_for(db, gone)
    assert json.loads(log["detail"])["note"] == "a person checked: not published"


async def test_commands_refuse_held_posts_per_id_and_exit_1(cli: Any,
                                                            db: asyncpg.Connection) -> None:
    held = await held_post(db)
    failed = await insert_post(db, status="failed")
    code, out, err = await cli("posts", "requeue", str(failed), str(held), "31337")
    assert code == 1
    assert out.strip() == f"{failed}: failed -> scheduled"
    assert f"post {held} refused: a worker holds it (worker-a" in err
    assert "post 31337 refused: no such post" in err
    code, _, err = await cli("posts", "cancel", str(held))
    assert code == 1
    assert "a worker holds it" in err
    code, _, err = await cli("review", str(held), "--published")
    assert code == 1
    assert "a worker holds it" in err
    assert (await fetch_post(db, held))["status"] == "publishing"


async def test_retry_failed_command_dry_run_then_for_real(cli: Any,
                                                          db: asyncpg.Connection) -> None:
    posts = await insert_posts(db, 3, status="failed",
                               last_error="account needs re-authorization: token expired")
    code, out, _ = await cli("posts", "retry-failed", "--reason", "re-authorization",
                             "--since", "2h", "--dry-run")
    assert code == 0
    assert out.startswith("3 failed post(s) match; nothing was changed (dry run): ")
    assert {(await fetch_post(db, p))["status"] for p in posts} == {"failed"}
    code, out, _ = await cli("posts", "retry-failed", "--reason", "re-authorization",
                             "--since", "2h")
    assert (code, out.split(":")[0]) == (0, "3 of 3 failed post(s) requeued")
    assert {(await fetch_post(db, p))["status"] for p in posts} == {"scheduled"}


async def test_usage_errors_are_settings_errors(cli: Any) -> None:
    from publisher.errors import ConfigError

    with pytest.raises(ConfigError, match="one post"):
        await cli("review", "1", "2", "--published", "--url", "https://x.example/1")
    with pytest.raises(ConfigError, match="go with --published"):
        await cli("review", "1", "--not-published", "--url", "https://x.example/1")
    with pytest.raises(ConfigError, match="need the post id"):
        await cli("review", "--published")


def test_since_takes_a_time_or_a_duration_ago() -> None:
    now = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
    assert _since("6h", now) == datetime(2027, 1, 31, 6, 0, tzinfo=UTC)
    assert _since("90m", now) == datetime(2027, 1, 31, 10, 30, tzinfo=UTC)
    assert _since("2027-01-30T08:00:00", now) == datetime(2027, 1, 30, 8, 0, tzinfo=UTC)
    assert _since("2027-01-30T08:00:00+02:00", now).utcoffset() == timedelta(hours=2)


async def test_the_installed_command_exits_1_on_a_refusal(database_url: str,
                                                          db: asyncpg.Connection,
                                                          tmp_path: Path) -> None:
    """`python -m publisher posts cancel` end to end: one line per refusal, exit 1."""
    held = await held_post(db)
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url,
           "PUBLISHER_DATA_DIR": str(tmp_path)}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "publisher", "posts", "cancel", str(held)],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().startswith(f"publisher: post {held} refused: a worker holds it")
    assert (await fetch_post(db, held))["status"] == "publishing"

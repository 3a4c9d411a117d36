"""A post found absent by repeated checks over a settling window goes back to the queue by
itself, on platforms whose RECONCILE_REQUEUE_<PLATFORM> is on (publisher.reconcile)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from helpers import attempts_for, fetch_post, insert_account, insert_post, set_post, sql
from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import ConfigError
from publisher.models import Account, ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.reconcile_signals import NOT_LIVE, absent
from publisher.reconcile import ABSENT_CHECKS, REQUEUED, settle_review
from publisher.settings import Settings, simulator_endpoints
from publisher.settings_ops import ReviewSettings
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
ON = ReviewSettings(requeue_platforms=frozenset({"facebook", "linkedin"}))
OFF = ReviewSettings(requeue_platforms=frozenset())
GONE = absent("not found among the page's posts", listed=3)


def post(state: dict[str, Any] | None = None, platform: str = "facebook") -> ClaimedPost:
    account = Account(id="a1", platform=platform, external_id="page", status="active",
                      status_reason=None, access_token_encrypted="v1:x",
                      refresh_token_encrypted=None, token_expires_at=None)
    return ClaimedPost(id=1, attempt=1, max_attempts=5, platform=platform, post_type="text",
                       content="hi", title=None, link_url=None, media_urls=(), options={},
                       priority=0, scheduled_at=None, account=account,
                       publish_state=state or {})


def seen(count: int, minutes_ago: float) -> dict[str, Any]:
    first = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return {ABSENT_CHECKS: {"count": count, "first_at": first, "last_at": first}}


# ---------------------------------------------------------------- settle_review


def test_the_first_absent_check_is_counted_and_stays_unknown() -> None:
    outcome = settle_review(post(), GONE, ON, NOW)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state[ABSENT_CHECKS] == {"count": 1, "first_at": NOW.isoformat(),
                                            "last_at": NOW.isoformat()}
    assert "back to the queue after 3 over 20 minutes" in (outcome.reason or "")


def test_enough_checks_too_soon_still_wait_for_the_window() -> None:
    outcome = settle_review(post(seen(2, 19)), GONE, ON, NOW)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state[ABSENT_CHECKS]["count"] == 3


def test_enough_checks_over_the_window_requeue() -> None:
    outcome = settle_review(post(seen(2, 21)), GONE, ON, NOW)
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.detail["reconciled"] == NOT_LIVE
    assert outcome.detail["requeued_after_absence"] is True
    assert outcome.state[ABSENT_CHECKS] is None   # a later review starts afresh
    assert outcome.state[REQUEUED]["count"] == 3
    assert "in 3 checks over 21 minutes" in (outcome.reason or "")


def test_a_platform_whose_setting_is_off_never_requeues() -> None:
    outcome = settle_review(post(seen(5, 120)), GONE, OFF, NOW)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert "RECONCILE_REQUEUE_FACEBOOK is off" in (outcome.reason or "")


def test_cannot_tell_leaves_the_count_alone_and_found_wins() -> None:
    earlier = post(seen(2, 30))
    unsure = settle_review(earlier, Outcome.unknown("could not list"), ON, NOW)
    assert (unsure.kind, unsure.state) == (OutcomeKind.UNKNOWN, {})
    found = settle_review(earlier, Outcome.published("p_1", None), ON, NOW)
    assert found.kind is OutcomeKind.PUBLISHED


def test_an_unreadable_count_starts_over() -> None:
    odd = post({ABSENT_CHECKS: {"count": "two", "first_at": "yesterday"}})
    assert settle_review(odd, GONE, ON, NOW).state[ABSENT_CHECKS]["count"] == 1


# ---------------------------------------------------------------- settings


def test_review_settings_from_the_environment() -> None:
    assert Settings.from_env({}).review.requeue_platforms == {"linkedin"}
    review = Settings.from_env({"RECONCILE_REQUEUE_FACEBOOK": "on",
                                "RECONCILE_REQUEUE_LINKEDIN": "off",
                                "RECONCILE_SETTLE_MINUTES": "40",
                                "RECONCILE_MAX_CHECKS": "8"}).review
    assert (review.requeue_platforms, review.settle_minutes) == (frozenset({"facebook"}), 40)


@pytest.mark.parametrize(("env", "named"), [
    ({"RECONCILE_REQUEUE_FACEBOOK": "maybe"}, "RECONCILE_REQUEUE_FACEBOOK"),
    ({"RECONCILE_ABSENT_CHECKS": "7"}, "RECONCILE_ABSENT_CHECKS"),
    ({"RECONCILE_SETTLE_MINUTES": "60"}, "RECONCILE_SETTLE_MINUTES"),
])
def test_review_settings_that_cannot_work_are_refused(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


# ---------------------------------------------------------------- through a run


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    async with run_in_process(SimConfig(latency=0.0)) as url:
        yield url


async def sim_posts(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        posts: list[dict[str, Any]] = (await client.get(f"{url}/_sim/posts")).json()
        return posts


async def absent_twice(db: asyncpg.Connection) -> int:
    """A Facebook post in review, already found absent twice, the first time 30 min ago."""
    account = await insert_account(db, external_id="page-abs",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    state = {ABSENT_CHECKS: {"count": 2, "first_at": sql_now(-30), "last_at": sql_now(-10)}}
    return await insert_post(db, account_id=account, content="never arrived",
                             status="needs_review", attempts=1, review_checks=2,
                             sending_started_at=sql("now() - interval '31 minutes'"),
                             publish_state=json.dumps(state))


def sql_now(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


async def test_the_third_absent_check_requeues_and_it_goes_out_once(
        database_url: str, db: asyncpg.Connection, simulator: str) -> None:
    settings = Settings(database_url=database_url, simulator_url=simulator,
                        encryption_key=KEY, endpoints=simulator_endpoints(simulator),
                        review=replace(ReviewSettings(), requeue_platforms=frozenset(
                            {"facebook"})))
    post_id = await absent_twice(db)
    await run_once(settings)
    row = await fetch_post(db, post_id)
    assert (row["status"], row["attempts"], row["sending_started_at"]) == ("retrying", 1, None)
    state = json.loads(row["publish_state"])
    assert state[ABSENT_CHECKS] is None
    assert state[REQUEUED]["count"] == 3
    [log] = await attempts_for(db, post_id)
    assert (log["outcome"], log["status"]) == ("retry", "retrying")
    assert json.loads(log["detail"])["requeued_after_absence"] is True
    assert await sim_posts(simulator) == []

    await set_post(db, post_id, not_before=sql("now()"))  # its backoff, skipped
    await run_once(settings)
    assert (await fetch_post(db, post_id))["status"] == "published"
    assert [p["message"] for p in await sim_posts(simulator)] == ["never arrived"]


async def test_with_the_setting_off_a_person_decides(
        database_url: str, db: asyncpg.Connection, simulator: str) -> None:
    settings = Settings(database_url=database_url, simulator_url=simulator,
                        encryption_key=KEY, endpoints=simulator_endpoints(simulator))
    post_id = await absent_twice(db)
    await run_once(settings)
    row = await fetch_post(db, post_id)
    assert row["status"] == "needs_review"
    assert "RECONCILE_REQUEUE_FACEBOOK is off" in row["last_error"]
    assert json.loads(row["publish_state"])[ABSENT_CHECKS]["count"] == 3
    assert await sim_posts(simulator) == []

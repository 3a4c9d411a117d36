"""policy.outcome_row: each OutcomeKind becomes the post's next state; backoff bounds."""

from __future__ import annotations

from typing import Any

import pytest

from publisher.models import Account, ClaimedPost, Outcome, OutcomeKind
from publisher.policy import backoff_seconds, outcome_row

BASE = 60.0
CAP = 3600.0


def make_post(attempt: int = 1, max_attempts: int = 5, *, account: bool = True) -> ClaimedPost:
    """A claimed facebook post at the given attempt."""
    acct = Account(id="acct-7", platform="facebook", external_id="page-7", status="active",
                   status_reason=None, access_token_encrypted="v1:x",
                   refresh_token_encrypted=None, token_expires_at=None) if account else None
    return ClaimedPost(id=101, attempt=attempt, max_attempts=max_attempts, platform="facebook",
                       post_type="text", content="hi", title=None, link_url=None,
                       media_urls=(), options={}, priority=0, scheduled_at=None, account=acct)


def row_for(outcome: Outcome, post: ClaimedPost | None = None) -> Any:
    """outcome_row with the test's retry base and cap."""
    return outcome_row(post or make_post(), outcome, retry_base=BASE, retry_max=CAP)


def test_published_row_carries_ids_and_url() -> None:
    """PUBLISHED -> status published with the platform id and URL, fenced by id and attempt."""
    row = row_for(Outcome.published("1_2", "https://www.facebook.com/1_2"), make_post(attempt=3))

    assert (row.id, row.attempt) == (101, 3)
    assert row.status == "published"
    assert row.outcome == "published"
    assert row.platform_post_id == "1_2"
    assert row.platform_url == "https://www.facebook.com/1_2"
    assert row.error is None
    assert row.refund_attempt is False


@pytest.mark.parametrize("attempt", [1, 2, 3, 4])
def test_retry_backs_off_within_bounds(attempt: int) -> None:
    """RETRY before the last attempt -> retrying, delay inside the attempt's backoff window."""
    ceiling = min(CAP, BASE * 2 ** (attempt - 1))
    for _ in range(50):
        row = row_for(Outcome.retry("HTTP 503", stage="publish"), make_post(attempt=attempt))
        assert row.status == "retrying"
        assert row.outcome == "retry"
        assert row.error == "HTTP 503"
        assert row.detail == {"stage": "publish"}
        assert row.refund_attempt is False
        assert ceiling / 2 <= row.delay_seconds <= ceiling


def test_retry_honours_a_longer_retry_after() -> None:
    """A platform's retry_after longer than the backoff wins."""
    row = row_for(Outcome.retry("busy", after=5000.0), make_post(attempt=1))

    assert row.status == "retrying"
    assert row.delay_seconds == 5000.0


def test_retry_after_shorter_than_backoff_keeps_backoff() -> None:
    """A short retry_after never shortens the backoff: delay >= both."""
    for _ in range(50):
        row = row_for(Outcome.retry("busy", after=10.0), make_post(attempt=2))
        assert 60.0 <= row.delay_seconds <= 120.0
        assert row.delay_seconds >= 10.0


@pytest.mark.parametrize(("attempt", "max_attempts"), [(5, 5), (7, 5), (1, 1)])
def test_retry_on_last_attempt_gives_up(attempt: int, max_attempts: int) -> None:
    """RETRY at attempt >= max_attempts -> failed, saying how many attempts were made."""
    row = row_for(Outcome.retry("HTTP 503"), make_post(attempt, max_attempts))

    assert row.status == "failed"
    assert row.outcome == "retry"
    assert row.error == f"gave up after {attempt} attempts: HTTP 503"
    assert row.delay_seconds is None


def test_defer_reschedules_without_using_an_attempt() -> None:
    """DEFER -> scheduled again after exactly retry_after, with the attempt refunded."""
    row = row_for(Outcome.defer("throttled (code 4)", 420.0, pause_account=True, code=4),
                  make_post(attempt=5, max_attempts=5))

    assert row.status == "scheduled"
    assert row.outcome == "defer"
    assert row.refund_attempt is True
    assert row.delay_seconds == 420.0
    assert row.error == "throttled (code 4)"
    assert row.detail == {"code": 4}


def test_reauth_fails_post_and_flags_account() -> None:
    """REAUTH -> failed, and the account is marked needs_reauth."""
    row = row_for(Outcome.reauth("token expired (code 190/463)"))

    assert row.status == "failed"
    assert row.outcome == "reauth"
    assert row.account_status == "needs_reauth"
    assert row.account_id == "acct-7"
    assert "re-authorization" in row.error
    assert "token expired (code 190/463)" in row.error


def test_reauth_without_account_has_no_account_id() -> None:
    """REAUTH on a post with no account still fails the post, naming no account."""
    row = row_for(Outcome.reauth("token expired"), make_post(account=False))

    assert row.status == "failed"
    assert row.account_id is None


def test_unknown_goes_to_review_not_retry() -> None:
    """UNKNOWN -> needs_review with the evidence; never retried."""
    row = row_for(Outcome.unknown("no answer (ReadTimeout)", stage="publish"))

    assert row.status == "needs_review"
    assert row.outcome == "unknown"
    assert "no answer (ReadTimeout)" in row.error
    assert "not retried" in row.error
    assert row.delay_seconds is None
    assert row.detail == {"stage": "publish"}


def test_lease_lost_is_recorded_as_scheduled() -> None:
    """LEASE_LOST -> scheduled (nothing was sent), with the reason kept."""
    row = row_for(Outcome(kind=OutcomeKind.LEASE_LOST, reason="claim lost before sending"))

    assert row.status == "scheduled"
    assert row.outcome == "lease_lost"
    assert row.error == "claim lost before sending"
    assert row.platform_post_id is None


def test_failed_keeps_the_reason() -> None:
    """FAILED -> failed with the adapter's reason."""
    row = row_for(Outcome.failed("caption too long", code=100))

    assert row.status == "failed"
    assert row.outcome == "failed"
    assert row.error == "caption too long"
    assert row.detail == {"code": 100}
    assert row.account_status is None


def test_every_kind_has_a_row() -> None:
    """Each OutcomeKind maps to a status the store accepts."""
    statuses = {kind: row_for(Outcome(kind=kind, reason="r", retry_after=1.0)).status
                for kind in OutcomeKind}

    assert statuses == {
        OutcomeKind.PUBLISHED: "published", OutcomeKind.RETRY: "retrying",
        OutcomeKind.DEFER: "scheduled", OutcomeKind.REAUTH: "failed",
        OutcomeKind.FAILED: "failed", OutcomeKind.UNKNOWN: "needs_review",
        OutcomeKind.LEASE_LOST: "scheduled", OutcomeKind.PENDING: "scheduled"}


def test_pending_waits_without_using_an_attempt_and_keeps_its_state() -> None:
    """PENDING goes back to scheduled after the wait, refunds the attempt, keeps state."""
    row = row_for(Outcome.pending("container processing", 90.0, {"container_id": "c1"}))

    assert (row.status, row.delay_seconds, row.refund_attempt) == ("scheduled", 90.0, True)
    assert row.state == {"container_id": "c1"}
    assert row.error is None


def test_empty_detail_is_stored_as_none() -> None:
    """An outcome without detail writes None, not an empty object."""
    assert row_for(Outcome.failed("nope")).detail is None


@pytest.mark.parametrize(("attempt", "low", "high"), [
    (0, 30.0, 60.0), (1, 30.0, 60.0), (2, 60.0, 120.0), (3, 120.0, 240.0), (6, 960.0, 1920.0),
])
def test_backoff_doubles_per_attempt(attempt: int, low: float, high: float) -> None:
    """backoff_seconds lies between half and all of base * 2^(attempt-1)."""
    values = [backoff_seconds(attempt, BASE, CAP) for _ in range(200)]

    assert all(low <= v <= high for v in values)
    assert len(set(values)) > 1  # jittered


@pytest.mark.parametrize("attempt", [7, 12, 60, 1000])
def test_backoff_is_capped(attempt: int) -> None:
    """Late attempts never exceed the cap (and keep at least half of it)."""
    values = [backoff_seconds(attempt, BASE, CAP) for _ in range(200)]

    assert all(CAP / 2 <= v <= CAP for v in values)
    assert max(values) > CAP * 0.9

"""Turns an adapter's Outcome into the post's next state (the "Post states" rules)."""

from __future__ import annotations

import random
from typing import Any

from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.store.store import OutcomeRow


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempt-1), capped."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _row(post: ClaimedPost, outcome: Outcome, status: str, **extra: Any) -> OutcomeRow:
    return OutcomeRow(id=post.id, attempt=post.attempt, outcome=outcome.kind.value,
                      detail=outcome.detail or None, state=outcome.state or None,
                      status=status, **extra)


def outcome_row(post: ClaimedPost, outcome: Outcome, *, retry_base: float,
                retry_max: float) -> OutcomeRow:
    """The record_outcomes row for this post and outcome."""
    kind = outcome.kind
    if kind is OutcomeKind.PUBLISHED:
        return _row(post, outcome, "published", platform_post_id=outcome.platform_post_id,
                    platform_url=outcome.url)
    if kind is OutcomeKind.RETRY:
        if post.attempt >= post.max_attempts:
            return _row(post, outcome, "failed",
                        error=f"gave up after {post.attempt} attempts: {outcome.reason}")
        delay = max(outcome.retry_after or 0.0,
                    backoff_seconds(post.attempt, retry_base, retry_max))
        return _row(post, outcome, "retrying", error=outcome.reason, delay_seconds=delay)
    if kind is OutcomeKind.DEFER:
        # Waiting for a quota or throttle does not use up an attempt.
        wait = retry_base if outcome.retry_after is None else outcome.retry_after
        return _row(post, outcome, "scheduled", error=outcome.reason, delay_seconds=wait,
                    refund_attempt=True)
    if kind is OutcomeKind.PENDING:
        # The platform is still processing what we prepared: look again later, no attempt used.
        return _row(post, outcome, "scheduled", error=None,
                    delay_seconds=outcome.retry_after or 60.0, refund_attempt=True)
    if kind is OutcomeKind.REAUTH:
        return _row(post, outcome, "failed",
                    error=f"account needs re-authorization: {outcome.reason}",
                    account_id=post.account.id if post.account else None,
                    account_status="needs_reauth")
    if kind is OutcomeKind.UNKNOWN:
        return _row(post, outcome, "needs_review",
                    error=f"outcome unknown, not retried to avoid a duplicate: {outcome.reason}")
    if kind is OutcomeKind.LEASE_LOST:
        # Nothing was sent. Fenced out if the claim is really gone (logged as evidence);
        # applied if "sending" could not be stamped for another reason (a database blip):
        # then the post is simply due again, its attempt given back.
        return _row(post, outcome, "scheduled", error=outcome.reason, refund_attempt=True)
    return _row(post, outcome, "failed", error=outcome.reason)

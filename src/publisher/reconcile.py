"""Settling posts whose outcome is unknown by asking the platform, never by resending blindly.

A post lands in needs_review when its publish call was sent and no clear answer came back,
or its worker died after stamping "sending". Each run takes a few of them (claim_for_review)
and asks the adapter: found live -> published; provably not live and not able to go live by
itself -> back to the queue; otherwise it stays in needs_review with what was seen, for a
person to decide. Each post is asked at most RECONCILE_MAX_CHECKS times, no more often than
every RECONCILE_EVERY_SECONDS.

Between "cannot tell" and "not live" lies "absent": the platform's own listing was read
whole over the post's time window and the post is not in it (reconcile_signals.absent).
A listing may lag or hold a post back, so one such check proves nothing; settle_review
counts them in publish_state["absent_checks"] and, on platforms whose
RECONCILE_REQUEUE_<PLATFORM> is on, puts the post back in the queue once
RECONCILE_ABSENT_CHECKS of them span RECONCILE_SETTLE_MINUTES. The attempt it came from
stays used (retrying, like any retry: a post that keeps dying ends failed at max_attempts,
never loops), and the evidence stays in the attempt log and publish_state.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from publisher import redact
from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PlatformAdapter, PublishContext, publish_masked
from publisher.platforms.reconcile_signals import NOT_LIVE, is_absent
from publisher.settings_ops import ReviewSettings

REVIEW_BATCH = 100
ABSENT_CHECKS = "absent_checks"   # publish_state: {"count", "first_at", "last_at"}
REQUEUED = "requeued_after_absence"  # publish_state: the absent_checks that requeued it


@runtime_checkable
class Reconciler(Protocol):
    """Implemented by adapters that can tell whether a post went out."""

    async def reconcile(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        """PUBLISHED if it is live; RETRY if provably not (safe to publish again);
        UNKNOWN if the platform cannot tell."""
        ...


class _Masked:
    """Runs reconcile through publish_masked's token masking."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.platform = ""
        self._reconciler = reconciler

    def validate(self, post: ClaimedPost) -> str | None:
        return None

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        return await self._reconciler.reconcile(post, context)


def settled_or_unknown(outcome: Outcome) -> Outcome:
    """A review may only end as published, as provably not live, or still unknown: anything
    else (a token problem, a throttle, a shutdown) says nothing about the post itself."""
    if outcome.kind is OutcomeKind.PUBLISHED or outcome.kind is OutcomeKind.UNKNOWN:
        return outcome
    if outcome.kind is OutcomeKind.RETRY and outcome.detail.get("reconciled") == NOT_LIVE:
        return outcome
    return Outcome.unknown(f"could not check with the platform this time: {outcome.reason}")


async def reconcile_post(adapter: PlatformAdapter, post: ClaimedPost,
                         context: PublishContext) -> Outcome:
    """What the platform says about a post whose outcome was unknown."""
    if not isinstance(adapter, Reconciler):
        return Outcome.unknown(f"{post.platform} offers no way to check whether the post went "
                               "out: check the account, then set the status by hand")
    outcome = await publish_masked(_Masked(adapter), post, context)
    if outcome.kind is OutcomeKind.UNKNOWN and post.last_error:
        # The new observation becomes last_error; the earlier evidence stays in the attempt log.
        # (Masked again: an error stored before masking was this thorough may hold a piece.)
        with redact.guard(context.access_token):
            earlier = redact.clip(post.last_error, 300)
        outcome = Outcome.unknown(outcome.reason or "still unknown",
                                  **{**outcome.detail, "earlier": earlier})
    return outcome


def settle_review(post: ClaimedPost, outcome: Outcome, review: ReviewSettings,
                  now: datetime) -> Outcome:
    """What a review check comes to: published, not live (back to the queue), or still
    unknown; an absent post goes back to the queue once enough checks over the settling
    window found it absent, where its platform allows (see the module docstring)."""
    outcome = settled_or_unknown(outcome)
    if outcome.kind is not OutcomeKind.UNKNOWN or not is_absent(outcome):
        return outcome
    count, first = _absences(post.publish_state)
    count, first = count + 1, first or now
    seen = {"count": count, "first_at": first.isoformat(), "last_at": now.isoformat()}
    minutes = (now - first).total_seconds() / 60
    allowed = post.platform in review.requeue_platforms
    if allowed and count >= review.absent_checks and minutes >= review.settle_minutes:
        reason = (f"back to the queue: not found on {post.platform} in {count} checks over "
                  f"{minutes:.0f} minutes ({outcome.reason})")
        # The counter is cleared (a later review of this post starts afresh); what
        # requeued it stays in publish_state and in the attempt log's detail.
        requeue = Outcome.retry(reason, reconciled=NOT_LIVE, requeued_after_absence=True,
                                absent_checks=seen, listed=outcome.detail.get("listed"))
        return replace(requeue, state={ABSENT_CHECKS: None, REQUEUED: seen})
    return replace(outcome, reason=f"{outcome.reason} [{_next_step(post, review, count, first)}]",
                   state={**outcome.state, ABSENT_CHECKS: seen})


def _next_step(post: ClaimedPost, review: ReviewSettings, count: int, first: datetime) -> str:
    if post.platform not in review.requeue_platforms:
        return (f"absent in {count} check(s); RECONCILE_REQUEUE_{post.platform.upper()} is "
                "off, so a person decides")
    return (f"absent in {count} check(s) since {first:%Y-%m-%d %H:%M} UTC; back to the queue "
            f"after {review.absent_checks} over {review.settle_minutes:g} minutes")


def _absences(state: dict[str, Any]) -> tuple[int, datetime | None]:
    """The absent checks counted so far (0, None when none or unreadable)."""
    seen = state.get(ABSENT_CHECKS)
    if not isinstance(seen, dict):
        return 0, None
    count, first = seen.get("count"), seen.get("first_at")
    try:
        when = datetime.fromisoformat(first) if isinstance(first, str) else None
    except ValueError:
        when = None
    if not isinstance(count, int) or isinstance(count, bool) or count < 1 or when is None \
            or when.tzinfo is None:
        return 0, None
    return count, when


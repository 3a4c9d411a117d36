"""Settling posts whose outcome is unknown by asking the platform, never by resending blindly.

A post lands in needs_review when its publish call was sent and no clear answer came back,
or its worker died after stamping "sending". Each run takes a few of them (claim_for_review)
and asks the adapter: found live -> published; provably not live and not able to go live by
itself -> back to the queue; otherwise it stays in needs_review with what was seen, for a
person to decide. Each post is asked at most REVIEW_MAX_CHECKS times.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PlatformAdapter, PublishContext, publish_masked
from publisher.platforms.reconcile_signals import NOT_LIVE

REVIEW_BATCH = 100
REVIEW_MAX_CHECKS = 6
REVIEW_EVERY_SECONDS = 600.0


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
        outcome = Outcome.unknown(outcome.reason or "still unknown",
                                  **{**outcome.detail, "earlier": post.last_error[:300]})
    return outcome

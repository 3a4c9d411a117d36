"""What an adapter's reconcile() may answer besides PUBLISHED and UNKNOWN."""

from __future__ import annotations

from typing import Any

from publisher.models import Outcome

NOT_LIVE = "not_live"
ABSENT = "absent"


def not_live(reason: str) -> Outcome:
    """The platform proves the post is not live and cannot go live by itself, so publishing
    it again is safe."""
    return Outcome.retry(reason, reconciled=NOT_LIVE)


def absent(reason: str, **detail: Any) -> Outcome:
    """The platform's own listing was read whole over the post's time window and the post
    is not in it. Unlike "cannot tell" (a plain UNKNOWN: the listing could not be read, or
    not all of it), this is evidence of absence, but not proof: a listing may lag or hide a
    post for a while. It stays UNKNOWN; reconcile.settle_review counts these checks and,
    where the platform's RECONCILE_REQUEUE_<PLATFORM> allows, puts the post back in the
    queue once they span the settling window."""
    return Outcome.unknown(reason, reconciled=ABSENT, **detail)


def is_absent(outcome: Outcome) -> bool:
    return outcome.detail.get("reconciled") == ABSENT

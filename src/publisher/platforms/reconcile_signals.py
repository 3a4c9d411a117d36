"""What an adapter's reconcile() may answer besides PUBLISHED and UNKNOWN."""

from __future__ import annotations

from publisher.models import Outcome

NOT_LIVE = "not_live"


def not_live(reason: str) -> Outcome:
    """The platform proves the post is not live and cannot go live by itself, so publishing
    it again is safe."""
    return Outcome.retry(reason, reconciled=NOT_LIVE)

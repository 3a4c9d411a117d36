"""Runners SIGKILLed mid-run with absent posts requeued (RECONCILE_REQUEUE_FACEBOOK=on):
the posts the platform never received go back to the queue and out, once; a person is
left almost nothing."""

from __future__ import annotations

import relkit


async def test_crash_with_requeue_leaves_few_posts_for_a_person(database_url: str) -> None:
    result = await relkit.crash(database_url, runners=3, posts=900, accounts=45, kills=8,
                                latency=0.05, lease=10, http_timeout=3,
                                review=relkit.FAST_REQUEUE)
    why = result.explain()
    audit, notes = result.audit, result.notes
    assert notes["kills_holding_stamped"] >= 2, why  # some posts were sent when killed
    assert notes["crashed"] == [], why
    assert audit.violations == [], why
    assert audit.duplicates == 0, why
    assert audit.lost == 0, why
    assert set(audit.by_status) <= {"published", "needs_review"}, why
    # Posts that were in review: most of them never reached the platform; those went back
    # to the queue after three absent checks, and out once.
    assert notes["affected"] > 0, why
    # Whether any affected post never reached the platform depends on where each kill lands
    # (in one run here all 39 were found live); requeueing itself is shown deterministically in
    # tests/test_reconcile_absence.py. What must hold every time: few left for a person.
    assert audit.needs_review <= 0.05 * notes["affected"], why
    assert audit.sim_accepted == audit.published + audit.needs_review_live, why

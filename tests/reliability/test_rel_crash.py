"""Runners SIGKILLed mid-run: nothing goes out twice, nothing unsent is left for review."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import relkit


async def test_random_kills_never_duplicate_and_leave_only_stamped_posts_for_review(
        database_url: str) -> None:
    """10 SIGKILLs at random moments among 3 runners, leases out, one clean run."""
    result = await relkit.crash(database_url, runners=3, posts=1500, accounts=75, kills=10,
                                latency=0.05, lease=10, http_timeout=3)
    why = result.explain()
    audit, notes = result.audit, result.notes
    assert notes["kills"] == 10, why
    assert notes["kills_holding_claims"] >= 3, why  # the kills hit real work
    assert notes["crashed"] == [], why
    assert all(code == 0 for code in notes["exit_codes_of_survivors"]), why
    # The rules: no duplicate; every needs_review post had "sending" stamped (checked in
    # audit); published <-> at the simulator exactly once; nothing left in the queue.
    assert audit.violations == [], why
    assert audit.duplicates == 0, why
    assert audit.lost == 0, why
    assert set(audit.by_status) <= {"published", "needs_review"}, why
    assert audit.published + audit.needs_review == 1500, why
    # Every post the simulator has is published or honestly unknown; every other post
    # that is not in review went out exactly once.
    assert audit.sim_accepted == audit.published + audit.needs_review_live, why


async def _both(make: Callable[[], Awaitable[str]]) -> dict[str, relkit.Result]:
    urls = [await make(), await make()]
    late, never = await asyncio.gather(
        relkit.kill_while_sending(urls[0], platform_answers="late"),
        relkit.kill_while_sending(urls[1], platform_answers="never"))
    return {"late": late, "never": never}


async def test_kill_after_sending_goes_to_review_and_unsent_claims_go_back_to_the_queue(
        make_database: Callable[..., Awaitable[str]]) -> None:
    """Killed holding 2 sent and 2 unsent claims: the sent are never resent, the rest go out."""
    results = await _both(make_database)
    for answers, result in results.items():
        why = f"{answers}: {result.explain()}"
        audit, notes = result.audit, result.notes
        stamped, waiting = notes["stamped"], notes["claimed_not_stamped"]
        assert len(stamped) == 2, why
        assert len(waiting) == 2, why
        assert len(notes["not_claimed"]) == 2, why
        assert audit.violations == [], why
        assert audit.duplicates == 0, why
        assert audit.lost == 0, why
        rows = {row["id"]: row for row in audit.rows}
        for post_id in waiting + notes["not_claimed"]:
            # Never stamped: provably unsent, so released and published by the clean run,
            # with the dead worker's attempt given back.
            assert rows[post_id]["status"] == "published", why
            assert rows[post_id]["attempts"] == 1, why
            assert audit.at_sim[post_id] == 1, why
        for post_id in stamped:
            assert rows[post_id]["attempts"] == 1, why  # never claimed (sent) again
            if answers == "late":
                # At the platform at most once (on a loaded machine the kill can land before
                # the request leaves); the clean run's review found it (published, and only
                # through a review) or left it for a person, but never sent it again.
                assert audit.at_sim[post_id] <= 1, why
                assert rows[post_id]["status"] in ("published", "needs_review"), why
                if audit.at_sim[post_id] == 0:
                    assert rows[post_id]["status"] == "needs_review", why
                if rows[post_id]["status"] == "published":
                    assert rows[post_id]["review_checks"] > 0, why
            else:
                assert rows[post_id]["sending_started_at"] is not None, why
                assert audit.at_sim[post_id] == 0, why
                assert rows[post_id]["status"] == "needs_review", why
                assert rows[post_id]["last_error"], why


@pytest.mark.parametrize(("platform", "evidence"), [("instagram", "container_id"),
                                                    ("youtube", "upload_session")])
async def test_a_worker_killed_while_publishing_leaves_what_settles_it(
        make_database: Callable[..., Awaitable[str]], platform: str, evidence: str) -> None:
    """Killed while its publish calls are out (media_publish, the last chunk): the stamps
    left the container or upload session on the rows, so the clean run's review settles
    each post with the platform (live, or sent once) instead of leaving it for a person."""
    result = await relkit.kill_while_sending(await make_database(), platform_answers="late",
                                             platform=platform)
    why = result.explain()
    audit, notes = result.audit, result.notes
    stamped = notes["stamped"]
    assert len(stamped) == 2, why
    assert all(notes["stamped_state"][post_id].get(evidence) for post_id in stamped), why
    assert audit.violations == [], why
    assert (audit.duplicates, audit.lost, audit.needs_review) == (0, 0, 0), why
    rows = {row["id"]: row for row in audit.rows}
    for post_id in stamped:
        assert rows[post_id]["status"] == "published", why
        assert rows[post_id]["review_checks"] > 0, why  # settled by a check, not resent
        assert audit.at_sim[post_id] == 1, why

"""The simulator injecting one fault kind at a time: every post ends in the right state, once.

Each kind runs against its own database and the shared simulator (reset between kinds):
faults for the first two runs, then the platform recovers and runs repeat until nothing
waits (see relkit.faults).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
import relkit


@dataclass(frozen=True)
class Expect:
    finals: frozenset[str]          # the statuses posts may end in
    unknown_at_sim: bool | None     # posts with an unknown outcome: all at the simulator
                                    # (True), none (False); None: no unknown outcome at all
    failed_reason: str | None = None  # in every failed post's last_error
    deferred: bool = False          # throttled: deferred without using an attempt


PUBLISHED = frozenset({"published"})
EXPECT = {
    # A 5xx before the platform acted: on the publishing call (these scenarios run on
    # Facebook's /feed, /photos, /videos) an error answer does not prove nothing was made, so
    # it goes to review like a timeout (issue 11, never twice); on unpublished uploads, RETRY.
    "transient": Expect(frozenset({"published", "needs_review"}), False),
    "throttle": Expect(PUBLISHED, None, deferred=True),
    "rate_limit_429": Expect(PUBLISHED, None, deferred=True),
    "token_expired": Expect(frozenset({"published", "failed"}), None, "re-authorization"),
    "permission": Expect(frozenset({"published", "failed"}), None, "re-authorization"),
    "bad_input": Expect(frozenset({"published", "failed"}), None, "(#100) Invalid parameter"),
    # The request hung before the platform acted, but the client cannot know that.
    "timeout_before": Expect(frozenset({"published", "needs_review"}), False),
    # The platform made the post public, then hung / answered nonsense.
    "timeout_after": Expect(frozenset({"published", "needs_review"}), True),
    "malformed": Expect(frozenset({"published", "needs_review"}), True),
    # Dropped before the platform acted: unknown for the publishing call, retried for the
    # (safe) unpublished-photo uploads.
    "reset": Expect(frozenset({"published", "needs_review"}), False),
}
# A dead token kills its account's remaining posts: a low rate keeps most accounts alive.
RATES = {"token_expired": 0.05, "permission": 0.05, "rate_limit_429": 0.1}


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[str]:
    """One simulator for every fault kind (reset and reconfigured by each)."""
    async with relkit.simulator(relkit.SimConfig()) as url:
        yield url


@pytest.mark.parametrize("kind", relkit.FAULT_KINDS)
async def test_fault_kind_ends_every_post_in_its_right_state(kind: str, database_url: str,
                                                             sim: str) -> None:
    """Faults of one kind: right final states and reasons, zero duplicates, zero lost."""
    expect = EXPECT[kind]
    result = await relkit.faults(database_url, kind, posts=120, accounts=12,
                                 rate=RATES.get(kind, 0.2), sim_url=sim)
    why = result.explain()
    audit, notes = result.audit, result.notes
    assert notes["faults_injected"] > 0, why
    assert notes["failed_runs"] == 0, why
    assert audit.violations == [], why
    assert audit.duplicates == 0, why
    assert audit.lost == 0, why
    assert set(audit.by_status) <= expect.finals, why

    if expect.unknown_at_sim is None:
        assert notes["unknown_at_sim"] + notes["unknown_absent"] == 0, why
        assert audit.needs_review == 0, why
    elif expect.unknown_at_sim:
        # Live at the platform: in review with the record there, or found by the review.
        assert notes["unknown_at_sim"] > 0, why
        assert notes["unknown_absent"] == 0, why
        assert audit.needs_review_absent == 0, why
    else:
        # Never reached the platform, but the client cannot tell: left for review, and
        # the simulator has no record of any of them.
        assert notes["unknown_absent"] > 0, why
        assert notes["unknown_at_sim"] == 0, why
        assert audit.needs_review_live == 0, why
        assert audit.needs_review == notes["unknown_absent"], why

    conn = await asyncpg.connect(database_url)
    try:
        if expect.failed_reason is not None:
            failed = await conn.fetch("select last_error, god_mode_metadata ->> 'publish_error' "
                                      "as shown from created_content where status = 'failed'")
            assert failed, why
            for row in failed:
                assert expect.failed_reason in row["last_error"], row["last_error"]
                assert row["shown"] == row["last_error"]
        if expect.failed_reason == "re-authorization":
            # Every failed post's account needs reconnecting; the others stay active.
            assert await conn.fetchval(
                "select count(*) from created_content c join social_accounts a "
                "on a.id = c.account_id where c.status = 'failed' "
                "and a.status <> 'needs_reauth'") == 0
            assert notes["reauth_accounts"] > 0, why
        else:
            assert notes["reauth_accounts"] == 0, why
        if expect.deferred:
            first = notes["first_run"]
            assert first["deferred"] > 0, why
            assert first["deferred_attempt_used"] == 0, why  # waiting uses no attempt
            assert notes["paused_accounts"] > 0, why
            assert notes["max_attempts_used"] == 1, why
            assert notes["deferrals"] > 0, why
        if kind == "throttle":
            # Meta's estimated_time_to_regain_access (1 minute) is what the posts waited.
            assert max(notes["throttle_waits"]) == pytest.approx(60, abs=2), why
        if kind == "rate_limit_429":
            # Retry-After: 1 is honoured: nothing waits longer than that second.
            assert first["deferred_max_wait_s"] <= 1.1, why
    finally:
        await conn.close()


# --- the dangerous faults (issue 11): the post is made, the answer says otherwise -----------

# What today's adapters get wrong (the scenarios that fail), each to be fixed by the adapter.
XFAIL: dict[tuple[str, str], str] = {
}


def dangerous_cases() -> list[object]:
    cases: list[object] = []
    for kind, platforms in relkit.DANGEROUS_FAULTS.items():
        for platform in platforms:
            reason = XFAIL.get((kind, platform))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(kind, platform, marks=marks, id=f"{kind}-{platform}"))
    return cases


@pytest.mark.parametrize(("kind", "platform"), dangerous_cases())
async def test_dangerous_fault_never_posts_twice(kind: str, platform: str, database_url: str,
                                                 sim: str) -> None:
    """A post made before an error (or nothing) came back is never made again: zero
    duplicates at the simulator, no re-send LinkedIn had to refuse, nothing lost, every post
    in review live at the platform, no account sent to reconnect."""
    result = await relkit.platform_faults(database_url, kind, platform, sim_url=sim)
    why = result.explain()
    audit, notes = result.audit, result.notes

    assert notes["faults_injected"] > 0, why
    assert notes["failed_runs"] == 0, why
    assert audit.duplicates == 0, why
    assert audit.violations == [], why
    assert audit.lost == 0, why
    assert relkit.dangerous_problems(result, kind) == [], why
    if kind == "meta_throttle":
        first = notes["first_run"]
        assert first["deferred"] > 0, why
        assert first["deferred_attempt_used"] == 0, why
        assert notes["max_attempts_used"] == 1, why

"""LinkedIn reconcile: absent only when the author's listing holds every post since
sending (the whole list, or one that reaches back past it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from linkedin_support import API, ORG, LinkedIn, adapter, harness, make_post

from publisher.models import OutcomeKind
from publisher.platforms.linkedin.adapter import REVIEW_COUNT
from publisher.platforms.reconcile_signals import is_absent

ADAPTER = adapter()
SENT = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
MS = int(SENT.timestamp() * 1000)


@pytest.fixture
async def li() -> AsyncIterator[LinkedIn]:
    async with harness() as mocked:
        yield mocked


def element(n: int, modified_ms: int) -> dict[str, object]:
    return {"id": f"urn:li:share:{n}", "author": ORG, "commentary": f"post {n}",
            "createdAt": modified_ms, "lastModifiedAt": modified_ms}


async def test_a_short_listing_without_the_post_is_absent(li: LinkedIn) -> None:
    li.router.get(f"{API}/rest/posts").respond(200, json={"elements": [element(1, MS + 10)]})
    outcome = await ADAPTER.reconcile(make_post(content="Mine", sending_started_at=SENT),
                                      li.context)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert is_absent(outcome)


@pytest.mark.parametrize(("last_modified", "expected"), [
    (MS - 3_600_000, True),   # the listing reaches an hour before sending: it covers it
    (MS + 60_000, False),     # all newer than sending: older ones may be beyond the page
])
async def test_a_full_page_is_absent_only_if_it_reaches_back_past_sending(
        li: LinkedIn, last_modified: int, expected: bool) -> None:
    elements = [element(n, MS + 120_000) for n in range(REVIEW_COUNT - 1)]
    elements.append(element(99, last_modified))
    li.router.get(f"{API}/rest/posts").respond(200, json={"elements": elements})
    outcome = await ADAPTER.reconcile(make_post(content="Mine", sending_started_at=SENT),
                                      li.context)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert is_absent(outcome) is expected


async def test_without_a_sending_time_it_cannot_tell(li: LinkedIn) -> None:
    li.router.get(f"{API}/rest/posts").respond(200, json={"elements": []})
    outcome = await ADAPTER.reconcile(make_post(content="Mine", sending_started_at=None),
                                      li.context)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert not is_absent(outcome)

"""Facebook reconcile: "absent" (the feed since sending was read whole and the post is not
in it) apart from "cannot tell" (the read failed, or could not show the post by its text)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from publisher.models import ClaimedPost, OutcomeKind
from publisher.platforms.base import PublishContext
from publisher.platforms.facebook.adapter import FEED_LIMIT, FacebookAdapter
from publisher.platforms.reconcile_signals import is_absent

ADAPTER = FacebookAdapter()
SENT = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
IMAGE = ("https://cdn.example.com/img/1.jpg",)


def feed(*messages: str, more: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"data": [{"id": f"104857600123_{n}", "message": m,
                                      "created_time": "2026-03-10T18:00:05+0000"}
                                     for n, m in enumerate(messages, start=1)]}
    if more:
        body["paging"] = {"next": "https://graph.facebook.com/v25.0/104857600123/feed?after=x"}
    return body


async def test_a_whole_feed_without_the_post_is_absent(
        graph: respx.MockRouter, context: PublishContext,
        make_post: Callable[..., ClaimedPost]) -> None:
    route = graph.get("/feed").respond(200, json=feed("Another post", "Yesterday's news"))
    outcome = await ADAPTER.reconcile(make_post(content="Launch day!",
                                                sending_started_at=SENT), context)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert is_absent(outcome)
    assert outcome.detail["listed"] == 2
    params = route.calls.last.request.url.params
    assert params["since"] == str(int(SENT.timestamp()) - 300)
    assert params["limit"] == str(FEED_LIMIT)


async def test_a_found_post_is_published_not_absent(
        graph: respx.MockRouter, context: PublishContext,
        make_post: Callable[..., ClaimedPost]) -> None:
    graph.get("/feed").respond(200, json=feed("Launch day!"))
    outcome = await ADAPTER.reconcile(make_post(content="Launch day!",
                                                sending_started_at=SENT), context)
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "104857600123_1"


@pytest.mark.parametrize(("post", "body", "why"), [
    ({"content": "Launch day!"}, feed("Other", more=True), "more than 100 posts"),
    ({"content": "Launch day!", "sending_started_at": None}, feed(), "no sending time"),
    ({"content": "Hi @[1234:Ann]!"}, feed(), "mention tags"),
    ({"content": "  "}, feed(), "no text"),
    ({"content": "Launch  Day!"}, feed("launch day!"), "nearly the same text"),
    ({"content": "Clip", "post_type": "video", "media_urls": ("https://cdn.example.com/v.mp4",)},
     feed(), "video post"),
], ids=["more-pages", "no-stamp", "mention", "no-text", "near-match", "video"])
async def test_what_cannot_prove_absence_stays_cannot_tell(
        graph: respx.MockRouter, context: PublishContext,
        make_post: Callable[..., ClaimedPost], post: dict[str, Any], body: dict[str, Any],
        why: str) -> None:
    graph.get("/feed").respond(200, json=body)
    values = {"sending_started_at": SENT, **post}
    outcome = await ADAPTER.reconcile(make_post(**values), context)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert not is_absent(outcome)
    assert why in (outcome.reason or "")


async def test_a_failed_read_is_cannot_tell(graph: respx.MockRouter, context: PublishContext,
                                            make_post: Callable[..., ClaimedPost]) -> None:
    graph.get("/feed").mock(return_value=httpx.Response(500, json={"error": {"code": 2}}))
    outcome = await ADAPTER.reconcile(make_post("photo", media_urls=IMAGE,
                                                sending_started_at=SENT), context)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert not is_absent(outcome)

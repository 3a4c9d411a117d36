"""The Instagram adapter: one attempt per post type, the quota, the gate, transport errors.

See instagram_support.py for the mocked API (shapes from shared/platforms.md section 2).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from instagram_support import (
    ADAPTER,
    IMAGE,
    USER,
    VERSION,
    VIDEO,
    Gate,
    Graph,
    PostFactory,
    assert_authorized,
    assert_no_token,
    calls_to,
    context_fixture,
    form_of,
    gate_fixture,
    graph_fixture,
    ig_fixture,
    make_post_fixture,
)

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.base import PublishContext, publish_masked
from publisher.platforms.instagram.adapter import IMAGE_CHECKS, VIDEO_CHECKS, InstagramAdapter

# The shared fixtures: importing them here registers them under their short names.
FIXTURES = (context_fixture, gate_fixture, graph_fixture, ig_fixture, make_post_fixture)

MEDIA_ID = "18000000000000001"
PERMALINK = "https://www.instagram.com/p/ABC123/"
IMAGES = tuple(f"https://cdn.example.com/media/{n}.jpg" for n in range(1, 4))


# --- one attempt per post type ------------------------------------------------------------


async def test_image_post_creates_polls_publishes_and_reads_permalink(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory) -> None:
    """Image: quota read, container, FINISHED, gate, media_publish, permalink, in that order."""
    graph.container("c1", "FINISHED")
    post = make_post(content="Golden hour #sunset", options={"alt_text": "A red sky"})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert (outcome.platform_post_id, outcome.url) == (MEDIA_ID, PERMALINK)
    assert form_of(graph.create.calls.last.request) == {
        "image_url": IMAGE, "caption": "Golden hour #sunset", "alt_text": "A red sky"}
    assert form_of(graph.publish.calls.last.request) == {"creation_id": "c1"}
    assert graph.quota.calls.last.request.url.params["fields"] == "quota_usage,config"
    poll = calls_to(ig, "GET", "/c1")[0]
    assert poll.url.params["fields"] == "status_code,status"
    assert graph.permalink.calls.last.request.url.params["fields"] == "permalink"
    assert gate.calls == 1
    assert gate.sent_before == [[f"GET /{VERSION}/{USER}/content_publishing_limit",
                                 f"POST /{VERSION}/{USER}/media", f"GET /{VERSION}/c1"]]
    # The stamp carries the container, so a worker killed during media_publish leaves it
    # on the row for the review check.
    [stamped] = gate.states
    assert stamped is not None
    assert (stamped["container_id"], stamped["publish_tried"]) == ("c1", True)
    assert [c.request.url.path.rsplit("/", 1)[-1] for c in ig.calls] == [
        "content_publishing_limit", "media", "c1", "media_publish", MEDIA_ID]
    for call in ig.calls:
        assert_authorized(call.request)
    assert outcome.state["container_id"] == "c1"
    assert outcome.state["media_id"] == MEDIA_ID


async def test_image_polls_briefly_in_process(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """An image still IN_PROGRESS is polled again in-process and published when FINISHED."""
    poll = graph.container("c1", "IN_PROGRESS", "IN_PROGRESS", "FINISHED")

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert poll.call_count == 3
    assert graph.publish.call_count == 1


async def test_image_still_processing_after_checks_is_pending(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory) -> None:
    """After the in-process checks an image still IN_PROGRESS comes back later: PENDING."""
    poll = graph.container("c1", *["IN_PROGRESS"] * 3)

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PENDING
    assert outcome.retry_after == 30.0
    assert poll.call_count == 3
    assert outcome.state["container_id"] == "c1"
    assert datetime.fromisoformat(outcome.state["created_at"]) > datetime.now(UTC) - timedelta(
        minutes=1)
    assert graph.publish.call_count == 0
    assert gate.calls == 0


def test_default_in_process_checks_are_brief() -> None:
    """By default images get ~3 checks within ~2 s; video gets one look, then PENDING."""
    assert len(IMAGE_CHECKS) == 3
    assert 1.0 <= sum(IMAGE_CHECKS) <= 2.5
    assert len(VIDEO_CHECKS) == 1


async def test_real_delays_are_waited(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """The adapter sleeps the configured delays between in-process checks."""
    adapter = InstagramAdapter(image_checks=(0.0, 0.05, 0.05))
    graph.container("c1", "IN_PROGRESS", "IN_PROGRESS", "FINISHED")
    started = datetime.now(UTC)

    outcome = await publish_masked(adapter, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert datetime.now(UTC) - started >= timedelta(seconds=0.1)


async def test_reel_is_created_as_reels_and_comes_back_pending(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory) -> None:
    """Reel: media_type=REELS with its options; one look at the video, then PENDING."""
    poll = graph.container("c1", "IN_PROGRESS")
    post = make_post("reel", content="New reel", media_urls=(VIDEO,),
                     options={"share_to_feed": False, "thumb_offset": 1500})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PENDING
    assert 30.0 <= (outcome.retry_after or 0) <= 60.0
    assert form_of(graph.create.calls.last.request) == {
        "media_type": "REELS", "video_url": VIDEO, "caption": "New reel",
        "share_to_feed": "false", "thumb_offset": "1500"}
    assert poll.call_count == 1
    assert gate.calls == 0
    assert graph.publish.call_count == 0


async def test_carousel_creates_children_then_parent(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory) -> None:
    """Carousel: one child per item (is_carousel_item), then CAROUSEL with children in order."""
    for n in (1, 2, 3, 4):
        graph.container(f"c{n}", "FINISHED")
    post = make_post("carousel", content="Album", media_urls=IMAGES)

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    forms = [form_of(c.request) for c in graph.create.calls]
    assert forms == [*({"image_url": url, "is_carousel_item": "true"} for url in IMAGES),
                     {"media_type": "CAROUSEL", "children": "c1,c2,c3", "caption": "Album"}]
    assert form_of(graph.publish.calls.last.request) == {"creation_id": "c4"}
    assert gate.calls == 1
    assert gate.sent_before[0][-1] == f"GET /{VERSION}/c4"


async def test_carousel_with_video_waits_for_children_then_resumes(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory) -> None:
    """A video child still processing: PENDING with the children saved; later, the parent."""
    graph.container("c1", "FINISHED", "FINISHED")
    graph.container("c2", "IN_PROGRESS", "FINISHED")
    graph.container("c3", "FINISHED")
    post = make_post("carousel", content="Mixed", media_urls=(IMAGE, VIDEO))

    first = await publish_masked(ADAPTER, post, context)

    assert first.kind is OutcomeKind.PENDING
    assert first.state["children"] == ["c1", "c2"]
    assert first.state["container_id"] is None
    assert [form_of(c.request) for c in graph.create.calls] == [
        {"image_url": IMAGE, "is_carousel_item": "true"},
        {"media_type": "VIDEO", "video_url": VIDEO, "is_carousel_item": "true"}]
    ig.reset()

    second = await publish_masked(ADAPTER, make_post("carousel", content="Mixed",
                                                     media_urls=(IMAGE, VIDEO),
                                                     publish_state=first.state), context)

    assert second.kind is OutcomeKind.PUBLISHED
    assert [form_of(c.request) for c in graph.create.calls] == [
        {"media_type": "CAROUSEL", "children": "c1,c2", "caption": "Mixed"}]
    assert form_of(graph.publish.calls.last.request) == {"creation_id": "c3"}
    assert gate.calls == 1


@pytest.mark.parametrize(("url", "field"), [(IMAGE, "image_url"), (VIDEO, "video_url")])
async def test_story_has_no_caption(
        graph: Graph, context: PublishContext, make_post: PostFactory, url: str,
        field: str) -> None:
    """Story: media_type=STORIES with image_url or video_url and no caption."""
    graph.container("c1", "FINISHED")

    outcome = await publish_masked(ADAPTER, make_post("story", content=None, media_urls=(url,)),
                                   context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert form_of(graph.create.calls.last.request) == {"media_type": "STORIES", field: url}


# --- the publishing quota -------------------------------------------------------------------


async def test_quota_used_up_defers_the_account_without_a_container(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory) -> None:
    """quota_usage >= quota_total: DEFER the account for an hour, no container made."""
    graph.quota.mock(return_value=httpx.Response(200, json={"data": [{
        "quota_usage": 50, "config": {"quota_total": 50, "quota_duration": 86400}}]}))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.DEFER
    assert outcome.pause_account is True
    assert outcome.retry_after == 3600.0
    assert "50 of 50" in (outcome.reason or "")
    assert graph.create.call_count == 0
    assert gate.calls == 0


@pytest.mark.parametrize("answer", [
    httpx.Response(500, json={"error": {"message": "oops", "code": 1}}),
    httpx.Response(200, content=b"not json"),
    httpx.Response(200, json={"data": []}),
    httpx.ConnectError("refused"),
], ids=["500", "not-json", "empty", "connect-error"])
async def test_unreadable_quota_does_not_stop_the_post(
        graph: Graph, context: PublishContext, make_post: PostFactory,
        answer: httpx.Response | Exception) -> None:
    """When the quota can't be read the post carries on (media_publish would say so)."""
    graph.quota.mock(side_effect=[answer])
    graph.container("c1", "FINISHED")

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert graph.create.call_count == 1


# --- the sending gate and the irreversible call ---------------------------------------------


async def test_lost_claim_sends_nothing_and_keeps_the_container(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory) -> None:
    """begin_sending False: LEASE_LOST, media_publish never called, container kept."""
    gate.allow = False
    graph.container("c1", "FINISHED")

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.LEASE_LOST
    assert gate.calls == 1
    assert graph.publish.call_count == 0
    assert outcome.state["container_id"] == "c1"


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.RemoteProtocolError,
                                   httpx.WriteError])
async def test_no_answer_to_media_publish_is_unknown_and_keeps_the_container(
        graph: Graph, context: PublishContext, make_post: PostFactory,
        error: type[httpx.TransportError]) -> None:
    """Sent but unanswered: UNKNOWN, container id kept so reconciliation can check it."""
    graph.container("c1", "FINISHED")
    graph.publish.mock(side_effect=error("gone"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert error.__name__ in (outcome.reason or "")
    assert outcome.state["container_id"] == "c1"
    assert outcome.state["publish_tried"] is True
    assert_no_token(outcome)


async def test_connect_error_on_media_publish_is_retried_with_the_container(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """media_publish that never reached the platform: RETRY, same container next time."""
    graph.container("c1", "FINISHED")
    graph.publish.mock(side_effect=httpx.ConnectError("refused"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state["container_id"] == "c1"


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError,
                                   httpx.RemoteProtocolError])
async def test_transport_error_on_container_creation_is_retried(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory,
        error: type[httpx.TransportError]) -> None:
    """Containers are invisible: any transport error creating one is RETRY, nothing sent."""
    graph.create.mock(side_effect=error("gone"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state["container_id"] is None
    assert gate.calls == 0
    assert graph.publish.call_count == 0
    assert_no_token(outcome)


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError])
async def test_transport_error_on_poll_is_retried_keeping_the_container(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory,
        error: type[httpx.TransportError]) -> None:
    """A status check that fails is a read: RETRY, and the container is kept for next time."""
    graph.router.get("/c1").mock(side_effect=error("gone"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state["container_id"] == "c1"
    assert gate.calls == 0


async def test_carousel_child_failure_stops_before_the_parent(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory) -> None:
    """A child that can't be created stops the carousel: no parent, nothing sent."""
    graph.create.mock(side_effect=[httpx.Response(200, json={"id": "c1"}),
                                   httpx.ConnectError("refused")])

    outcome = await publish_masked(ADAPTER, make_post("carousel", media_urls=IMAGES), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert graph.create.call_count == 2
    assert gate.calls == 0


async def test_media_publish_2xx_without_id_is_unknown(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """A 2xx to media_publish without an id may be live: UNKNOWN, container kept."""
    graph.container("c1", "FINISHED")
    graph.publish.respond(200, json={"success": True})

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state["container_id"] == "c1"


@pytest.mark.parametrize("answer", [
    httpx.Response(500, content=b"oops"), httpx.Response(200, json={"id": MEDIA_ID}),
    httpx.ReadTimeout("slow")], ids=["500", "no-permalink", "timeout"])
async def test_permalink_failure_still_published(
        graph: Graph, context: PublishContext, make_post: PostFactory,
        answer: httpx.Response | Exception) -> None:
    """The permalink is a read after the fact: when it fails the post is still PUBLISHED."""
    graph.container("c1", "FINISHED")
    graph.permalink.mock(side_effect=[answer])

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert (outcome.platform_post_id, outcome.url) == (MEDIA_ID, None)
    assert "permalink" in outcome.detail["note"]


async def test_outcome_is_published_shape(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """A published outcome names the container it came from and carries no token."""
    graph.container("c1", "FINISHED")

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome == Outcome(kind=OutcomeKind.PUBLISHED, platform_post_id=MEDIA_ID,
                              url=PERMALINK, detail={"container_id": "c1"},
                              state={**outcome.state, "container_id": "c1",
                                     "media_id": MEDIA_ID, "publish_tried": True})
    assert_no_token(outcome)


async def test_quota_is_read_once_per_account_while_it_has_room(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """An account's next posts in the run count on the first reading instead of re-reading."""
    for container in ("c1", "c2", "c3"):
        graph.container(container, "FINISHED")
    graph.quota.mock(return_value=httpx.Response(200, json={"data": [{
        "quota_usage": 2, "config": {"quota_total": 100, "quota_duration": 86400}}]}))
    for _ in range(3):
        outcome = await publish_masked(ADAPTER, make_post("image"), context)
        assert outcome.kind is OutcomeKind.PUBLISHED
    assert graph.quota.call_count == 1
    assert graph.create.call_count == 3


async def test_quota_is_read_again_when_the_count_nears_the_limit(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """Near the limit every post reads the quota: the reading, not our count, decides."""
    for container in ("c1", "c2"):
        graph.container(container, "FINISHED")
    graph.quota.mock(return_value=httpx.Response(200, json={"data": [{
        "quota_usage": 96, "config": {"quota_total": 100, "quota_duration": 86400}}]}))
    for _ in range(2):
        await publish_masked(ADAPTER, make_post("image"), context)
    assert graph.quota.call_count == 2

"""The Instagram adapter across attempts: resuming from publish_state, reconciling containers.

See instagram_support.py for the mocked API (shapes from shared/platforms.md section 2).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from instagram_support import (
    ADAPTER,
    USER,
    VERSION,
    VIDEO,
    Gate,
    Graph,
    PostFactory,
    context_fixture,
    form_of,
    gate_fixture,
    graph_fixture,
    ig_fixture,
    make_post_fixture,
    status,
)

from publisher.models import OutcomeKind
from publisher.platforms.base import PublishContext, publish_masked
from publisher.policy import outcome_row

# The shared fixtures: importing them here registers them under their short names.
FIXTURES = (context_fixture, gate_fixture, graph_fixture, ig_fixture, make_post_fixture)

MEDIA_ID = "18000000000000001"


def ago(minutes: float) -> str:
    """An ISO time this many minutes ago."""
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


# --- a container saved by an earlier attempt -----------------------------------------------


async def test_pending_reel_resumes_on_the_same_container(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory) -> None:
    """The next attempt polls the saved container: no quota read, no new container."""
    graph.container("c1", "IN_PROGRESS", "FINISHED")
    post = make_post("reel", media_urls=(VIDEO,))
    first = await publish_masked(ADAPTER, post, context)
    assert first.kind is OutcomeKind.PENDING
    ig.reset()

    second = await publish_masked(ADAPTER, make_post("reel", media_urls=(VIDEO,),
                                                     publish_state=first.state), context)

    assert second.kind is OutcomeKind.PUBLISHED
    assert second.platform_post_id == MEDIA_ID
    assert graph.quota.call_count == 0
    assert graph.create.call_count == 0
    assert form_of(graph.publish.calls.last.request) == {"creation_id": "c1"}
    assert gate.calls == 1
    assert gate.sent_before[-1] == [f"GET /{VERSION}/c1"]


@pytest.mark.parametrize(("minutes", "after"), [(1, 30.0), (10, 60.0)])
async def test_resumed_container_still_processing_waits_longer_when_older(
        graph: Graph, context: PublishContext, make_post: PostFactory, minutes: float,
        after: float) -> None:
    """A container still processing comes back in 30 s while young, 60 s once older."""
    state = await _pending_state(graph, context, make_post, minutes, "reel", media_urls=(VIDEO,))

    outcome = await publish_masked(ADAPTER, make_post("reel", media_urls=(VIDEO,),
                                                      publish_state=state), context)

    assert outcome.kind is OutcomeKind.PENDING
    assert outcome.retry_after == after
    assert outcome.state["container_id"] == "c1"


async def _pending_state(graph: Graph, context: PublishContext, make_post: PostFactory,
                         minutes: float | None = None, *args: Any,
                         **post: Any) -> dict[str, Any]:
    """The publish_state a first attempt leaves (container c1 made `minutes` ago)."""
    graph.router.get("/c1").mock(return_value=status("IN_PROGRESS", container="c1"))
    first = await publish_masked(ADAPTER, make_post(*args, **post), context)
    assert first.kind is OutcomeKind.PENDING
    assert first.state["container_id"] == "c1"
    graph.router.reset()
    return first.state if minutes is None else {**first.state, "created_at": ago(minutes)}


async def test_container_stuck_in_progress_is_recreated(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """A container IN_PROGRESS for over 30 minutes is dropped: RETRY with the state reset."""
    state = await _pending_state(graph, context, make_post, 45, "reel", media_urls=(VIDEO,))

    outcome = await publish_masked(ADAPTER, make_post("reel", media_urls=(VIDEO,),
                                                      publish_state=state), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "still processing" in (outcome.reason or "")
    assert outcome.state["container_id"] is None


# --- containers found in other states -------------------------------------------------------


async def test_published_container_is_never_published_again(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory) -> None:
    """A saved container found PUBLISHED: the media is found by caption, nothing is sent."""
    state = await _pending_state(graph, context, make_post, content="Lost answer")
    graph.router.get("/c1").mock(return_value=status("PUBLISHED", container="c1"))
    listing = ig.get(f"/{USER}/media").respond(200, json={"data": [
        {"id": "18000000000000009", "caption": "Something newer",
         "timestamp": "2099-01-01T00:00:00+0000", "permalink": "https://www.instagram.com/p/N/"},
        {"id": "18000000000000002", "caption": "Lost answer",
         "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
         "permalink": "https://www.instagram.com/p/LOST/"}]})

    outcome = await publish_masked(ADAPTER, make_post(content="Lost answer",
                                                      publish_state=state), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "18000000000000002"
    assert outcome.url == "https://www.instagram.com/p/LOST/"
    assert outcome.detail["container_id"] == "c1"
    assert listing.calls.last.request.url.params["fields"] == "id,caption,timestamp,permalink"
    assert graph.publish.call_count == 0
    assert gate.calls == 0


@pytest.mark.parametrize("listing", [
    httpx.Response(200, json={"data": [{"id": "1", "caption": "other"}]}),
    httpx.Response(200, json={"data": [{"id": "1", "caption": "Lost answer",
                                        "timestamp": "2001-01-01T00:00:00+0000"}]}),
    httpx.Response(500, content=b"down"),
    httpx.ReadTimeout("slow"),
], ids=["no-caption-match", "match-too-old", "listing-500", "listing-timeout"])
async def test_published_container_not_found_stands_in_with_container_id(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory, listing: httpx.Response | Exception) -> None:
    """PUBLISHED but no media found: still PUBLISHED, container id as the id, a note why."""
    state = await _pending_state(graph, context, make_post, content="Lost answer")
    graph.router.get("/c1").mock(return_value=status("PUBLISHED", container="c1"))
    ig.get(f"/{USER}/media").mock(side_effect=[listing])

    outcome = await publish_masked(ADAPTER, make_post(content="Lost answer",
                                                      publish_state=state), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert (outcome.platform_post_id, outcome.url) == ("c1", None)
    assert "already published" in outcome.detail["note"]
    assert graph.publish.call_count == 0
    assert gate.calls == 0


async def test_expired_container_is_dropped_and_recreated_next_time(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """EXPIRED: RETRY with the container dropped; the next attempt makes a new one."""
    state = await _pending_state(graph, context, make_post)
    graph.router.get("/c1").mock(return_value=status("EXPIRED", container="c1"))

    expired = await publish_masked(ADAPTER, make_post(publish_state=state), context)

    assert expired.kind is OutcomeKind.RETRY
    assert "expired" in (expired.reason or "")
    assert expired.state["container_id"] is None
    graph.container("c2", "FINISHED")
    again = await publish_masked(ADAPTER, make_post(publish_state={**state, **expired.state}),
                                 context)
    assert again.kind is OutcomeKind.PUBLISHED
    assert form_of(graph.publish.calls.last.request) == {"creation_id": "c2"}


async def test_edited_post_gets_a_new_container(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """A saved container made from other content (post edited since) is not published."""
    state = await _pending_state(graph, context, make_post, content="Typo in captoin")
    graph.router.get("/c1").mock(return_value=status("FINISHED", container="c1"))
    graph.container("c2", "FINISHED")

    outcome = await publish_masked(ADAPTER, make_post(content="Typo fixed",
                                                      publish_state=state), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert form_of(graph.create.calls.last.request)["caption"] == "Typo fixed"
    assert [form_of(c.request) for c in graph.publish.calls] == [{"creation_id": "c2"}]


async def test_edited_post_whose_old_container_is_live_is_not_republished(
        ig: respx.MockRouter, graph: Graph, context: PublishContext,
        make_post: PostFactory) -> None:
    """Even when edited since, a saved container found PUBLISHED means the post is live."""
    state = await _pending_state(graph, context, make_post, content="Old text")
    graph.router.get("/c1").mock(return_value=status("PUBLISHED", container="c1"))
    ig.get(f"/{USER}/media").respond(200, json={"data": []})
    created = graph.create.call_count

    outcome = await publish_masked(ADAPTER, make_post(content="New text", publish_state=state),
                                   context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert graph.create.call_count == created
    assert graph.publish.call_count == 0


MISSING_33 = httpx.Response(400, json={"error": {
    "message": "Unsupported get request. Object with ID 'c1' does not exist, cannot be loaded "
               "due to missing permissions, or does not support this operation",
    "type": "GraphMethodException", "code": 100, "error_subcode": 33}})


@pytest.mark.parametrize("missing", [MISSING_33, httpx.Response(404, content=b"Not Found")],
                         ids=["code-100-33", "http-404"])
@pytest.mark.parametrize("tried", [False, True])
async def test_unreadable_container_is_read_again(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory,
        missing: httpx.Response, tried: bool) -> None:
    """100/33 (or a bare 404) reading a saved container may be a passing or permission
    answer, not proof it is gone: RETRY. One media_publish was tried for is kept and read
    again (it may be live); one never tried is simply prepared again."""
    state = await _pending_state(graph, context, make_post)
    graph.router.get("/c1").mock(return_value=missing)

    outcome = await publish_masked(ADAPTER, make_post(publish_state={
        **state, "publish_tried": tried}), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state["container_id"] == (state["container_id"] if tried else None)
    assert graph.publish.call_count == 0
    assert gate.calls == 0


async def test_unreadable_tried_container_fails_after_the_posts_attempts(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """The retries of an unreadable container are bounded: at the post's last attempt the
    RETRY becomes a failure naming it (policy.outcome_row)."""
    state = await _pending_state(graph, context, make_post)
    graph.router.get("/c1").mock(return_value=MISSING_33)
    post = make_post(publish_state={**state, "publish_tried": True}, attempt=5, max_attempts=5)

    outcome = await publish_masked(ADAPTER, post, context)
    row = outcome_row(post, outcome, retry_base=30.0, retry_max=600.0)

    assert row.status == "failed"
    assert "gave up after 5 attempts" in (row.error or "")
    assert "container c1 could not be read" in (row.error or "")


# --- previous_containers: media_publish answered "make a new container" ---------------------


async def _refused_state(graph: Graph, context: PublishContext, make_post: PostFactory,
                         **post: Any) -> dict[str, Any]:
    """The publish_state after media_publish on c1 answered 2207001 ("try again", a new
    container): c1 dropped as the current container, kept in previous_containers."""
    graph.router.get("/c1").mock(return_value=status("FINISHED", container="c1"))
    graph.publish.respond(500, json={"error": {"message": "Unexpected error", "code": -1,
                                               "error_subcode": 2207001,
                                               "is_transient": True}})
    first = await publish_masked(ADAPTER, make_post(**post), context)
    assert first.kind is OutcomeKind.RETRY
    assert first.state["container_id"] is None
    graph.router.reset()
    graph.publish.respond(200, json={"id": MEDIA_ID})
    return first.state


async def test_refused_container_found_published_is_the_post(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory) -> None:
    """The container a refused media_publish left is read first: PUBLISHED means the post
    went out after all; its media is found by caption; no new container, nothing sent."""
    state = await _refused_state(graph, context, make_post, content="Lost answer")
    assert [entry["id"] for entry in state["previous_containers"]] == ["c1"]
    graph.router.get("/c1").mock(return_value=status("PUBLISHED", container="c1"))
    ig.get(f"/{USER}/media").respond(200, json={"data": [
        {"id": "18000000000000002", "caption": "Lost answer",
         "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
         "permalink": "https://www.instagram.com/p/LOST/"}]})
    sent_before = gate.calls

    outcome = await publish_masked(ADAPTER, make_post(content="Lost answer",
                                                      publish_state=state), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert (outcome.platform_post_id, outcome.url) == ("18000000000000002",
                                                       "https://www.instagram.com/p/LOST/")
    assert graph.create.call_count == 0
    assert graph.publish.call_count == 0
    assert gate.calls == sent_before


@pytest.mark.parametrize("old", ["FINISHED", "ERROR", "EXPIRED"])
async def test_refused_container_not_live_gets_a_new_one(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, make_post: PostFactory,
        old: str) -> None:
    """A refused container that never went out: a new container is made and published, the
    old one read before anything else."""
    state = await _refused_state(graph, context, make_post)
    graph.router.get("/c1").mock(return_value=status(old, container="c1"))
    graph.container("c2", "FINISHED")

    outcome = await publish_masked(ADAPTER, make_post(publish_state=state), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert ig.calls[0].request.url.path == f"/{VERSION}/c1"
    assert [form_of(c.request) for c in graph.publish.calls] == [{"creation_id": "c2"}]


@pytest.mark.parametrize("answer", [
    httpx.Response(500, json={"error": {"message": "Oops", "code": 2, "is_transient": True}}),
    MISSING_33,
    status("IN_PROGRESS", container="c1"),
], ids=["server-error", "code-100-33", "in-progress"])
async def test_refused_container_that_cannot_be_told_blocks_a_new_one(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory,
        answer: httpx.Response) -> None:
    """While the refused container cannot be told live or not, nothing new is made or sent:
    RETRY (the post's attempts bound it), the container still kept."""
    state = await _refused_state(graph, context, make_post)
    graph.router.get("/c1").mock(return_value=answer)
    sent_before = gate.calls

    outcome = await publish_masked(ADAPTER, make_post(publish_state=state), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "previous_containers" not in outcome.state   # the row keeps its list
    assert graph.create.call_count == 0
    assert graph.publish.call_count == 0
    assert gate.calls == sent_before


async def test_second_refusal_keeps_both_containers(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """Each refused container joins the list; none is forgotten."""
    state = await _refused_state(graph, context, make_post)
    graph.router.get("/c1").mock(return_value=status("ERROR", container="c1"))
    graph.container("c2", "FINISHED")
    graph.publish.respond(400, json={"error": {"message": "Expired", "code": -2,
                                               "error_subcode": 2207020}})

    outcome = await publish_masked(ADAPTER, make_post(publish_state=state), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert [entry["id"] for entry in outcome.state["previous_containers"]] == ["c1", "c2"]


async def test_reconcile_reads_refused_containers_first(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, make_post: PostFactory,
        ) -> None:
    """Under review, a refused container found PUBLISHED settles it, even when the current
    container is in ERROR (which alone would say "never went out")."""
    state = await _refused_state(graph, context, make_post)
    graph.router.get("/c1").mock(return_value=status("PUBLISHED", container="c1"))
    graph.router.get("/c2").mock(return_value=status("ERROR", container="c2"))
    ig.get(f"/{USER}/media").respond(200, json={"data": []})
    post = make_post(publish_state={**state, "container_id": "c2", "publish_tried": True})

    outcome = await ADAPTER.reconcile(post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.detail["container_id"] == "c1"


async def test_unknown_container_status_keeps_the_container(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory) -> None:
    """A status_code this adapter doesn't know: RETRY, same container next time, nothing sent."""
    graph.container("c1", "SCHEDULED")

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "'SCHEDULED'" in (outcome.reason or "")
    assert outcome.state["container_id"] == "c1"
    assert graph.publish.call_count == 0
    assert gate.calls == 0

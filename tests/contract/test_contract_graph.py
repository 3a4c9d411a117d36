"""Every Graph API parameter and field our Facebook and Instagram adapters send, checked
against the facebook-business SDK's list for that edge (graph_reference.py says how the
lists are read from the installed SDK).

Each scenario drives an adapter through one path (a post type, a resumed container, a
reconcile) against a fake Graph API that records every call; each call must be an SDK edge
with the same HTTP method, every parameter one the SDK lists for it (of its type), and every
requested field one the SDK lists for the node read. A parameter an adapter starts sending
that the SDK does not know fails here, naming the edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from graph_fake import IG_USER, PAGE, FakeGraph
from graph_reference import (
    EDGES,
    SDK_API_VERSION,
    SDK_VERSION,
    GraphCall,
    problems,
    sdk_request,
)

from publisher.models import Account, ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext
from publisher.platforms.facebook.adapter import FacebookAdapter
from publisher.platforms.instagram.adapter import InstagramAdapter
from publisher.settings import PlatformEndpoints

TOKEN = "EAAGcontractToken0123456789"
IMAGE = "https://cdn.example.com/media/sunset.jpg"
VIDEO = "https://cdn.example.com/media/clip.mp4"
CAPTION = "Golden hour at the harbour"
LIVE = {OutcomeKind.PUBLISHED}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router; a request to any host the fake graph does not serve fails."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mocked:
        yield mocked


@pytest.fixture
def graph(router: respx.MockRouter) -> FakeGraph:
    """The recording Graph API."""
    return FakeGraph(router)


@pytest.fixture
async def context(router: respx.MockRouter) -> AsyncIterator[PublishContext]:
    """A PublishContext on the real Graph hosts (respx intercepts them)."""

    async def begin_sending(state: object = None) -> bool:
        return True

    async with httpx.AsyncClient(timeout=5) as client:
        yield PublishContext(client=client, access_token=TOKEN, endpoints=PlatformEndpoints(),
                             begin_sending=begin_sending)


def post(platform: str, post_type: str, *, content: str | None = CAPTION,
         media: tuple[str, ...] = (), **overrides: Any) -> ClaimedPost:
    """A claimed post on the fake page (facebook) or IG user (instagram)."""
    external = PAGE if platform == "facebook" else IG_USER
    account = Account(id=f"acct-{platform}", platform=platform, external_id=external,
                      status="active", status_reason=None, access_token_encrypted="v1:x",
                      refresh_token_encrypted=None, token_expires_at=None)
    values: dict[str, Any] = {
        "id": 11, "attempt": 1, "max_attempts": 5, "platform": platform,
        "post_type": post_type, "content": content, "title": None, "link_url": None,
        "media_urls": media, "options": {}, "priority": 0, "scheduled_at": None,
        "account": account, **overrides}
    return ClaimedPost(**values)


# --- scenarios: one path through an adapter each ----------------------------------------------

Scenario = Callable[[FakeGraph, PublishContext], Awaitable[Outcome]]
FACEBOOK = FacebookAdapter()


def instagram() -> InstagramAdapter:
    """A fresh adapter (no quota reading kept from another scenario), no poll pauses."""
    return InstagramAdapter(image_checks=(0.0,), video_checks=(0.0,))


def already_published(graph: FakeGraph) -> dict[str, Any]:
    """The publish_state of a container whose media_publish answer was lost: PUBLISHED,
    its media listed among the account's recent media."""
    container = graph.new("ig_container")
    graph.published.add(container)
    graph.captions[graph.new("ig_media")] = CAPTION
    return {"container_id": container, "created_at": datetime.now(UTC).isoformat(),
            "publish_tried": True}


async def fb_reconcile(graph: FakeGraph, context: PublishContext) -> Outcome:
    graph.feed.append({"id": f"{PAGE}_1", "message": CAPTION,
                       "created_time": "2026-07-01T12:00:00+0000"})
    return await FACEBOOK.reconcile(post("facebook", "text", sending_started_at=datetime.now(
        UTC)), context)


async def ig_reconcile(graph: FakeGraph, context: PublishContext) -> Outcome:
    container = graph.new("ig_container")
    return await instagram().reconcile(post("instagram", "image", media=(IMAGE,),
                                            publish_state={"container_id": container}),
                                       context)


SCENARIOS: dict[str, Scenario] = {
    "fb-text": lambda g, c: FACEBOOK.publish(post("facebook", "text"), c),
    "fb-link": lambda g, c: FACEBOOK.publish(
        post("facebook", "link", link_url="https://example.com/article"), c),
    "fb-photo": lambda g, c: FACEBOOK.publish(post("facebook", "photo", media=(IMAGE,)), c),
    "fb-photos": lambda g, c: FACEBOOK.publish(
        post("facebook", "photos", media=(IMAGE, IMAGE + "?2", IMAGE + "?3")), c),
    "fb-video": lambda g, c: FACEBOOK.publish(
        post("facebook", "video", media=(VIDEO,), title="Harbour"), c),
    "fb-reconcile": fb_reconcile,
    "ig-image": lambda g, c: instagram().publish(
        post("instagram", "image", media=(IMAGE,), options={"alt_text": "A harbour"}), c),
    "ig-reel": lambda g, c: instagram().publish(
        post("instagram", "reel", media=(VIDEO,),
             options={"share_to_feed": True, "thumb_offset": 1500}), c),
    "ig-story-image": lambda g, c: instagram().publish(
        post("instagram", "story", content=None, media=(IMAGE,)), c),
    "ig-story-video": lambda g, c: instagram().publish(
        post("instagram", "story", content=None, media=(VIDEO,)), c),
    "ig-carousel": lambda g, c: instagram().publish(
        post("instagram", "carousel", media=(IMAGE, VIDEO, IMAGE + "?2")), c),
    "ig-already-published": lambda g, c: instagram().publish(
        post("instagram", "image", media=(IMAGE,), publish_state=already_published(g)), c),
    "ig-reconcile": ig_reconcile,
}
# The edges the scenarios must reach between them (every edge the adapters use).
REACHED = {
    ("page", "POST", "feed"), ("page", "POST", "photos"), ("page", "POST", "videos"),
    ("page", "GET", "feed"), ("ig_user", "POST", "media"), ("ig_user", "POST", "media_publish"),
    ("ig_user", "GET", "media"), ("ig_user", "GET", "content_publishing_limit"),
    ("ig_container", "GET", ""), ("ig_media", "GET", ""), ("video", "GET", ""),
}


async def drive(name: str, graph: FakeGraph, context: PublishContext) -> list[GraphCall]:
    """Runs one scenario; it must end live (published, or found published)."""
    outcome = await SCENARIOS[name](graph, context)
    assert outcome.kind in LIVE, (name, outcome.reason)
    assert graph.calls, name
    return graph.calls


@pytest.mark.parametrize("name", SCENARIOS)
async def test_every_graph_call_is_an_sdk_edge(graph: FakeGraph, context: PublishContext,
                                               name: str) -> None:
    """Each call: an SDK edge with our HTTP method; its parameters and fields in the SDK's
    lists for that edge, of the SDK's types."""
    calls = await drive(name, graph, context)

    found = [problem for call in calls for problem in problems(call)]
    assert found == []


async def test_the_scenarios_reach_every_edge_the_adapters_use(
        router: respx.MockRouter, context: PublishContext) -> None:
    """Between them the scenarios call every edge above (a new edge must be added)."""
    reached: set[tuple[str, str, str]] = set()
    for name in SCENARIOS:
        graph = FakeGraph(router)
        reached |= {call.key for call in await drive(name, graph, context)}
        router.reset()

    assert reached == REACHED
    assert reached <= set(EDGES)


# --- the check itself ------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "expected"), [
    pytest.param(GraphCall("POST", "graph.facebook.com", "page", PAGE, "feed",
                           {"message": "hi", "mesage": "typo"}),
                 "parameter 'mesage' is not one the SDK lists", id="unknown-param"),
    pytest.param(GraphCall("POST", "graph.facebook.com", "ig_user", IG_USER, "media_publish",
                           {"creation_id": "not-a-number"}),
                 "is not of the SDK's type 'unsigned int'", id="wrong-type"),
    pytest.param(GraphCall("GET", "graph.facebook.com", "ig_media", "1", "",
                           {"fields": "permalink,shortlink"}),
                 "field 'shortlink' is not a field the SDK lists", id="unknown-field"),
    pytest.param(GraphCall("POST", "graph.facebook.com", "page", PAGE, "feed",
                           {"message": "hi", "limit": "5"}),
                 "parameter 'limit' is not one the SDK lists", id="paging-only-on-reads"),
    pytest.param(GraphCall("POST", "graph-video.facebook.com", "page", PAGE, "feed",
                           {"message": "hi"}),
                 "sent to graph-video.facebook.com", id="wrong-host"),
    pytest.param(GraphCall("POST", "graph.facebook.com", "page", PAGE, "stories", {}),
                 "no facebook-business SDK edge is mapped", id="unknown-edge"),
])
def test_the_check_refuses_what_the_sdk_does_not_list(call: GraphCall, expected: str) -> None:
    """A parameter, type, field or edge the SDK does not know is a problem, named."""
    found = problems(call)

    assert len(found) == 1, found
    assert expected in found[0]


def test_the_sdk_builds_requests_without_sending() -> None:
    """pending=True gives the SDK's own request (no API object, no network), with the method,
    edge, parameter checker and fields the checks read: a renamed attribute fails here."""
    for (kind, method, edge), _ in EDGES.items():
        request = sdk_request(GraphCall(method, "graph.facebook.com", kind, "1", edge))
        assert request is not None
        assert (request._method, request._endpoint) == (method, edge)
        assert request._api is None
        assert request._param_checker.is_valid_key("no_such_parameter") is False
        if method == "POST":
            assert request._param_checker._type_check_info, (kind, edge)
        else:
            named = {f for f in request._accepted_fields if isinstance(f, str) and "." not in f}
            assert named, (kind, edge)


def test_our_graph_version_is_one_the_sdk_knows() -> None:
    """The adapters' Graph API version is not newer than the installed SDK's."""
    ours = PlatformEndpoints().facebook_api_version

    assert SDK_VERSION.split(".")[0] == SDK_API_VERSION.removeprefix("v").split(".")[0]
    assert float(ours.removeprefix("v")) <= float(SDK_API_VERSION.removeprefix("v"))

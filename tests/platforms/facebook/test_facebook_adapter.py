"""The Facebook Pages adapter: request shapes, the sending gate, validation, transport errors.

The Graph API is mocked with respx from the shapes in shared/platforms.md section 1:
feed answers {"id": "{page}_{post}"}, photos answer {"id": photo, "post_id": "{page}_{post}"}.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext, publish_masked
from publisher.platforms.facebook.adapter import MAX_MESSAGE_CHARS, FacebookAdapter
from publisher.platforms.reconcile_signals import NOT_LIVE
from publisher.settings import PlatformEndpoints

ADAPTER = FacebookAdapter()
PostFactory = Callable[..., ClaimedPost]
IMAGES = tuple(f"https://cdn.example.com/img/{n}.jpg" for n in range(1, 4))


def form_of(request: httpx.Request) -> dict[str, str]:
    """The urlencoded form fields of a request (each field once)."""
    fields = parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in fields.values()), fields
    return {name: values[0] for name, values in fields.items()}


def assert_authorized(request: httpx.Request, token: str) -> None:
    """The token travels in the Authorization header and nowhere in the URL."""
    assert request.headers["authorization"] == f"Bearer {token}"
    assert token not in str(request.url)
    assert "access_token" not in str(request.url)


def assert_no_token(outcome: Outcome, token: str) -> None:
    """Neither the reason nor the detail of an outcome carries the token."""
    assert token not in (outcome.reason or "")
    assert token not in repr(outcome.detail)


# --- publishing each post type -------------------------------------------------------------


async def test_text_post_goes_to_feed_with_message(
        graph: respx.MockRouter, context: PublishContext, gate: Any, token: str,
        page_path: str, make_post: PostFactory) -> None:
    """A text post is one POST /{v}/{page}/feed with `message` and a Bearer header."""
    feed = graph.post("/feed").respond(200, json={"id": "104857600123_777"})

    outcome = await publish_masked(ADAPTER, make_post(content="Launch day!"), context)

    assert outcome == Outcome.published("104857600123_777",
                                        "https://www.facebook.com/104857600123_777")
    assert feed.call_count == 1
    request = feed.calls.last.request
    assert request.url.path == f"{page_path}/feed"
    assert form_of(request) == {"message": "Launch day!"}
    assert_authorized(request, token)
    assert gate.calls == 1
    assert gate.sent_before == [[]]


async def test_link_post_sends_link_with_message(
        graph: respx.MockRouter, context: PublishContext, token: str,
        make_post: PostFactory) -> None:
    """A link post is POST /feed with `message` and `link`."""
    feed = graph.post("/feed").respond(200, json={"id": "104857600123_778"})
    post = make_post("link", content="Read this", link_url="https://example.com/article?id=9")

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "104857600123_778"
    assert form_of(feed.calls.last.request) == {"message": "Read this",
                                                "link": "https://example.com/article?id=9"}
    assert_authorized(feed.calls.last.request, token)


async def test_photo_post_uses_photos_edge_and_post_id(
        graph: respx.MockRouter, context: PublishContext, gate: Any, token: str,
        make_post: PostFactory) -> None:
    """A photo post is one published POST /photos; the post id comes from `post_id`."""
    photos = graph.post("/photos").respond(
        200, json={"id": "555000111", "post_id": "104857600123_779"})
    feed = graph.post("/feed")
    post = make_post("photo", content="Sunset", media_urls=IMAGES[:1])

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome == Outcome.published("104857600123_779",
                                        "https://www.facebook.com/104857600123_779")
    assert photos.call_count == 1
    assert feed.call_count == 0
    assert form_of(photos.calls.last.request) == {"url": IMAGES[0], "caption": "Sunset",
                                                  "published": "true"}
    assert_authorized(photos.calls.last.request, token)
    assert gate.calls == 1
    assert gate.sent_before == [[]]


async def test_multi_photo_uploads_unpublished_then_attaches_in_order(
        graph: respx.MockRouter, context: PublishContext, gate: Any, token: str,
        page_path: str, make_post: PostFactory) -> None:
    """Each image is an unpublished upload; /feed attaches their media_fbids in order."""
    photos = graph.post("/photos").mock(side_effect=[
        httpx.Response(200, json={"id": f"90{n}"}) for n in range(1, 4)])
    feed = graph.post("/feed").respond(200, json={"id": "104857600123_780"})
    post = make_post("photos", content="Album", media_urls=IMAGES)

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "104857600123_780"
    uploads = [form_of(call.request) for call in photos.calls]
    assert uploads == [{"url": url, "published": "false"} for url in IMAGES]
    form = form_of(feed.calls.last.request)
    assert form["message"] == "Album"
    assert json.loads(form["attached_media"]) == [
        {"media_fbid": "901"}, {"media_fbid": "902"}, {"media_fbid": "903"}]
    for call in [*photos.calls, *feed.calls]:
        assert_authorized(call.request, token)
    # begin_sending came once, after every upload and before the feed call.
    assert gate.calls == 1
    assert gate.sent_before == [[f"{page_path}/photos"] * 3]


@pytest.mark.parametrize(("post_type", "media", "edge"), [
    ("text", (), "/feed"),
    ("link", (), "/feed"),
    ("photo", IMAGES[:1], "/photos"),
])
async def test_lost_claim_sends_nothing(
        graph: respx.MockRouter, context: PublishContext, gate: Any,
        make_post: PostFactory, post_type: str, media: tuple[str, ...], edge: str) -> None:
    """When begin_sending returns False the publishing call is never made: LEASE_LOST."""
    gate.allow = False
    route = graph.post(edge).respond(200, json={"id": "1_2", "post_id": "1_2"})
    post = make_post(post_type, link_url="https://example.com", media_urls=media)

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.LEASE_LOST
    assert gate.calls == 1
    assert route.call_count == 0
    assert len(graph.calls) == 0


async def test_lost_claim_after_uploads_skips_feed(
        graph: respx.MockRouter, context: PublishContext, gate: Any,
        make_post: PostFactory) -> None:
    """A multi-photo post whose claim is lost after its (invisible) uploads is not published."""
    gate.allow = False
    photos = graph.post("/photos").respond(200, json={"id": "901"})
    feed = graph.post("/feed").respond(200, json={"id": "1_2"})

    outcome = await publish_masked(ADAPTER, make_post("photos", media_urls=IMAGES[:2]), context)

    assert outcome.kind is OutcomeKind.LEASE_LOST
    assert photos.call_count == 2
    assert feed.call_count == 0
    assert gate.calls == 1


async def test_failed_upload_never_reaches_sending(
        graph: respx.MockRouter, context: PublishContext, gate: Any,
        make_post: PostFactory) -> None:
    """An upload error stops the post before begin_sending and before /feed."""
    photos = graph.post("/photos").mock(side_effect=[
        httpx.Response(200, json={"id": "901"}),
        httpx.Response(400, json={"error": {"message": "Photo too big", "type": "OAuthException",
                                            "code": 1366046}})])
    feed = graph.post("/feed")

    outcome = await publish_masked(ADAPTER, make_post("photos", media_urls=IMAGES), context)

    assert outcome.kind is OutcomeKind.FAILED
    assert "Photo too big" in (outcome.reason or "")
    assert photos.call_count == 2
    assert feed.call_count == 0
    assert gate.calls == 0


async def test_empty_caption_photo_sends_empty_caption(
        graph: respx.MockRouter, context: PublishContext, make_post: PostFactory) -> None:
    """A photo without text still posts, with an empty caption rather than 'None'."""
    photos = graph.post("/photos").respond(200, json={"id": "5", "post_id": "1_5"})

    outcome = await publish_masked(ADAPTER, make_post("photo", content=None, media_urls=IMAGES[:1]),
                                    context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert form_of(photos.calls.last.request)["caption"] == ""


# --- validate ------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"post_type": "story", "media_urls": IMAGES[:1]}, "'story'", id="type"),
    pytest.param({"post_type": "story"}, "text, link, photo, photos", id="type-lists-choices"),
    pytest.param({"content": ""}, "needs text", id="empty-text"),
    pytest.param({"content": "  \n\t "}, "needs text", id="blank-text"),
    pytest.param({"content": None}, "needs text", id="no-text"),
    pytest.param({"post_type": "link"}, "link_url", id="link-without-url"),
    pytest.param({"post_type": "link", "link_url": "example.com/x"}, "http(s) link_url",
                 id="link-without-scheme"),
    pytest.param({"post_type": "photo"}, "exactly 1 image URL, got 0", id="photo-none"),
    pytest.param({"post_type": "photo", "media_urls": IMAGES[:2]}, "exactly 1 image URL, got 2",
                 id="photo-two"),
    pytest.param({"post_type": "photos", "media_urls": IMAGES[:1]}, "2-10 image URLs, got 1",
                 id="photos-one"),
    pytest.param({"post_type": "photos",
                  "media_urls": tuple(f"https://cdn.example.com/{n}.jpg" for n in range(11))},
                 "2-10 image URLs, got 11", id="photos-eleven"),
    pytest.param({"content": "x" * (MAX_MESSAGE_CHARS + 1)}, "63207 characters; the limit is 63206",
                 id="text-too-long"),
    pytest.param({"post_type": "photo", "media_urls": IMAGES[:1],
                  "content": "y" * (MAX_MESSAGE_CHARS + 1)}, "the limit is 63206",
                 id="caption-too-long"),
])
def test_validate_names_the_problem(make_post: PostFactory, overrides: dict[str, Any],
                                    expected: str) -> None:
    """Each rule rejects with a reason that names what is wrong."""
    reason = ADAPTER.validate(make_post(**overrides))
    assert reason is not None
    assert expected in reason


@pytest.mark.parametrize("overrides", [
    pytest.param({}, id="text"),
    pytest.param({"content": "x" * MAX_MESSAGE_CHARS}, id="text-at-limit"),
    pytest.param({"post_type": "link", "link_url": "https://example.com"}, id="link"),
    pytest.param({"post_type": "link", "content": "", "link_url": "http://example.com"},
                 id="link-no-text"),
    pytest.param({"post_type": "photo", "content": None, "media_urls": IMAGES[:1]}, id="photo"),
    pytest.param({"post_type": "photos", "media_urls": IMAGES[:2]}, id="photos-2"),
    pytest.param({"post_type": "photos",
                  "media_urls": tuple(f"https://cdn.example.com/{n}.jpg" for n in range(10))},
                 id="photos-10"),
])
def test_validate_accepts_valid_posts(make_post: PostFactory, overrides: dict[str, Any]) -> None:
    """A post that follows every rule validates to None."""
    assert MAX_MESSAGE_CHARS == 63_206
    assert ADAPTER.validate(make_post(**overrides)) is None


# Issue 10, items 3 and 6: nothing the post asks for is dropped, nothing is invented.
@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"media_urls": IMAGES}, "a facebook text post takes no media, but it has 3",
                 id="text-with-three-images"),
    pytest.param({"post_type": "link", "link_url": "https://example.com",
                  "media_urls": IMAGES[:1]}, "a facebook link post takes no media",
                 id="link-with-image"),
    pytest.param({"post_type": ""}, "no post_type; facebook takes one of: text, link, photo",
                 id="empty-post-type"),
    pytest.param({"post_type": " "}, "no post_type", id="blank-post-type"),
    pytest.param({"content": "\u200b\u200c\u200d\ufeff"}, "needs text", id="zero-width-text"),
    pytest.param({"content": "\u3164\u2800\u00a0"}, "needs text", id="blank-looking-text"),
    pytest.param({"options": {"privacy": "private"}}, "facebook does not take option 'privacy'",
                 id="any-option"),
    pytest.param({"options": {"published": False}}, "none of its options is ignored",
                 id="option-never-ignored"),
])
def test_validate_refuses_what_would_be_dropped_or_invented(
        make_post: PostFactory, overrides: dict[str, Any], expected: str) -> None:
    reason = ADAPTER.validate(make_post(**overrides))
    assert reason is not None
    assert expected in reason


# --- transport errors ----------------------------------------------------------------------


async def test_connect_error_on_publish_is_retried(
        graph: respx.MockRouter, context: PublishContext, token: str,
        make_post: PostFactory) -> None:
    """A connection that never opened sent nothing: RETRY."""
    graph.post("/feed").mock(side_effect=httpx.ConnectError("connection refused"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "nothing was sent" in (outcome.reason or "")
    assert_no_token(outcome, token)


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_no_answer_to_publishing_call_is_unknown(
        graph: respx.MockRouter, context: PublishContext, token: str, make_post: PostFactory,
        error: type[httpx.TransportError]) -> None:
    """Sent but unanswered on the publishing call may be live: UNKNOWN, never RETRY."""
    graph.post("/feed").mock(side_effect=error("gone"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert error.__name__ in (outcome.reason or "")
    assert_no_token(outcome, token)


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_no_answer_to_single_photo_is_unknown(
        graph: respx.MockRouter, context: PublishContext, make_post: PostFactory,
        error: type[httpx.TransportError]) -> None:
    """The published /photos call is the irreversible one for a photo post: UNKNOWN."""
    graph.post("/photos").mock(side_effect=error("gone"))

    outcome = await publish_masked(ADAPTER, make_post("photo", media_urls=IMAGES[:1]), context)

    assert outcome.kind is OutcomeKind.UNKNOWN


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError,
                                   httpx.RemoteProtocolError])
async def test_transport_error_on_upload_is_retried(
        graph: respx.MockRouter, context: PublishContext, gate: Any, token: str,
        make_post: PostFactory, error: type[httpx.TransportError]) -> None:
    """An unpublished upload is invisible, so any transport error there is RETRY."""
    graph.post("/photos").mock(side_effect=error("gone"))
    feed = graph.post("/feed")

    outcome = await publish_masked(ADAPTER, make_post("photos", media_urls=IMAGES[:2]), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert feed.call_count == 0
    assert gate.calls == 0
    assert_no_token(outcome, token)


async def test_video_post_goes_to_the_video_host(
        graph: respx.MockRouter, gate: Any, token: str, page_path: str,
        make_post: PostFactory, endpoints: PlatformEndpoints) -> None:
    """A video is POSTed to the video host's /videos with file_url, description, title."""
    videos = graph.post("/videos").respond(200, json={"id": "777"})
    video_status(graph, endpoints, "777", "ready")
    # The video host is its own setting; here it points where respx listens.
    video_endpoints = replace(endpoints, facebook_video=endpoints.facebook)
    post = make_post("video", content="Watch this", title="Launch",
                     media_urls=("https://cdn.example.com/launch.mp4",))
    async with httpx.AsyncClient() as client:
        context = PublishContext(client=client, access_token=token, endpoints=video_endpoints,
                                 begin_sending=gate)
        outcome = await publish_masked(ADAPTER, post, context)
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.url is not None
    assert outcome.url.endswith("/videos/777")
    assert form_of(videos.calls.last.request) == {
        "file_url": "https://cdn.example.com/launch.mp4", "description": "Watch this",
        "title": "Launch"}
    assert gate.calls == 1
    assert PlatformEndpoints().facebook_video == "https://graph-video.facebook.com"


@pytest.mark.parametrize(("urls", "problem"), [
    ((), "exactly 1 video URL, got 0"),
    (("https://cdn.example.com/a.jpg",), ".mp4 or .mov"),
])
def test_video_validation(urls: tuple[str, ...], problem: str,
                          make_post: PostFactory) -> None:
    """A video post needs exactly one .mp4/.mov URL."""
    reason = ADAPTER.validate(make_post("video", media_urls=urls))
    assert reason is not None
    assert problem in reason


# --- a video's processing (issue 11): its id comes back before Facebook has processed it ---

VIDEO = ("https://cdn.example.com/launch.mp4",)


def video_status(graph: respx.MockRouter, endpoints: PlatformEndpoints, video_id: str,
                 *answers: str | httpx.Response) -> respx.Route:
    """GET /{video-id}?fields=status on the Graph host: one answer per read (a string is a
    video_status; "error" comes with a processing_phase error)."""
    responses = []
    for answer in answers:
        if isinstance(answer, httpx.Response):
            responses.append(answer)
            continue
        phase: dict[str, Any] = {"status": "complete"}
        if answer == "error":
            phase = {"status": "error", "errors": [{"code": 1363130,
                                                    "message": "Video file is corrupt"}]}
        responses.append(httpx.Response(200, json={"id": video_id, "status": {
            "video_status": answer, "processing_phase": phase}}))
    url = f"{endpoints.facebook}/{endpoints.facebook_api_version}/{video_id}"
    return graph.get(url).mock(side_effect=responses)


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.fixture
async def video_context(graph: respx.MockRouter, gate: Any, token: str,
                        endpoints: PlatformEndpoints) -> AsyncIterator[PublishContext]:
    """A context whose video host is where respx listens."""
    async with httpx.AsyncClient() as client:
        yield PublishContext(client=client, access_token=token, begin_sending=gate,
                             endpoints=replace(endpoints, facebook_video=endpoints.facebook))


async def test_video_still_processing_comes_back_later_without_resending(
        graph: respx.MockRouter, video_context: PublishContext, gate: Any, token: str,
        make_post: PostFactory, endpoints: PlatformEndpoints) -> None:
    """Processing: PENDING with the video id kept; the next attempt only reads its status
    (no second POST /videos, no begin_sending) and is PUBLISHED once ready."""
    videos = graph.post("/videos").respond(200, json={"id": "777"})
    status = video_status(graph, endpoints, "777", "processing", "ready")

    first = await publish_masked(ADAPTER, make_post("video", media_urls=VIDEO), video_context)

    assert first.kind is OutcomeKind.PENDING
    assert first.retry_after == 30.0
    assert first.state["video_id"] == "777"
    assert status.calls.last.request.url.params["fields"] == "status"
    assert_authorized(status.calls.last.request, token)
    second = await publish_masked(ADAPTER, make_post("video", media_urls=VIDEO,
                                                     publish_state=first.state), video_context)
    assert second.kind is OutcomeKind.PUBLISHED
    assert (second.platform_post_id, second.url) == (
        "777", "https://www.facebook.com/104857600123/videos/777")
    assert videos.call_count == 1
    assert gate.calls == 1


async def test_video_processing_error_is_not_live_and_is_uploaded_again(
        graph: respx.MockRouter, video_context: PublishContext, make_post: PostFactory,
        endpoints: PlatformEndpoints) -> None:
    """video_status error: it never went out, so RETRY (a later run) with the video dropped,
    the reason naming Facebook's error."""
    graph.post("/videos").respond(200, json={"id": "778"})
    video_status(graph, endpoints, "778", "error")

    outcome = await publish_masked(ADAPTER, make_post("video", media_urls=VIDEO), video_context)

    assert outcome.kind is OutcomeKind.RETRY
    assert (outcome.retry_after or 0.0) > 5   # a later run, not an in-run retry
    assert "Video file is corrupt" in (outcome.reason or "")
    assert outcome.state["video_id"] is None
    assert outcome.detail == {"video_id": "778", "video_status": "error"}


async def test_video_processing_past_the_limit_goes_to_review(
        graph: respx.MockRouter, video_context: PublishContext, gate: Any,
        make_post: PostFactory, endpoints: PlatformEndpoints) -> None:
    """Still processing more than an hour after it was sent: UNKNOWN (needs_review), since
    it may yet appear; nothing is sent again."""
    video_status(graph, endpoints, "779", "processing")
    state = {"video_id": "779", "video_sent_at": ago(61)}

    outcome = await publish_masked(ADAPTER, make_post("video", media_urls=VIDEO,
                                                      publish_state=state), video_context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert "still not ready" in (outcome.reason or "")
    assert outcome.state["video_id"] == "779"
    assert gate.calls == 0


@pytest.mark.parametrize(("answer", "kind"), [
    pytest.param(httpx.Response(500, json={"error": {"message": "Oops", "code": 2,
                                                     "is_transient": True}}),
                 OutcomeKind.PENDING, id="server-error"),
    pytest.param(httpx.ReadTimeout("slow"), OutcomeKind.PENDING, id="timeout"),
    pytest.param(httpx.Response(200, json={"id": "780"}), OutcomeKind.PENDING,
                 id="no-status-field"),
    pytest.param(httpx.Response(400, json={"error": {"message": "(#17) User request limit "
                                                     "reached", "code": 17}}),
                 OutcomeKind.DEFER, id="throttled"),
])
async def test_unreadable_video_status_keeps_the_video(
        graph: respx.MockRouter, video_context: PublishContext, gate: Any,
        make_post: PostFactory, endpoints: PlatformEndpoints,
        answer: httpx.Response | Exception, kind: OutcomeKind) -> None:
    """A status read that fails is looked at again later (a throttle waits as one); the
    video id stays, and nothing is uploaded again."""
    videos = graph.post("/videos")
    url = f"{endpoints.facebook}/{endpoints.facebook_api_version}/780"
    graph.get(url).mock(side_effect=[answer])
    state = {"video_id": "780", "video_sent_at": ago(2)}

    outcome = await publish_masked(ADAPTER, make_post("video", media_urls=VIDEO,
                                                      publish_state=state), video_context)

    assert outcome.kind is kind
    assert outcome.state == state
    assert videos.call_count == 0
    assert gate.calls == 0


@pytest.mark.parametrize(("answer", "kind"), [
    ("ready", OutcomeKind.PUBLISHED), ("error", OutcomeKind.RETRY),
    ("processing", OutcomeKind.UNKNOWN)])
async def test_reconciling_a_sent_video_reads_its_status(
        graph: respx.MockRouter, video_context: PublishContext, make_post: PostFactory,
        endpoints: PlatformEndpoints, answer: str, kind: OutcomeKind) -> None:
    """Under review, a video with its id recorded is its own evidence: ready is live, error
    provably not (safe to publish again), processing still unknown. The feed is not read."""
    feed = graph.get("/feed")
    video_status(graph, endpoints, "781", answer)
    post = make_post("video", media_urls=VIDEO,
                     publish_state={"video_id": "781", "video_sent_at": ago(90)})

    outcome = await ADAPTER.reconcile(post, video_context)

    assert outcome.kind is kind
    if kind is OutcomeKind.RETRY:
        assert outcome.detail["reconciled"] == NOT_LIVE
        assert outcome.state["video_id"] is None
    assert feed.call_count == 0


@pytest.mark.parametrize("post_type", ["photo", "video"])
@pytest.mark.parametrize("answer", [
    httpx.Response(500, json={"error": {"message": "Unexpected", "code": 2,
                                        "is_transient": True}}),
    httpx.Response(400, json={"error": {"message": "An unknown error occurred", "code": 1,
                                        "error_subcode": 99}}),
], ids=["5xx-code-2", "400-code-1"])
async def test_server_error_on_the_publishing_edge_is_unknown(
        graph: respx.MockRouter, video_context: PublishContext, make_post: PostFactory,
        post_type: str, answer: httpx.Response) -> None:
    """/photos and /videos are the irreversible call for their posts: code 1/2 or a 5xx
    there may follow a made post, so UNKNOWN, never RETRY (and no status read)."""
    edge = graph.post(f"/{post_type}s").mock(return_value=answer)
    media = VIDEO if post_type == "video" else IMAGES[:1]

    outcome = await publish_masked(ADAPTER, make_post(post_type, media_urls=media),
                                   video_context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert "may be live" in (outcome.reason or "")
    assert edge.call_count == 1

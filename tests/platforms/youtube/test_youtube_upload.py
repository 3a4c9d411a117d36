"""The YouTube resumable upload: chunking, the sending gate, interruptions, the last chunk.

The endpoint is FakeYouTube (youtube_support), a respx model of the documented
protocol: session open (200 + Location), chunks answered 308 + Range, 200 + video at the
last byte, `bytes */total` probes, 404 for an expired session.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import respx
from youtube_support import (
    DESCRIBE,
    TOKEN,
    FakeMedia,
    FakeYouTube,
    Fault,
    Gate,
    Q,
    assert_no_token,
    chunk_requests,
    context,
    gate,
    make_adapter,
    make_post,
    media,
    ranges,
    router,
    state_of,
    youtube,
)

from publisher.models import ClaimedPost, OutcomeKind
from publisher.platforms.base import PublishContext, publish_masked

__all__ = ["context", "gate", "make_post", "media", "router", "youtube"]  # fixtures

ADAPTER = make_adapter()
PostFactory = Callable[..., ClaimedPost]


# --- the whole upload ------------------------------------------------------------------------


async def test_upload_in_chunks_then_published(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """Five contiguous 256 KiB-multiple chunks; begin_sending right before the last one."""
    total = len(media.data)
    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "vids1"
    assert outcome.url == "https://www.youtube.com/watch?v=vids1"
    assert ranges(youtube) == [(0, Q - 1), (Q, 2 * Q - 1), (2 * Q, 3 * Q - 1),
                               (3 * Q, 4 * Q - 1), (4 * Q, total - 1)]
    contents = [call.request.headers["content-range"] for call in youtube.put_route.calls]
    assert contents[-1] == f"bytes {4 * Q}-{total - 1}/{total}"
    assert bytes(youtube.session().data) == media.data
    assert youtube.body_bytes == total
    assert gate.calls == 1
    assert gate.sent_before == [youtube.chunks[:4]]
    # The stamp carries the session, marked as possibly complete: a worker killed while the
    # last chunk is out leaves it on the row for the review check to probe.
    assert gate.states == [{"upload_session": youtube.uri("s1"), "total": total,
                            "final_chunk_sent": True}]
    # One byte to learn the size and type, then each chunk by its own range, read once.
    assert media.requested == [DESCRIBE, *chunk_requests(0, total)]
    sent = [call.request.headers["range"] for call in media.route.calls]
    assert sent[:3] == ["bytes=0-0", f"bytes=0-{Q - 1}", f"bytes={Q}-{2 * Q - 1}"]
    assert sent[-1] == f"bytes={4 * Q}-{total - 1}"
    assert youtube.probes == []


async def test_session_open_request(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """The session POST carries the size, type and metadata; the token only in a header."""
    post = make_post(options={"tags": ["a", "b c"], "category_id": "10"})
    await publish_masked(ADAPTER, post, context)

    (request,) = youtube.opened
    assert request.url.params["uploadType"] == "resumable"
    assert request.url.params["part"] == "snippet,status"
    assert request.headers["x-upload-content-length"] == str(len(media.data))
    assert request.headers["x-upload-content-type"] == "video/mp4"
    assert request.headers["content-type"] == "application/json; charset=UTF-8"
    assert json.loads(request.content) == {
        "snippet": {"title": "Scheduling, the movie",
                    "description": "A short film about scheduling.",
                    "tags": ["a", "b c"], "categoryId": "10"},
        "status": {"privacyStatus": "public", "selfDeclaredMadeForKids": False}}
    for call in [*youtube.open_route.calls, *youtube.put_route.calls]:
        assert call.request.headers["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in str(call.request.url)


async def test_exact_multiple_of_chunk_size(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A file of exactly 3 chunks ends on a full chunk, and that one is the final one."""
    media.data = media.data[:3 * Q]
    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert ranges(youtube) == [(0, Q - 1), (Q, 2 * Q - 1), (2 * Q, 3 * Q - 1)]
    assert media.requested == [DESCRIBE, (0, Q - 1), (Q, 2 * Q - 1), (2 * Q, 3 * Q - 1)]
    assert gate.sent_before == [youtube.chunks[:2]]


async def test_single_small_chunk(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A video smaller than a chunk is one final PUT after begin_sending."""
    media.data = media.data[:1234]
    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert ranges(youtube) == [(0, 1233)]
    assert media.requested == [DESCRIBE, (0, 1233)]
    assert bytes(youtube.session().data) == media.data
    assert gate.sent_before == [[]]


@pytest.mark.parametrize("size", [1234, Q], ids=["small", "one-full-chunk"])
async def test_single_chunk_from_host_ignoring_range_publishes(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, size: int) -> None:
    """A host without range support answers 200 with the whole file: fine when the whole
    file is the one (first and final) chunk."""
    media.data = media.data[:size]
    media.honour_range = False

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert [call.response.status_code for call in media.route.calls] == [200, 200]
    assert youtube.session().total == size
    assert ranges(youtube) == [(0, size - 1)]
    assert bytes(youtube.session().data) == media.data
    assert gate.calls == 1


@pytest.mark.parametrize("size", [Q + 1, 4 * Q + 1000], ids=["just-over-a-chunk", "large"])
async def test_large_media_from_host_ignoring_range_fails(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, size: int) -> None:
    """Media larger than a chunk from a host that ignores Range cannot be read a chunk at a
    time (the whole body would come each time): FAILED, naming Range; nothing is sent."""
    media.data = media.data[:size]
    media.honour_range = False

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.FAILED
    assert "ignores Range" in (outcome.reason or "")
    assert youtube.chunks == []
    assert all(session.received == 0 for session in youtube.sessions.values())
    assert gate.calls == 0
    assert_no_token(outcome)


async def test_shorts_url(youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
                          make_post: PostFactory) -> None:
    """options.short gives the /shorts/ URL."""
    outcome = await publish_masked(ADAPTER, make_post(options={"short": True}), context)

    assert outcome.url == "https://www.youtube.com/shorts/vids1"


async def test_lost_claim_never_sends_the_last_chunk(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """begin_sending False: the invisible chunks went, the final one never: LEASE_LOST."""
    gate.allow = False
    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.LEASE_LOST
    assert ranges(youtube) == [(0, Q - 1), (Q, 2 * Q - 1), (2 * Q, 3 * Q - 1),
                               (3 * Q, 4 * Q - 1)]
    assert youtube.session().video_id is None
    assert gate.calls == 1
    assert outcome.state == state_of(youtube)


# --- interruptions ---------------------------------------------------------------------------


async def test_reset_mid_chunk_resumes_from_probed_offset(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """Chunk 3 is half stored then the connection resets; the probe says where to go on."""
    total = len(media.data)
    kept = Q // 2 + 100
    youtube.faults[2] = Fault("partial", httpx.ReadError("connection reset"), keep=kept)

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    resume_at = 2 * Q + kept
    assert media.requested == [DESCRIBE, *chunk_requests(0, 3 * Q),
                               DESCRIBE, *chunk_requests(resume_at, total)]
    assert ranges(youtube)[:3] == [(0, Q - 1), (Q, 2 * Q - 1), (2 * Q, 3 * Q - 1)]
    assert ranges(youtube)[3][0] == resume_at
    assert bytes(youtube.session().data) == media.data
    assert youtube.body_bytes == total + (Q - kept)     # only the lost part went twice
    assert gate.calls == 1


@pytest.mark.parametrize("error", [httpx.ReadError("reset"), httpx.ReadTimeout("slow"),
                                   httpx.ConnectError("refused")])
async def test_transport_error_on_chunk_probes_and_resumes(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, error: Exception) -> None:
    """A chunk whose answer is lost: the probe reports the offset and the upload goes on."""
    youtube.faults[1] = Fault("after", error)

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert youtube.probes == ["s1"]
    assert bytes(youtube.session().data) == media.data
    assert youtube.body_bytes == len(media.data)   # the stored chunk was not resent
    # Each chunk was fetched once: the upload went on with the next one.
    assert media.requested == [DESCRIBE, *chunk_requests(0, len(media.data))]
    assert gate.calls == 1


async def test_chunk_that_never_arrived_is_resent_from_the_probed_offset(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """A chunk lost before it was stored is sent again, re-reading the media there."""
    youtube.faults[1] = Fault("before", httpx.WriteError("broken pipe"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    total = len(media.data)
    assert outcome.kind is OutcomeKind.PUBLISHED
    assert media.requested == [DESCRIBE, *chunk_requests(0, 2 * Q),
                               DESCRIBE, *chunk_requests(Q, total)]
    assert ranges(youtube)[1:3] == [(Q, 2 * Q - 1), (Q, 2 * Q - 1)]
    assert youtube.body_bytes == len(media.data) + Q
    assert bytes(youtube.session().data) == media.data


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_error_on_chunk_resumes(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory, status: int) -> None:
    """5xx on a chunk (backendError and gateway errors) probes and resumes the session."""
    body = json.dumps({"error": {"code": status, "message": "Backend Error", "errors": [
        {"domain": "global", "reason": "backendError"}]}})
    youtube.faults[2] = Fault("respond", response=httpx.Response(status, text=body))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert youtube.probes == ["s1"]
    assert bytes(youtube.session().data) == media.data


async def test_short_range_after_chunk_rereads_media(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """A 308 whose Range stops short of the chunk sends the rest again from that offset."""
    youtube.faults[0] = Fault("partial", keep=Q // 4)

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert media.requested == [DESCRIBE, (0, Q - 1),
                               DESCRIBE, *chunk_requests(Q // 4, len(media.data))]
    assert ranges(youtube)[1][0] == Q // 4
    assert youtube.probes == []
    assert bytes(youtube.session().data) == media.data


async def test_chunks_keep_failing_retry_with_session(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """When probing keeps failing the attempt ends RETRY, carrying the session to resume."""
    youtube.faults[1] = Fault("before", httpx.ReadError("reset"))
    youtube.probe_faults = [httpx.Response(503), httpx.ConnectError("down"),
                            httpx.Response(500)]

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state == state_of(youtube)
    assert youtube.probes == ["s1"] * 3               # the backoff budget, no more
    assert gate.calls == 0
    assert_no_token(outcome)


async def test_session_expired_mid_upload_starts_over(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """404 on a chunk: a new session, the media from byte 0; the old one never completes."""
    youtube.faults[2] = Fault("respond", response=httpx.Response(404, text="Not Found"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "vids2"
    assert len(youtube.opened) == 2
    assert youtube.session("s1").video_id is None
    assert bytes(youtube.session("s2").data) == media.data
    total = len(media.data)
    assert media.requested == [DESCRIBE, *chunk_requests(0, 3 * Q),
                               DESCRIBE, *chunk_requests(0, total)]
    assert gate.calls == 1


# --- the final chunk -------------------------------------------------------------------------


async def test_lost_answer_to_final_chunk_probe_says_published(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """The last chunk landed but its answer was lost: the probe finds the video, once."""
    youtube.faults[4] = Fault("after", httpx.ReadTimeout("slow"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "vids1"
    assert len(youtube.chunks) == 5                  # never sent again
    assert youtube.probes == ["s1"]
    assert gate.calls == 1


async def test_final_chunk_not_stored_is_resent_without_second_gate(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """The last chunk never landed (probe: 308): it is resent; begin_sending stays at one."""
    total = len(media.data)
    youtube.faults[4] = Fault("before", httpx.ReadTimeout("slow"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert ranges(youtube)[4:] == [(4 * Q, total - 1), (4 * Q, total - 1)]
    assert media.requested == [DESCRIBE, *chunk_requests(0, total),
                               DESCRIBE, (4 * Q, total - 1)]
    assert gate.calls == 1
    assert bytes(youtube.session().data) == media.data


async def test_final_chunk_unanswered_and_probe_fails_is_unknown(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """No answer to the last chunk and none to the probes: UNKNOWN, session kept."""
    youtube.faults[4] = Fault("after", httpx.ReadTimeout("slow"))
    youtube.probe_faults = [httpx.ReadTimeout("x"), httpx.Response(503), httpx.Response(502)]

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state == {**state_of(youtube), "final_chunk_sent": True}
    assert "may exist" in (outcome.reason or "")
    assert len(youtube.chunks) == 5
    assert_no_token(outcome)


async def test_final_chunk_5xx_and_probe_fails_is_unknown(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """A 503 to the last chunk cannot prove it was not stored: with no probe, UNKNOWN."""
    youtube.faults[4] = Fault("respond", response=httpx.Response(503))
    youtube.probe_faults = [httpx.Response(503)] * 3

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state == {**state_of(youtube), "final_chunk_sent": True}


async def test_final_chunk_never_connected_and_probe_fails_is_retry(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """A connect error on the last chunk sent nothing: RETRY even when probing fails."""
    youtube.faults[4] = Fault("before", httpx.ConnectError("refused"))
    youtube.probe_faults = [httpx.ConnectError("refused")] * 3

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state == state_of(youtube)
    assert "final_chunk_sent" not in outcome.state


async def test_final_chunk_lost_then_session_gone_is_unknown(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """The last chunk's answer is lost and the probe says 404: it may exist, UNKNOWN."""
    youtube.faults[4] = Fault("after", httpx.ReadTimeout("slow"))
    youtube.probe_faults = [httpx.Response(404)]

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert len(youtube.opened) == 1


async def test_final_answer_without_id_is_unknown(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """200 to the last chunk without a video id: it exists but we cannot name it."""
    youtube.faults[4] = Fault("respond", response=httpx.Response(200, text="<html>ok</html>"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state == state_of(youtube)

async def test_final_308_with_every_byte_but_no_video_probes(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A 308 to the last chunk claiming every byte, yet no video: the probe decides."""
    total = len(media.data)
    youtube.faults[4] = Fault("respond", response=httpx.Response(
        308, headers={"Range": f"bytes=0-{total - 1}"}))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert youtube.probes == ["s1"]
    assert gate.calls == 1


# --- the session POST ------------------------------------------------------------------------


@pytest.mark.parametrize(("response", "says"), [
    pytest.param(httpx.Response(200), "no Location", id="no-location"),
    pytest.param(httpx.Response(200, headers={"Location": "https://evil.test/up?id=1"}),
                 "unexpected host", id="foreign-location"),
    pytest.param(httpx.ConnectError("refused"), "nothing was sent", id="connect-error"),
    pytest.param(httpx.ReadTimeout("slow"), "no answer", id="read-timeout"),
])
async def test_session_open_problems_are_retry(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, response: httpx.Response | Exception, says: str) -> None:
    """Opening a session is invisible preparation: any failure there is RETRY."""
    youtube.open_responses = [response]

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert says in (outcome.reason or "")
    assert youtube.chunks == []
    assert gate.calls == 0
    assert "upload_session" not in outcome.state


# --- media types (the discovery document's mediaUpload.accept) --------------------------------


async def test_octet_stream_media_is_uploaded_as_octet_stream(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """application/octet-stream (S3-style hosting) is accepted: declared as such on the
    session and on every chunk, and published."""
    media.content_type = "application/octet-stream"

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    [opened] = youtube.opened
    assert opened.headers["x-upload-content-type"] == "application/octet-stream"
    types = {call.request.headers["content-type"] for call in youtube.put_route.calls}
    assert types == {"application/octet-stream"}


@pytest.mark.parametrize("media_type", ["image/png", "text/html; charset=utf-8",
                                        "application/json"])
async def test_other_media_types_are_refused_before_a_session(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, media_type: str) -> None:
    """Anything but video/* and application/octet-stream fails, naming both, unsent."""
    media.content_type = media_type

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.FAILED
    assert "video/* or application/octet-stream" in (outcome.reason or "")
    assert youtube.opened == []
    assert gate.calls == 0


# --- a 308 that moves the session (googleapiclient's _process_response) -----------------------


def moved_uri(youtube: FakeYouTube, media: FakeMedia) -> str:
    """The session the upload opens (s1), reachable under a second URI too, as after a
    move; returns that URI."""
    youtube.add_session("s1", media.total)
    youtube.open_responses = [httpx.Response(200, headers={"Location": youtube.uri("s1")})]
    youtube.sessions["moved"] = youtube.session("s1")
    return youtube.uri("moved")


async def test_308_with_a_location_moves_the_session(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """The chunks after a 308 naming a new Location go there; the outcome's state names
    the new session (here: a later chunk refused for good)."""
    uri = moved_uri(youtube, media)
    youtube.faults[1] = Fault("respond", response=httpx.Response(
        308, headers={"Range": f"bytes=0-{Q - 1}", "Location": uri}))
    youtube.faults[3] = Fault("respond", response=httpx.Response(403, json={"error": {
        "code": 403, "message": "Forbidden", "errors": [{"reason": "forbidden"}]}}))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.state["upload_session"] == uri
    urls = [str(call.request.url) for call in youtube.put_route.calls]
    assert urls[:2] == [youtube.uri("s1")] * 2
    assert set(urls[2:]) == {uri}
    assert ranges(youtube)[2][0] == Q


async def test_308_with_a_relative_location_publishes_there(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A relative Location is resolved against the session URI; the upload completes."""
    uri = moved_uri(youtube, media)
    relative = uri.removeprefix("https://www.googleapis.com")
    youtube.faults[0] = Fault("respond", response=httpx.Response(
        308, headers={"Location": relative}))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert str(youtube.put_route.calls.last.request.url) == uri
    assert bytes(youtube.session().data) == media.data


async def test_308_moving_the_session_to_another_host_is_retry(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, router: respx.MockRouter) -> None:
    """A Location on another host would get the token: not followed, RETRY, the old
    session kept."""
    youtube.faults[1] = Fault("respond", response=httpx.Response(
        308, headers={"Range": f"bytes=0-{Q - 1}",
                      "Location": "https://evil.test/upload?upload_id=s1"}))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "unexpected host" in (outcome.reason or "")
    assert outcome.state == state_of(youtube)
    assert all(call.request.url.host != "evil.test" for call in router.calls)


# --- the last chunk: an error that is not YouTube's own (issue 11) ----------------------------


async def test_final_chunk_proxy_error_probes_and_resumes(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A 4xx without Google's error body to the last chunk proves nothing: the session is
    probed; it says the chunk never landed, so it is sent again (one stamp): PUBLISHED."""
    youtube.faults[4] = Fault("respond", response=httpx.Response(
        400, text="<html>Bad Request</html>", headers={"Content-Type": "text/html"}))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert youtube.probes == ["s1"]
    assert gate.calls == 1
    assert bytes(youtube.session().data) == media.data


async def test_final_chunk_proxy_error_and_probe_fails_is_unknown(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """...and when the session cannot say, the video may exist: UNKNOWN, never RETRY."""
    youtube.faults[4] = Fault("respond", response=httpx.Response(403, text="Forbidden"))
    youtube.probe_faults = [httpx.Response(503)] * 3

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state == {**state_of(youtube), "final_chunk_sent": True}


async def test_final_chunk_5xx_with_googles_body_and_probe_fails_is_unknown(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """A 500 backendError (Google's own body) to the last chunk is not proof either."""
    youtube.faults[4] = Fault("respond", response=httpx.Response(500, json={"error": {
        "code": 500, "message": "Backend Error", "errors": [{"reason": "backendError"}]}}))
    youtube.probe_faults = [httpx.Response(503)] * 3

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state["final_chunk_sent"] is True


async def test_a_5xx_on_a_middle_chunk_with_no_session_answer_is_retry(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """The same on a chunk that is not the last is preparation: RETRY, session kept."""
    youtube.faults[1] = Fault("respond", response=httpx.Response(500, json={"error": {
        "code": 500, "message": "Backend Error", "errors": [{"reason": "backendError"}]}}))
    youtube.probe_faults = [httpx.Response(503)] * 3

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state == state_of(youtube)
    assert gate.calls == 0

"""The YouTube resumable upload, continued: stored sessions, the media, memory.

The endpoint is FakeYouTube (youtube_support), a respx model of the documented
protocol: session open (200 + Location), chunks answered 308 + Range, 200 + video at the
last byte, `bytes */total` probes, 404 for an expired session.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from youtube_support import (
    DESCRIBE,
    TOKEN,
    FakeMedia,
    FakeYouTube,
    Fault,
    Gate,
    Q,
    chunk_requests,
    context,
    gate,
    google_error,
    make_adapter,
    make_post,
    media,
    ranges,
    router,
    state_of,
    youtube,
)

from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext, publish_masked
from publisher.platforms.youtube.adapter import YouTubeAdapter

__all__ = ["context", "gate", "make_post", "media", "router", "youtube"]  # fixtures

ADAPTER = make_adapter()
PostFactory = Callable[..., ClaimedPost]


# --- a session stored by an earlier attempt --------------------------------------------------


async def test_stored_session_complete_publishes_without_uploading(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """The probe says the video exists: PUBLISHED, no media read, nothing sent again."""
    total = len(media.data)
    uri = youtube.add_session("old", total, received=total, data=media.data)
    youtube.session("old").video_id = "vidold"
    post = make_post(publish_state={"upload_session": uri, "total": total})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "vidold"
    assert youtube.probes == ["old"]
    assert youtube.chunks == []
    assert youtube.opened == []
    assert media.requested == []
    assert gate.calls == 0


async def test_stored_session_resumes_at_probed_offset(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """308 + Range: the media is re-read from N+1 and only the rest is sent."""
    total = len(media.data)
    received = 2 * Q + 5000
    uri = youtube.add_session("old", total, received=received, data=media.data)
    post = make_post(publish_state={"upload_session": uri, "total": total})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "vidold"
    assert media.requested == [DESCRIBE, *chunk_requests(received, total)]
    assert ranges(youtube)[0][0] == received
    assert youtube.body_bytes == total - received
    assert youtube.opened == []
    assert bytes(youtube.session("old").data) == media.data
    assert gate.calls == 1


async def test_stored_session_resume_from_host_ignoring_range_fails(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """Resuming mid-file needs a range: a host answering 200 with the whole file cannot
    serve it. FAILED naming Range; nothing more is sent and the session is not restarted."""
    total = len(media.data)
    received = 2 * Q + 5000
    media.honour_range = False
    uri = youtube.add_session("old", total, received=received, data=media.data)
    post = make_post(publish_state={"upload_session": uri, "total": total})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.FAILED
    assert "ignores Range" in (outcome.reason or "")
    assert media.requested == [DESCRIBE]  # refused as soon as the size request shows it
    assert youtube.chunks == []
    assert youtube.opened == []
    assert youtube.session("old").received == received
    assert gate.calls == 0


async def test_stored_session_with_nothing_received_starts_at_zero(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """308 without Range means no byte arrived: the same session, from byte 0."""
    total = len(media.data)
    uri = youtube.add_session("old", total)
    post = make_post(publish_state={"upload_session": uri, "total": total})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.platform_post_id == "vidold"
    assert youtube.opened == []
    assert media.requested == [DESCRIBE, *chunk_requests(0, total)]


@pytest.mark.parametrize("status", [404, 410])
async def test_stored_session_expired_starts_over(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory, status: int) -> None:
    """404/410 to the probe: a new session and the whole file."""
    total = len(media.data)
    uri = youtube.add_session("old", total, received=Q, data=media.data)
    youtube.probe_faults = [httpx.Response(status)]
    post = make_post(publish_state={"upload_session": uri, "total": total})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "vids2"
    assert len(youtube.opened) == 1
    assert youtube.body_bytes == total
    assert media.requested == [DESCRIBE, *chunk_requests(0, total)]


async def test_expired_session_whose_last_chunk_may_have_landed_is_unknown(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A gone session after an unanswered last chunk is never restarted: UNKNOWN."""
    total = len(media.data)
    uri = youtube.add_session("old", total)
    youtube.probe_faults = [httpx.Response(404)]
    post = make_post(publish_state={"upload_session": uri, "total": total,
                                    "final_chunk_sent": True})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert outcome.state["upload_session"] == uri
    assert youtube.opened == []
    assert media.requested == []
    assert gate.calls == 0


async def test_resent_last_chunk_clears_the_doubt(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A stored doubt is cleared once the probe shows the last chunk never arrived."""
    total = len(media.data)
    uri = youtube.add_session("old", total, received=4 * Q, data=media.data)
    youtube.faults[0] = Fault("before", httpx.ConnectError("refused"))
    youtube.probe_faults = [httpx.Response(308, headers={"Range": f"bytes=0-{4 * Q - 1}"}),
                            httpx.Response(503), httpx.Response(503)]
    post = make_post(publish_state={"upload_session": uri, "total": total,
                                    "final_chunk_sent": True})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state == {"upload_session": uri, "total": total}
    assert gate.calls == 1


async def test_stored_session_for_other_media_size_starts_over(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """The media changed size since the session opened: that session is abandoned."""
    old_total = len(media.data) + 4096
    uri = youtube.add_session("old", old_total, received=Q, data=media.data)
    post = make_post(publish_state={"upload_session": uri, "total": old_total})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == "vids2"
    assert youtube.session("old").received == Q
    assert youtube.chunks == [("s2", first, last) for first, last in chunk_requests(
        0, len(media.data))]                        # nothing more went to the old session
    # The size is learned before anything is sent; the new session describes it anew.
    assert media.requested == [DESCRIBE, DESCRIBE, *chunk_requests(0, len(media.data))]
    assert bytes(youtube.session("s2").data) == media.data


async def test_stored_session_with_every_byte_but_no_video_is_retry(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A probe claiming every byte yet no video: nothing is sent, RETRY probes it later."""
    total = len(media.data)
    uri = youtube.add_session("old", total)
    youtube.probe_faults = [httpx.Response(308, headers={"Range": f"bytes=0-{total - 1}"})]
    post = make_post(publish_state={"upload_session": uri, "total": total})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state == {"upload_session": uri, "total": total}
    assert media.requested == []
    assert youtube.chunks == []
    assert gate.calls == 0


async def test_stored_session_probe_failing_is_retry(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A stored session that cannot be probed is not abandoned: RETRY, nothing sent."""
    total = len(media.data)
    uri = youtube.add_session("old", total, received=Q, data=media.data)
    youtube.probe_faults = [httpx.Response(503)] * 3
    post = make_post(publish_state={"upload_session": uri, "total": total})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state == {"upload_session": uri, "total": total}
    assert media.requested == []
    assert youtube.chunks == []
    assert gate.calls == 0


async def test_stored_session_on_foreign_host_is_ignored(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """A stored session URI off the API's host never gets the token: a new session."""
    post = make_post(publish_state={"upload_session": "https://evil.test/upload?id=1",
                                    "total": len(media.data)})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert len(youtube.opened) == 1
    assert youtube.probes == []


# --- the media -------------------------------------------------------------------------------


@pytest.mark.parametrize(("setup", "kind", "says"), [
    pytest.param({"content_type": "image/jpeg"}, OutcomeKind.FAILED, "not a video",
                 id="not-video"),
    pytest.param({"content_type": ""}, OutcomeKind.FAILED, "not a video", id="untyped"),
    pytest.param({"with_length": False, "honour_range": False}, OutcomeKind.FAILED,
                 "Content-Length", id="no-size-stated"),
    pytest.param({"data": b""}, OutcomeKind.FAILED, "empty", id="empty"),
])
async def test_unusable_media_fails_before_opening_a_session(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, setup: dict[str, Any], kind: OutcomeKind, says: str) -> None:
    """Media that is not a sized video fails with a reason, before any YouTube call."""
    for name, value in setup.items():
        setattr(media, name, value)

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is kind
    assert says in (outcome.reason or "")
    assert youtube.opened == []
    assert gate.calls == 0


async def test_size_from_content_range_without_content_length(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """A ranged answer states the total in Content-Range: Content-Length is not needed."""
    media.with_length = False

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert youtube.session().total == len(media.data)
    assert bytes(youtube.session().data) == media.data


async def test_media_answering_another_range_is_retry(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A 206 whose Content-Range starts elsewhere than asked is never uploaded: RETRY with
    the session, nothing sent past the chunks that did match."""
    total = len(media.data)

    def from_the_start(request: httpx.Request) -> httpx.Response:
        body = media.data[:Q]
        return httpx.Response(206, content=body, headers={
            "Content-Type": "video/mp4", "Content-Range": f"bytes 0-{Q - 1}/{total}"})

    media.route.mock(side_effect=from_the_start)

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert f"from byte {Q}" in (outcome.reason or "")
    assert ranges(youtube) == [(0, Q - 1)]
    assert outcome.state == state_of(youtube)
    assert gate.calls == 0


@pytest.mark.parametrize(("status", "kind"), [(404, OutcomeKind.FAILED),
                                              (503, OutcomeKind.RETRY)])
async def test_media_host_error_is_returned_as_is(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory, status: int, kind: OutcomeKind) -> None:
    """The media fetcher's own outcome comes back unchanged."""
    media.route.mock(side_effect=None, return_value=httpx.Response(status))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is kind
    assert f"HTTP {status}" in (outcome.reason or "")
    assert youtube.opened == []


async def test_media_cut_short_is_retry_with_session(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A download that ends before its Content-Length: RETRY, the final chunk never sent."""
    full = len(media.data)

    async def short(start: int) -> AsyncIterator[bytes]:
        yield media.data[start:3 * Q]

    media.size, media.blocks = full, short

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert f"ended the video at byte {3 * Q}" in (outcome.reason or "")
    assert outcome.state == state_of(youtube)
    assert ranges(youtube) == chunk_requests(0, 3 * Q)
    assert youtube.session().video_id is None
    assert gate.calls == 0


async def test_media_download_breaking_is_retry(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A download that breaks off mid-stream: RETRY with the session, nothing final sent."""

    async def broken(start: int) -> AsyncIterator[bytes]:
        yield media.data[start:Q + 10]          # the connection resets at byte Q + 10
        raise httpx.ReadError("media connection reset")

    media.blocks = broken

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "broke off" in (outcome.reason or "")
    assert media.requested == [DESCRIBE, (0, Q - 1), (Q, 2 * Q - 1)]  # in the second chunk
    assert ranges(youtube) == [(0, Q - 1)]
    assert outcome.state == state_of(youtube)
    assert youtube.session().video_id is None
    assert gate.calls == 0


# --- memory ----------------------------------------------------------------------------------


async def test_large_upload_keeps_memory_flat(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """200 MB uploaded in 8 MiB chunks: peak traced memory stays far below the file size,
    and no media request ever asks for more than one chunk (a longer download would read
    ahead into memory while the upload is slower)."""
    block, blocks = 1 << 20, 200
    chunk = 8 << 20

    def piece(n: int) -> bytes:
        return n.to_bytes(4, "big") * (block // 4)

    async def generated(start: int) -> AsyncIterator[bytes]:
        first, skip = divmod(start, block)
        yield piece(first)[skip:]
        for n in range(first + 1, blocks):
            yield piece(n)

    expected = hashlib.sha256()
    for n in range(blocks):
        expected.update(piece(n))
    media.size, media.blocks = block * blocks, generated
    youtube.keep_data = False
    youtube.forget_calls = True
    adapter = make_adapter(chunk_bytes=chunk)

    tracemalloc.start()
    try:
        outcome = await publish_masked(adapter, make_post(), context)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert outcome.kind is OutcomeKind.PUBLISHED
    session = youtube.session()
    assert session.received == block * blocks
    assert session.digest.hexdigest() == expected.hexdigest()
    assert len(youtube.chunks) == 25
    assert media.requested == [DESCRIBE, *chunk_requests(0, block * blocks, chunk)]
    assert all(last is not None and last - first < chunk
               for first, last in filter(None, media.requested))
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_chunk_size_must_be_a_256k_multiple() -> None:
    """The adapter refuses chunk sizes YouTube would reject."""
    with pytest.raises(ValueError, match="multiple of 262144"):
        YouTubeAdapter(chunk_bytes=Q + 1)
    with pytest.raises(ValueError, match="multiple"):
        YouTubeAdapter(chunk_bytes=0)
    assert isinstance(YouTubeAdapter(chunk_bytes=3 * Q), YouTubeAdapter)


# --- a token that expires during the upload (issue 11) ----------------------------------------

FRESH = "ya29.a0FreshGoogleAccessToken-9876543210-NEW"


class Renewer:
    """Stands in for the token manager's renew: counts calls, hands out FRESH (or `answer`)
    and makes YouTube accept it."""

    def __init__(self, youtube: FakeYouTube, answer: str | Outcome = FRESH) -> None:
        self.asked: list[str] = []
        self._youtube = youtube
        self._answer = answer

    async def __call__(self, refused: str) -> str | Outcome:
        self.asked.append(refused)
        if isinstance(self._answer, str):
            self._youtube.valid_tokens.add(self._answer)
        return self._answer


def renewing(context: PublishContext, renewer: Renewer) -> PublishContext:
    return replace(context, renew_token=renewer)


def bearer(request: httpx.Request) -> str:
    return request.headers["authorization"].removeprefix("Bearer ")


@pytest.mark.parametrize("chunk", [1, 4], ids=["middle-chunk", "final-chunk"])
async def test_token_expired_during_upload_is_renewed_once_and_resumed(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, chunk: int) -> None:
    """A 401 on a chunk PUT: one new token from the token manager, a probe with it, and the
    upload goes on from the offset the session reports: PUBLISHED, every byte once, the
    sending stamp once, no reconnect."""
    renewer = Renewer(youtube)
    youtube.faults[chunk] = Fault("expire")

    outcome = await publish_masked(ADAPTER, make_post(), renewing(context, renewer))

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert renewer.asked == [TOKEN]
    assert youtube.refused == [TOKEN]
    assert bytes(youtube.session().data) == media.data
    assert youtube.probes == ["s1"]
    resumed_at = ranges(youtube)[chunk + 1][0]
    assert resumed_at == chunk * Q
    assert gate.calls == 1
    after = [call.request for call in youtube.put_route.calls][chunk + 1:]
    assert len(after) >= 2  # the probe, then the chunks from the offset
    assert {bearer(request) for request in after} == {FRESH}


async def test_token_refused_again_after_renewal_is_retry(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """The renewed token refused too: renew is asked only once per upload; the grant is
    alive (the refresh worked), so no reconnect: RETRY, the session kept for the next
    attempt."""
    renewer = Renewer(youtube)
    youtube.faults[1] = Fault("expire")
    youtube.faults[2] = Fault("expire")

    outcome = await publish_masked(ADAPTER, make_post(), renewing(context, renewer))

    assert outcome.kind is OutcomeKind.RETRY
    assert "refused the access token again right after it was refreshed" in (
        outcome.reason or "")
    assert renewer.asked == [TOKEN]
    assert youtube.refused == [TOKEN, FRESH]
    assert outcome.state == state_of(youtube)
    assert gate.calls == 0


async def test_renewal_refused_by_google_stops_the_upload(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """The token manager could not renew (invalid_grant): its outcome, session kept."""
    renewer = Renewer(youtube, Outcome.reauth("Google refused the refresh token"))
    youtube.faults[2] = Fault("expire")

    outcome = await publish_masked(ADAPTER, make_post(), renewing(context, renewer))

    assert outcome.kind is OutcomeKind.REAUTH
    assert outcome.reason == "Google refused the refresh token"
    assert outcome.state == state_of(youtube)
    assert len(youtube.chunks) == 3


async def test_without_a_renewer_a_401_is_reauth(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """No way to renew (renew_token None): the 401 is REAUTH, as before."""
    youtube.faults[1] = Fault("expire")

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.REAUTH
    assert outcome.state == state_of(youtube)


async def test_token_expired_before_the_session_opens_is_renewed(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A 401 on the session POST: renewed once, the session opened with the new token."""
    renewer = Renewer(youtube)
    youtube.valid_tokens.discard(TOKEN)

    outcome = await publish_masked(ADAPTER, make_post(), renewing(context, renewer))

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert renewer.asked == [TOKEN]
    assert [bearer(request) for request in youtube.opened] == [FRESH]


async def test_token_expired_when_probing_a_stored_session_is_renewed(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """A stored session probed with an expired token: renewed, probed again, resumed."""
    renewer = Renewer(youtube)
    total = len(media.data)
    uri = youtube.add_session("old", total, received=2 * Q, data=media.data)
    youtube.valid_tokens.discard(TOKEN)

    outcome = await publish_masked(
        ADAPTER, make_post(publish_state={"upload_session": uri, "total": total}),
        renewing(context, renewer))

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert renewer.asked == [TOKEN]
    assert youtube.refused == [TOKEN]
    assert ranges(youtube)[0][0] == 2 * Q
    assert bytes(youtube.session("old").data) == media.data


async def test_a_channel_less_account_is_not_renewed(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """401 youtubeSignupRequired is not a dead token: FAILED with its own reason, no
    renewal, no reconnect."""
    renewer = Renewer(youtube)
    youtube.faults[1] = Fault("respond", response=httpx.Response(401, json=google_error(
        401, "youtubeSignupRequired", "Unauthorized", domain="youtube.header")))

    outcome = await publish_masked(ADAPTER, make_post(), renewing(context, renewer))

    assert outcome.kind is OutcomeKind.FAILED
    assert "no YouTube channel: create one, then reconnect" in (outcome.reason or "")
    assert renewer.asked == []

"""The LinkedIn adapter's image preparation: streaming, media type, processing, resuming.

Invisible and repeatable: media fetched through the guarded fetcher, registered with
initializeUpload, PUT to uploadUrl as one streamed request, checked with GET
/rest/images/{urn} (shapes from shared/platforms.md section 3). None of it reaches the gate.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from linkedin_support import (
    API,
    IMAGES,
    LinkedIn,
    adapter,
    body_of,
    harness,
    image_bytes,
    image_urn,
    make_post,
)

from publisher.models import OutcomeKind
from publisher.platforms.base import publish_masked
from publisher.platforms.linkedin.adapter import (
    MAX_PENDING_ROUNDS,
    PENDING_SECONDS,
    STATE_IMAGES,
    STATE_ROUNDS,
    LinkedInAdapter,
)

ADAPTER = adapter()


@pytest.fixture
async def li() -> AsyncIterator[LinkedIn]:
    """A respx-mocked LinkedIn with its gate and context."""
    async with harness() as mocked:
        yield mocked


# --- streaming -----------------------------------------------------------------------------


async def test_image_of_unknown_length_is_streamed_chunked(li: LinkedIn) -> None:
    """Media without Content-Length is streamed to LinkedIn without one (chunked)."""
    li.router.get(IMAGES[0]).mock(return_value=httpx.Response(
        200, stream=httpx.ByteStream(image_bytes(1)), headers={"Content-Type": "image/jpeg"}))
    li.initialize()
    upload = li.upload()
    li.status("AVAILABLE")
    li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    put = upload.calls.last.request
    assert "content-length" not in put.headers
    assert put.headers["transfer-encoding"] == "chunked"
    assert put.content == image_bytes(1)


async def test_compressed_media_is_sent_decoded_without_its_length(li: LinkedIn) -> None:
    """A gzip-encoded download's Content-Length is not the image's: it is not forwarded."""
    li.media(IMAGES[0], gzip.compress(image_bytes(1)), content_type="image/png",
             **{"Content-Encoding": "gzip"})
    li.initialize()
    upload = li.upload()
    li.status("AVAILABLE")
    li.posts()

    await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    put = upload.calls.last.request
    assert put.content == image_bytes(1)
    assert "content-length" not in put.headers


# --- image preparation: type, fetch, processing --------------------------------------------


@pytest.mark.parametrize(("content_type", "named"), [
    ("text/html; charset=utf-8", "text/html"), ("video/mp4", "video/mp4"),
    ("", "of no stated type")])
async def test_media_that_is_not_an_image_fails_before_any_linkedin_call(
        li: LinkedIn, content_type: str, named: str) -> None:
    """Media served as anything but image/* fails, naming the type; LinkedIn is not called."""
    li.media(IMAGES[0], b"<html></html>", content_type=content_type)
    init = li.initialize()
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is OutcomeKind.FAILED
    assert named in (outcome.reason or "")
    assert init.call_count == 0
    assert posts.call_count == 0
    assert li.gate.calls == 0


@pytest.mark.parametrize(("status", "kind"), [(404, OutcomeKind.FAILED),
                                              (503, OutcomeKind.RETRY)])
async def test_media_fetch_outcome_is_returned_as_is(li: LinkedIn, status: int,
                                                    kind: OutcomeKind) -> None:
    """A media URL that answers an error stops the post with the fetcher's outcome."""
    li.router.get(IMAGES[0]).respond(status)
    init = li.initialize()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is kind
    assert f"HTTP {status}" in (outcome.reason or "")
    assert init.call_count == 0
    assert li.gate.calls == 0


async def test_non_public_media_host_is_refused(li: LinkedIn) -> None:
    """A media URL on a private address is never fetched: FAILED, naming the reason."""
    post = make_post("image", media_urls=("https://127.0.0.1/secret.png",))

    outcome = await publish_masked(ADAPTER, post, li.context)

    assert outcome.kind is OutcomeKind.FAILED
    assert "non-public" in (outcome.reason or "")
    assert len(li.router.calls) == 0


async def test_processing_image_is_checked_again_until_available(li: LinkedIn) -> None:
    """An image still PROCESSING is checked again; once AVAILABLE the post goes out."""
    li.all_media(1)
    li.initialize()
    li.upload()
    status = li.status("WAITING_UPLOAD", "PROCESSING", "AVAILABLE")
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert status.call_count == 3
    assert posts.call_count == 1


@pytest.mark.parametrize("answer", [403, 404, 405])
async def test_image_status_that_cannot_tell_goes_ahead(li: LinkedIn, answer: int) -> None:
    """403 (member tokens), 404 or 405 (no status endpoint) after an upload: publish anyway."""
    li.all_media(2)
    li.initialize()
    li.upload()
    status = li.status(answer)
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("images", media_urls=IMAGES[:2]),
                                   li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert status.call_count == 1
    assert posts.call_count == 1


async def test_image_that_failed_processing_fails_the_post(li: LinkedIn) -> None:
    """PROCESSING_FAILED is permanent for that image: FAILED naming it, nothing sent."""
    li.all_media(1)
    li.initialize()
    li.upload()
    li.status("PROCESSING_FAILED")
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is OutcomeKind.FAILED
    assert IMAGES[0] in (outcome.reason or "")
    assert posts.call_count == 0
    assert li.gate.calls == 0


async def test_image_still_processing_makes_the_post_pending(li: LinkedIn) -> None:
    """After the quick checks an image still processing: PENDING, URNs kept in state."""
    li.all_media(2)
    li.initialize()
    li.upload()
    status = li.status("PROCESSING")
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("images", media_urls=IMAGES[:2]),
                                   li.context)

    assert outcome.kind is OutcomeKind.PENDING
    assert outcome.retry_after == PENDING_SECONDS
    assert outcome.state == {STATE_IMAGES: {IMAGES[0]: image_urn(1), IMAGES[1]: image_urn(2)},
                             STATE_ROUNDS: 1}
    assert status.call_count == 2 * 3
    assert posts.call_count == 0
    assert li.gate.calls == 0


async def test_pending_post_reuses_its_images(li: LinkedIn) -> None:
    """A post back from PENDING checks its kept images and posts them: no new upload."""
    kept = {IMAGES[0]: "urn:li:image:KEPT1", IMAGES[1]: "urn:li:image:KEPT2"}
    init = li.initialize()
    upload = li.upload()
    status = li.status("AVAILABLE")
    posts = li.posts()
    post = make_post("images", media_urls=IMAGES[:2],
                     publish_state={STATE_IMAGES: kept, STATE_ROUNDS: 2})

    outcome = await publish_masked(ADAPTER, post, li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert init.call_count == 0
    assert upload.call_count == 0
    assert status.call_count == 2
    assert body_of(posts.calls.last.request)["content"]["multiImage"]["images"] == [
        {"id": "urn:li:image:KEPT1"}, {"id": "urn:li:image:KEPT2"}]


async def test_kept_image_that_is_gone_is_uploaded_again(li: LinkedIn) -> None:
    """A kept URN LinkedIn no longer knows (404) is replaced by a fresh upload."""
    li.all_media(1)
    init = li.initialize()
    li.upload()
    li.status(404, "AVAILABLE")
    posts = li.posts()
    post = make_post("image", media_urls=IMAGES[:1],
                     publish_state={STATE_IMAGES: {IMAGES[0]: "urn:li:image:OLD"}})

    outcome = await publish_masked(ADAPTER, post, li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert init.call_count == 1
    assert body_of(posts.calls.last.request)["content"]["media"] == {"id": image_urn(1)}


async def test_images_processing_too_long_start_over(li: LinkedIn) -> None:
    """After MAX_PENDING_ROUNDS the kept images are dropped: RETRY with a cleared state."""
    li.status("PROCESSING")
    posts = li.posts()
    post = make_post("image", media_urls=IMAGES[:1],
                     publish_state={STATE_IMAGES: {IMAGES[0]: "urn:li:image:SLOW"},
                                    STATE_ROUNDS: MAX_PENDING_ROUNDS})

    outcome = await publish_masked(ADAPTER, post, li.context)

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.state == {STATE_IMAGES: {}, STATE_ROUNDS: 0}
    assert posts.call_count == 0


async def test_initialize_answer_without_upload_url_is_retried(li: LinkedIn) -> None:
    """An initializeUpload answer missing uploadUrl/image is nonsense from a prep call: RETRY."""
    li.all_media(1)
    li.router.post(f"{API}/rest/images").respond(200, json={"value": {"image": image_urn(1)}})
    upload = li.upload()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "uploadUrl" in (outcome.reason or "")
    assert upload.call_count == 0
    assert li.gate.calls == 0


async def test_plain_http_upload_url_never_gets_the_token(li: LinkedIn) -> None:
    """An upload URL that is not https (and not the API's own origin) gets nothing."""
    li.all_media(1)
    li.router.post(f"{API}/rest/images").respond(200, json={"value": {
        "uploadUrl": "http://uploads.example.net/put", "image": image_urn(1)}})
    elsewhere = li.router.put("http://uploads.example.net/put").respond(201)

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "not https" in (outcome.reason or "")
    assert elsewhere.call_count == 0


async def test_checks_wait_between_them(li: LinkedIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick checks are image_check_seconds apart; the first comes right after upload."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("publisher.platforms.linkedin.adapter.asyncio.sleep", sleep)
    li.all_media(1)
    li.initialize()
    li.upload()
    li.status("PROCESSING", "PROCESSING", "AVAILABLE")
    li.posts()

    outcome = await publish_masked(LinkedInAdapter(image_check_seconds=1.5),
                                   make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert slept == [1.5, 1.5]

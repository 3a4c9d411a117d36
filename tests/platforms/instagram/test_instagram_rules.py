"""Instagram validation (what fails before any call) and the Instagram Login token refresh."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from instagram_support import (
    ADAPTER,
    ENDPOINTS,
    IMAGE,
    TOKEN,
    VIDEO,
    PostFactory,
    make_post_fixture,
)

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.base import TokenGrant, TokenRefresher
from publisher.platforms.instagram.errors import MAX_CAPTION_CHARS

# The shared fixtures: importing them here registers them under their short names.
FIXTURES = (make_post_fixture,)

IMAGES = tuple(f"https://cdn.example.com/media/{n}.jpg" for n in range(11))


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"post_type": "text"}, "'text'", id="type"),
    pytest.param({"post_type": "link"}, "image, reel, carousel, story", id="type-lists-choices"),
    pytest.param({"content": "x" * (MAX_CAPTION_CHARS + 1)},
                 "2201 characters; the limit is 2200", id="caption-too-long"),
    pytest.param({"content": " ".join(f"#tag{n}" for n in range(31))},
                 "31 hashtags; the limit is 30", id="hashtags"),
    pytest.param({"content": " ".join(f"@user{n}" for n in range(21))},
                 "21 @mentions; the limit is 20", id="mentions"),
    pytest.param({"media_urls": ()}, "exactly 1 media URL, got 0", id="image-none"),
    pytest.param({"media_urls": IMAGES[:2]}, "exactly 1 media URL, got 2", id="image-two"),
    pytest.param({"post_type": "reel", "media_urls": (VIDEO, VIDEO)},
                 "reel post needs exactly 1 media URL, got 2", id="reel-two"),
    pytest.param({"post_type": "carousel", "media_urls": IMAGES[:1]},
                 "2-10 media URLs, got 1", id="carousel-one"),
    pytest.param({"post_type": "carousel", "media_urls": IMAGES}, "2-10 media URLs, got 11",
                 id="carousel-eleven"),
    pytest.param({"media_urls": ("https://cdn.example.com/logo.png?sig=SECRETSIG",)},
                 "logo.png is not a format Instagram accepts", id="png"),
    pytest.param({"post_type": "reel", "media_urls": ("https://cdn.example.com/a.webm",)},
                 "videos MP4 or MOV", id="webm"),
    pytest.param({"media_urls": (VIDEO,)}, "image post needs a JPEG image, got video clip.mp4",
                 id="image-given-video"),
    pytest.param({"post_type": "reel"}, "reel needs an MP4 or MOV video, got image sunset.jpg",
                 id="reel-given-image"),
    pytest.param({"post_type": "carousel", "media_urls": (IMAGE, "https://cdn.example.com/x")},
                 "cannot tell whether x is an image or a video", id="carousel-unknown-type"),
    pytest.param({"post_type": "story", "content": None,
                  "media_urls": ("https://cdn.example.com/media/42",)},
                 "cannot tell whether 42", id="story-unknown-type"),
    pytest.param({"post_type": "story"}, "story takes no caption", id="story-caption"),
    pytest.param({"options": {"alt_text": 5}}, "alt_text must be text", id="alt-text"),
    pytest.param({"post_type": "reel", "media_urls": (VIDEO,),
                  "options": {"share_to_feed": "yes"}}, "share_to_feed must be true or false",
                 id="share-to-feed"),
    pytest.param({"post_type": "reel", "media_urls": (VIDEO,), "options": {"thumb_offset": -1}},
                 "thumb_offset must be a whole number", id="thumb-offset-negative"),
    pytest.param({"post_type": "reel", "media_urls": (VIDEO,),
                  "options": {"thumb_offset": "1s"}}, "thumb_offset", id="thumb-offset-text"),
])
def test_validate_names_the_problem(make_post: PostFactory, overrides: dict[str, Any],
                                    expected: str) -> None:
    """Each rule rejects with a reason that names what is wrong (and no signed query)."""
    reason = ADAPTER.validate(make_post(**overrides))
    assert reason is not None
    assert expected in reason
    assert "SECRETSIG" not in reason


@pytest.mark.parametrize("overrides", [
    pytest.param({}, id="image"),
    pytest.param({"content": None}, id="image-no-caption"),
    pytest.param({"content": "x" * MAX_CAPTION_CHARS}, id="caption-at-limit"),
    pytest.param({"content": " ".join(f"#t{n} @u{n}" for n in range(20))},
                 id="20-hashtags-20-mentions"),
    pytest.param({"media_urls": ("https://cdn.example.com/photo.JPEG",)}, id="upper-jpeg"),
    pytest.param({"media_urls": ("https://cdn.example.com/render?id=9",)},
                 id="image-without-extension"),
    pytest.param({"options": {"alt_text": "A red sky"}}, id="alt-text"),
    pytest.param({"post_type": "reel", "media_urls": ("https://cdn.example.com/v.mov",),
                  "options": {"share_to_feed": True, "thumb_offset": 0}}, id="reel-mov"),
    pytest.param({"post_type": "carousel", "media_urls": (IMAGE, VIDEO)}, id="carousel-2"),
    pytest.param({"post_type": "carousel", "media_urls": IMAGES[:10]}, id="carousel-10"),
    pytest.param({"post_type": "story", "content": "  ", "media_urls": (VIDEO,)}, id="story"),
])
def test_validate_accepts_valid_posts(make_post: PostFactory, overrides: dict[str, Any]) -> None:
    """A post that follows every rule validates to None."""
    assert MAX_CAPTION_CHARS == 2_200
    assert ADAPTER.validate(make_post(**overrides)) is None


# Issue 10, items 3 and 6: nothing the post asks for is dropped, nothing is invented.
@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"post_type": ""}, "no post_type; instagram takes one of: image, reel",
                 id="empty-post-type"),
    pytest.param({"options": {"location_id": "123"}}, "instagram does not take option "
                 "'location_id'", id="unknown-option"),
    pytest.param({"options": {"share_to_feed": False}}, "share_to_feed applies only to reel",
                 id="reel-option-on-image"),
    pytest.param({"post_type": "reel", "media_urls": (VIDEO,), "options": {"alt_text": "x"}},
                 "alt_text applies only to image posts", id="image-option-on-reel"),
    pytest.param({"post_type": "reel", "media_urls": (VIDEO,),
                  "options": {"share_to_feed": None}}, "share_to_feed must be true or false, "
                 "got null", id="null-option"),
    pytest.param({"post_type": "reel", "media_urls": (VIDEO,),
                  "options": {"share_to_feed": "false"}}, "got \"false\"", id="string-bool"),
])
def test_validate_refuses_what_would_be_dropped_or_invented(
        make_post: PostFactory, overrides: dict[str, Any], expected: str) -> None:
    reason = ADAPTER.validate(make_post(**overrides))
    assert reason is not None
    assert expected in reason


# --- token refresh (Instagram Login) --------------------------------------------------------

REFRESH = f"{ENDPOINTS.instagram_graph}/refresh_access_token"


@pytest.fixture
def refresh_api() -> Iterator[respx.MockRouter]:
    """A respx router for the refresh endpoint host."""
    with respx.mock(assert_all_mocked=True) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A real AsyncClient (respx intercepts its transport)."""
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


async def refresh(client: httpx.AsyncClient) -> TokenGrant | Outcome:
    """Calls the adapter's refresh the way TokenManager does."""
    refresher: TokenRefresher = ADAPTER
    return await refresher.refresh_token(client, ENDPOINTS, access_token=TOKEN,
                                         refresh_token=None, oauth=None)


async def test_refresh_returns_new_token_without_refresh_token(
        refresh_api: respx.MockRouter, client: httpx.AsyncClient) -> None:
    """A refreshed token comes back with its lifetime and no refresh token (IG has none)."""
    route = refresh_api.get(REFRESH).respond(200, json={
        "access_token": "IGQVJnewToken", "token_type": "bearer", "expires_in": 5183944})

    grant = await refresh(client)

    assert isinstance(grant, TokenGrant)
    assert (grant.access_token, grant.refresh_token, grant.expires_in) == (
        "IGQVJnewToken", None, 5183944.0)
    request = route.calls.last.request
    assert dict(request.url.params) == {"grant_type": "ig_refresh_token", "access_token": TOKEN}
    assert request.method == "GET"
    assert "IGQVJnewToken" not in repr(grant)


@pytest.mark.parametrize(("answer", "kind"), [
    pytest.param(httpx.Response(400, json={"error": {
        "message": "Error validating access token: Session has expired",
        "type": "OAuthException", "code": 190, "error_subcode": 463}}), OutcomeKind.REAUTH,
        id="190-expired"),
    pytest.param(httpx.Response(400, json={"error": {
        "message": f"Malformed access token {TOKEN}", "type": "OAuthException",
        "code": 190}}), OutcomeKind.REAUTH, id="190-token-echoed"),
    pytest.param(httpx.Response(403, json={"error": {
        "message": "Permissions error", "type": "OAuthException", "code": 10}}),
        OutcomeKind.REAUTH, id="permission"),
    pytest.param(httpx.Response(500, json={"error": {
        "message": "An unknown error has occurred.", "code": 1}}), OutcomeKind.RETRY,
        id="500-meta"),
    pytest.param(httpx.Response(503, content=f"<html>down {TOKEN}</html>".encode()),
                 OutcomeKind.RETRY, id="503-html-echoing-token"),
    pytest.param(httpx.Response(429, headers={"Retry-After": "120"}), OutcomeKind.RETRY,
                 id="429"),
    pytest.param(httpx.Response(200, json={"token_type": "bearer"}), OutcomeKind.RETRY,
                 id="200-without-token"),
    pytest.param(httpx.ConnectError(f"cannot connect to {REFRESH}?access_token={TOKEN}"),
                 OutcomeKind.RETRY, id="connect-error-with-url"),
    pytest.param(httpx.ReadTimeout(f"timed out: {REFRESH}?access_token={TOKEN}"),
                 OutcomeKind.RETRY, id="read-timeout-with-url"),
])
async def test_refresh_failures(
        refresh_api: respx.MockRouter, client: httpx.AsyncClient,
        answer: httpx.Response | Exception, kind: OutcomeKind) -> None:
    """Refused (190, permission) is REAUTH; transient is RETRY; the token is never shown."""
    refresh_api.get(REFRESH).mock(side_effect=[answer])

    outcome = await refresh(client)

    assert isinstance(outcome, Outcome)
    assert outcome.kind is kind
    assert outcome.reason
    assert TOKEN not in repr(outcome)
    assert "access_token=" not in repr(outcome)


async def test_refresh_429_keeps_retry_after(
        refresh_api: respx.MockRouter, client: httpx.AsyncClient) -> None:
    """A throttled refresh is retried no sooner than the platform asked."""
    refresh_api.get(REFRESH).respond(429, headers={"Retry-After": "120"})

    outcome = await refresh(client)

    assert isinstance(outcome, Outcome)
    assert outcome.retry_after == 120.0

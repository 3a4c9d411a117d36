"""The YouTube adapter's rules and metadata, and its Google token refresh.

validate() must refuse what YouTube never accepts (shared/platforms.md section 4 and the
videos resource limits: title 100 characters without < >, description 5000 bytes, tags 500
characters, publishAt only on private videos). The token endpoint is mocked from section 8.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from youtube_support import (
    MEDIA_URL,
    FakeMedia,
    FakeYouTube,
    Gate,
    context,
    gate,
    make_adapter,
    make_post,
    media,
    router,
    youtube,
)

from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext, TokenGrant, publish_masked
from publisher.platforms.youtube.adapter import MAX_TAGS_CHARS, tags_length
from publisher.settings import OAuthClient, PlatformEndpoints

__all__ = ["context", "gate", "make_post", "media", "router", "youtube"]  # fixtures

ADAPTER = make_adapter()
PostFactory = Callable[..., ClaimedPost]
TOKEN_URL = "https://oauth2.googleapis.com/token"
REFRESH = "1//0gFakeRefreshToken-SECRET"
OAUTH = OAuthClient(client_id="1234-app.apps.googleusercontent.com",
                    client_secret="GOCSPX-fakeClientSecret")
FUTURE = "2026-12-24T18:00:00+01:00"


# --- validate --------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"post_type": "image"}, "'image'", id="type"),
    pytest.param({"post_type": "text"}, "use one of video", id="type-lists-choices"),
    pytest.param({"media_urls": ()}, "exactly 1 video URL, got 0", id="no-video"),
    pytest.param({"media_urls": (MEDIA_URL, MEDIA_URL)}, "exactly 1 video URL, got 2",
                 id="two-videos"),
    pytest.param({"media_urls": ("ftp://media.test/v.mp4",)}, "https", id="not-http"),
    pytest.param({"title": None}, "needs a title", id="no-title"),
    pytest.param({"title": "   "}, "needs a title", id="blank-title"),
    pytest.param({"title": "t" * 101}, "title is 101 characters; the limit is 100",
                 id="title-too-long"),
    pytest.param({"title": "a <b> title"}, "title may not contain < or >", id="title-lt"),
    pytest.param({"title": "x > y"}, "title may not contain < or >", id="title-gt"),
    pytest.param({"content": "é" * 2501}, "description is 5002 bytes; the limit is 5000",
                 id="description-bytes"),
    pytest.param({"content": "see <here>"}, "description may not contain < or >",
                 id="description-angle"),
    pytest.param({"options": {"tags": "a,b"}}, "tags must be a list", id="tags-not-list"),
    pytest.param({"options": {"tags": ["ok", 3]}}, "non-empty strings", id="tags-not-str"),
    pytest.param({"options": {"tags": ["ok", ""]}}, "non-empty strings", id="tags-empty"),
    pytest.param({"options": {"tags": ["abcdefghi"] * 51}},
                 "tags total 509 characters; the limit is 500", id="tags-too-long"),
    pytest.param({"options": {"tags": ["a b c d e"] * 46}},
                 "tags total 551 characters", id="tags-quotes-count"),
    pytest.param({"options": {"category_id": "music"}}, "category_id must be a numeric",
                 id="category-word"),
    pytest.param({"options": {"category_id": ""}}, "category_id", id="category-empty"),
    pytest.param({"options": {"category_id": 2.5}}, "category_id", id="category-float"),
    pytest.param({"options": {"category_id": True}}, "category_id", id="category-bool"),
    pytest.param({"options": {"made_for_kids": "yes"}}, "made_for_kids must be true or false",
                 id="kids-not-bool"),
    pytest.param({"options": {"privacy": "friends"}},
                 "privacy must be one of public, unlisted, private", id="privacy"),
    pytest.param({"options": {"privacy": "public", "publish_at": FUTURE}},
                 "publish_at (publishAt) only works with private videos", id="public-publish-at"),
    pytest.param({"options": {"privacy": "unlisted", "publish_at": FUTURE}},
                 "only works with private videos; this one is unlisted",
                 id="unlisted-publish-at"),
    pytest.param({"options": {"publish_at": "next tuesday"}}, "ISO 8601", id="publish-at-word"),
    pytest.param({"options": {"publish_at": 1767225600}}, "ISO 8601", id="publish-at-number"),
    pytest.param({"options": {"publish_at": "2026-12-24T18:00:00"}}, "needs a time zone",
                 id="publish-at-naive"),
    pytest.param({"options": {"publish_at": "2026-06-30T12:00:00Z"}}, "in the past",
                 id="publish-at-past"),
])
def test_validate_names_the_problem(make_post: PostFactory, overrides: dict[str, Any],
                                    expected: str) -> None:
    """Each rule rejects with a reason that names what is wrong."""
    reason = ADAPTER.validate(make_post(**overrides))
    assert reason is not None
    assert expected in reason


@pytest.mark.parametrize("overrides", [
    pytest.param({}, id="plain"),
    pytest.param({"content": None}, id="no-description"),
    pytest.param({"title": "t" * 100, "content": "é" * 2500}, id="at-limits"),
    pytest.param({"options": {"tags": ["abcdefghi"] * 50}}, id="tags-at-limit"),
    pytest.param({"options": {"publish_at": FUTURE}}, id="publish-at-alone"),
    pytest.param({"options": {"privacy": "private", "publish_at": FUTURE}},
                 id="private-publish-at"),
    pytest.param({"options": {"privacy": "unlisted", "category_id": 10,
                              "made_for_kids": True, "short": True}}, id="all-options"),
    pytest.param({"media_urls": ("http://127.0.0.1:8900/media/v.mp4",)}, id="simulator-http"),
])
def test_validate_accepts_valid_posts(make_post: PostFactory, overrides: dict[str, Any]) -> None:
    """A post that follows every rule validates to None."""
    assert tags_length(["abcdefghi"] * 50) == MAX_TAGS_CHARS - 1
    assert ADAPTER.validate(make_post(**overrides)) is None


# Issue 10, items 3 and 6: a privacy we cannot read is refused, never taken for public.
@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"options": {"privacy": "Private"}}, "privacy must be one of public, "
                 "unlisted, private, got \"Private\"", id="privacy-capitalised"),
    pytest.param({"options": {"privacy": None}}, "privacy must be one of", id="privacy-null"),
    pytest.param({"options": {"privacy": ["private"]}}, "privacy must be one of",
                 id="privacy-array"),
    pytest.param({"options": {"privacy": ""}}, "privacy must be one of", id="privacy-empty"),
    pytest.param({"options": {"privacyStatus": "private"}},
                 "youtube does not take option 'privacyStatus'", id="privacy-misspelt"),
    pytest.param({"options": {"made_for_kids": "true"}}, "made_for_kids must be true or false",
                 id="kids-string-bool"),
    pytest.param({"options": {"short": "yes"}}, "short must be true or false", id="short-text"),
    pytest.param({"options": {"tags": None}}, "tags must be a list", id="tags-null"),
    pytest.param({"options": {"publish_at": None}}, "publish_at must be an ISO 8601",
                 id="publish-at-null"),
    pytest.param({"options": {"category_id": None}}, "category_id must be", id="category-null"),
    pytest.param({"title": "\u200b\u200b"}, "needs a title", id="zero-width-title"),
    pytest.param({"title": "\u3164"}, "needs a title", id="hangul-filler-title"),
    pytest.param({"post_type": ""}, "no post_type; youtube takes one of: video",
                 id="empty-post-type"),
])
def test_validate_fails_closed(make_post: PostFactory, overrides: dict[str, Any],
                               expected: str) -> None:
    reason = ADAPTER.validate(make_post(**overrides))
    assert reason is not None
    assert expected in reason


async def test_publish_refuses_unread_options_without_any_call(
        router: respx.MockRouter, gate: Gate, context: PublishContext,
        make_post: PostFactory) -> None:
    """Even called without validate(), an option it does not know never reaches the upload."""
    post = make_post(options={"privacy_status": "private"})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.FAILED
    assert "privacy_status" in (outcome.reason or "")
    assert len(router.calls) == 0
    assert gate.calls == 0


def test_tags_length_counts_commas_and_quotes() -> None:
    """YouTube counts the commas between tags and quotes around tags with spaces."""
    assert tags_length([]) == 0
    assert tags_length(["ab"]) == 2
    assert tags_length(["ab", "cd"]) == 5
    assert tags_length(["a b"]) == 5


async def test_invalid_post_fails_without_any_call(
        router: respx.MockRouter, youtube: FakeYouTube, media: FakeMedia, gate: Gate,
        context: PublishContext, make_post: PostFactory) -> None:
    """publish() re-checks the rules: an invalid post fails before any request."""
    post = make_post(options={"privacy": "public", "publish_at": FUTURE})

    outcome = await publish_masked(ADAPTER, post, context)

    assert outcome.kind is OutcomeKind.FAILED
    assert "private" in (outcome.reason or "")
    assert len(router.calls) == 0
    assert gate.calls == 0


# --- metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "expected"), [
    pytest.param({}, {"snippet": {"categoryId": "22"},
                      "status": {"privacyStatus": "public", "selfDeclaredMadeForKids": False}},
                 id="defaults"),
    pytest.param({"publish_at": FUTURE},
                 {"status": {"privacyStatus": "private", "publishAt": "2026-12-24T17:00:00Z",
                             "selfDeclaredMadeForKids": False}}, id="scheduled-is-private"),
    pytest.param({"privacy": "unlisted", "made_for_kids": True, "category_id": 10,
                  "tags": ["news", "local news"]},
                 {"snippet": {"categoryId": "10", "tags": ["news", "local news"]},
                  "status": {"privacyStatus": "unlisted", "selfDeclaredMadeForKids": True}},
                 id="options"),
])
async def test_metadata_follows_options(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory, options: dict[str, Any], expected: dict[str, Any]) -> None:
    """Options become the session's snippet and status."""
    outcome = await publish_masked(ADAPTER, make_post(options=options), context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    sent = json.loads(youtube.opened[0].content)
    for part, values in expected.items():
        for key, value in values.items():
            assert sent[part][key] == value, (part, key)
    if "publish_at" not in options:
        assert "publishAt" not in sent["status"]
    if "tags" not in options:
        assert "tags" not in sent["snippet"]


# --- token refresh ---------------------------------------------------------------------------


async def refresh(oauth: OAuthClient | None = OAUTH,
                  refresh_token: str | None = REFRESH) -> TokenGrant | Outcome:
    """Calls refresh_token over a fresh client (respx intercepts it)."""
    async with httpx.AsyncClient(timeout=5) as client:
        return await ADAPTER.refresh_token(client, PlatformEndpoints(), access_token="old",
                                           refresh_token=refresh_token, oauth=oauth)


def assert_no_secrets(outcome: Outcome) -> None:
    """No refresh token or client secret in what an outcome says."""
    for secret in (REFRESH, OAUTH.client_secret):
        assert secret not in repr(outcome)


async def test_refresh_success_keeps_the_refresh_token(router: respx.MockRouter) -> None:
    """A refresh without a new refresh token in the answer returns refresh_token None."""
    route = router.post(TOKEN_URL).respond(200, json={
        "access_token": "ya29.new", "expires_in": 3599, "scope": "youtube.upload",
        "token_type": "Bearer"})

    grant = await refresh()

    assert isinstance(grant, TokenGrant)
    assert grant.access_token == "ya29.new"
    assert grant.refresh_token is None
    assert grant.expires_in == 3599.0
    form = {k: v[0] for k, v in parse_qs(route.calls.last.request.content.decode()).items()}
    assert form == {"grant_type": "refresh_token", "refresh_token": REFRESH,
                    "client_id": OAUTH.client_id, "client_secret": OAUTH.client_secret}
    assert REFRESH not in str(route.calls.last.request.url)


async def test_refresh_returns_a_rotated_refresh_token(router: respx.MockRouter) -> None:
    """When Google does send a new refresh token, it is passed on."""
    router.post(TOKEN_URL).respond(200, json={"access_token": "ya29.new",
                                              "refresh_token": "1//new", "expires_in": 3599})

    grant = await refresh()

    assert isinstance(grant, TokenGrant)
    assert grant.refresh_token == "1//new"
    assert "1//new" not in repr(grant)


@pytest.mark.parametrize(("response", "kind", "says"), [
    pytest.param(httpx.Response(400, json={"error": "invalid_grant",
                                           "error_description": "Token has been expired or "
                                                                "revoked."}),
                 OutcomeKind.REAUTH, ("expired or revoked", "reconnect"), id="invalid-grant"),
    pytest.param(httpx.Response(401, json={"error": "invalid_client",
                                           "error_description": "The OAuth client was not "
                                                                "found."}),
                 OutcomeKind.FAILED, ("GOOGLE_CLIENT_ID", "client was not found"),
                 id="invalid-client"),
    pytest.param(httpx.Response(400, json={"error": "unauthorized_client"}),
                 OutcomeKind.FAILED, ("GOOGLE_CLIENT_SECRET",), id="unauthorized-client"),
    pytest.param(httpx.Response(400, json={"error": "invalid_request"}),
                 OutcomeKind.FAILED, ("invalid_request",), id="other-4xx"),
    pytest.param(httpx.Response(500, text="oops"), OutcomeKind.RETRY, ("unavailable",),
                 id="500"),
    pytest.param(httpx.Response(503, headers={"Retry-After": "20"}), OutcomeKind.RETRY,
                 ("HTTP 503",), id="503"),
    pytest.param(httpx.Response(429, json={"error": "rate_limit_exceeded"}),
                 OutcomeKind.RETRY, ("rate_limit_exceeded",), id="429"),
    pytest.param(httpx.Response(200, json={"token_type": "Bearer"}), OutcomeKind.RETRY,
                 ("without an access token",), id="no-access-token"),
    pytest.param(httpx.Response(200, text="<html>"), OutcomeKind.RETRY,
                 ("without an access token",), id="not-json"),
])
async def test_refresh_refused_or_failing(
        router: respx.MockRouter, response: httpx.Response, kind: OutcomeKind,
        says: tuple[str, ...]) -> None:
    """Refused grants are REAUTH, app problems FAILED, outages RETRY; no secret leaks."""
    router.post(TOKEN_URL).mock(return_value=response)

    outcome = await refresh()

    assert isinstance(outcome, Outcome)
    assert outcome.kind is kind
    for text in says:
        assert text in (outcome.reason or "")
    assert_no_secrets(outcome)


async def test_refresh_retry_after_is_kept(router: respx.MockRouter) -> None:
    """A throttled token endpoint's Retry-After becomes the retry wait."""
    router.post(TOKEN_URL).respond(503, headers={"Retry-After": "20"})

    outcome = await refresh()

    assert isinstance(outcome, Outcome)
    assert outcome.retry_after == 20.0


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_refresh_transport_error_is_retry(router: respx.MockRouter,
                                                error: Exception) -> None:
    """A token endpoint that cannot be reached: RETRY (a refresh is safe to repeat)."""
    router.post(TOKEN_URL).mock(side_effect=error)

    outcome = await refresh()

    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.RETRY


async def test_refresh_without_oauth_client_names_the_settings(
        router: respx.MockRouter) -> None:
    """No GOOGLE_CLIENT_ID/SECRET configured: FAILED naming both, no request made."""
    outcome = await refresh(oauth=None)

    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.FAILED
    assert "GOOGLE_CLIENT_ID" in (outcome.reason or "")
    assert "GOOGLE_CLIENT_SECRET" in (outcome.reason or "")
    assert len(router.calls) == 0


async def test_refresh_without_refresh_token_is_reauth(router: respx.MockRouter) -> None:
    """An account without a refresh token can only be reconnected: REAUTH, no request."""
    outcome = await refresh(refresh_token=None)

    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.REAUTH
    assert "reconnect" in (outcome.reason or "")
    assert len(router.calls) == 0

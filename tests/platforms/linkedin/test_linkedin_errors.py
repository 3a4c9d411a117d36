"""Every row of the LinkedIn error table (shared/platforms.md sections 6 and 7), via the adapter.

Error bodies follow LinkedIn's shape, {"status", "serviceErrorCode", "code", "message"};
proxies answer HTML. The clock is fixed at NOW (18:30 UTC), so a daily limit waits 5 h 30
min plus the one-minute margin.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from linkedin_support import (
    API,
    IMAGES,
    NOW,
    ORG,
    PERSON,
    TOKEN,
    LinkedIn,
    adapter,
    harness,
    make_post,
)

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.base import publish_masked
from publisher.platforms.linkedin.errors import (
    CONFIG_DEFER_SECONDS,
    MIDNIGHT_MARGIN_SECONDS,
    THROTTLE_SECONDS,
    classify_linkedin_error,
    config_error,
    seconds_until_midnight_utc,
)

ADAPTER = adapter()
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
TOKEN_MARK = "{token}"
UNTIL_MIDNIGHT = 5.5 * 3600 + MIDNIGHT_MARGIN_SECONDS
SHARE = "urn:li:share:7000000000000000001"
UGC = "urn:li:ugcPost:7000000000000000002"


def li_error(status: int, message: str, code: str | None = None,
             service: int | None = None) -> dict[str, Any]:
    """A LinkedIn REST error body."""
    body: dict[str, Any] = {"status": status, "message": message}
    if code is not None:
        body["code"] = code
    if service is not None:
        body["serviceErrorCode"] = service
    return body


def duplicate_body(urn: str) -> dict[str, Any]:
    """LinkedIn's real 422 for a repeated post (github.com/Arisamiga/Linkedin-RSS/issues/5):
    no top-level code; DUPLICATE_POST sits in errorDetails.inputErrors."""
    return {"errorDetailType": "com.linkedin.common.error.BadRequest",
            "message": "com.linkedin.content.common.exception.BadRequestResponseException: "
                       f"Content is a duplicate of {urn}",
            "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected",
                                              "input": {}, "code": "DUPLICATE_POST"}]},
            "status": 422}


@dataclass(frozen=True)
class Case:
    """One response and the outcome it must come to."""

    status: int
    body: dict[str, Any] | bytes | None
    kind: OutcomeKind
    headers: dict[str, str] = field(default_factory=dict)
    wait: float | None = None          # expected retry_after (DEFER)
    pause: bool = True                 # expected pause_account (DEFER)
    pause_platform: bool = False       # expected pause_platform (DEFER)
    post_id: str | None = None         # expected platform_post_id (PUBLISHED)
    says: tuple[str, ...] = ()         # substrings the reason must contain
    detail: dict[str, Any] = field(default_factory=dict)  # entries the detail must hold
    author: str = ORG

    def response(self) -> httpx.Response:
        if isinstance(self.body, dict):
            content = json.dumps(self.body).replace(TOKEN_MARK, TOKEN).encode()
            return httpx.Response(self.status, content=content,
                                  headers={"Content-Type": "application/json", **self.headers})
        content = (self.body or b"").replace(TOKEN_MARK.encode(), TOKEN.encode())
        return httpx.Response(self.status, content=content, headers=self.headers)


def assert_outcome(outcome: Outcome, case: Case) -> None:
    """The outcome matches the case, and no part of it carries the token."""
    assert outcome.kind is case.kind, outcome
    for text in case.says:
        assert text in (outcome.reason or ""), outcome.reason
    if case.kind is OutcomeKind.DEFER:
        assert outcome.retry_after == case.wait
        assert outcome.pause_account is case.pause
        assert outcome.pause_platform is case.pause_platform
    if case.kind is OutcomeKind.PUBLISHED:
        assert outcome.platform_post_id == case.post_id
        assert outcome.url == f"https://www.linkedin.com/feed/update/{case.post_id}/"
    for key, value in case.detail.items():
        assert outcome.detail.get(key) == value, outcome.detail
    assert outcome.detail["http_status"] == case.status
    assert TOKEN not in repr(outcome)


def version_case(status: int, body: dict[str, Any] | bytes | None) -> Case:
    return Case(status, body, OutcomeKind.DEFER, wait=CONFIG_DEFER_SECONDS, pause=False,
                says=("LINKEDIN_VERSION", "202601", "not at fault"),
                detail={"config_error": "LINKEDIN_VERSION"})


PUBLISH_CASES = {
    # 401: the token is dead; the member must reconnect.
    "401-65600-invalid": Case(401, li_error(401, "Invalid access token", "INVALID_ACCESS_TOKEN",
                                            65600), OutcomeKind.REAUTH,
                              says=("invalid or expired", "reconnect", "65600"),
                              detail={"service_error_code": 65600}),
    "401-65601-revoked": Case(401, li_error(401, "The token used in the request has been "
                                            "revoked by the user", "REVOKED_ACCESS_TOKEN", 65601),
                              OutcomeKind.REAUTH, says=("revoked", "reconnect", "65601")),
    "401-other-code": Case(401, li_error(401, "Expired token", "EXPIRED_ACCESS_TOKEN"),
                           OutcomeKind.REAUTH, says=("rejected the access token",)),
    "401-no-body": Case(401, None, OutcomeKind.REAUTH, says=("reconnect",)),
    # 403: a permission the app or the member's role lacks, named; reconnecting grants
    # nothing, so the post fails and the account is not sent to reconnect.
    "403-organization": Case(403, li_error(403, "Not enough permissions to access: "
                                           "partnerApiPostsExternal.CREATE.20260101",
                                           "ACCESS_DENIED", 100), OutcomeKind.FAILED,
                             says=("w_organization_social", "ADMINISTRATOR", ORG,
                                   "permission partnerApiPostsExternal.CREATE:",
                                   "does not grant it"),
                             detail={"permission": "partnerApiPostsExternal.CREATE"}),
    "403-person": Case(403, li_error(403, "Not enough permissions", "ACCESS_DENIED"),
                       OutcomeKind.FAILED, says=("w_member_social", "lack of a permission"),
                       author=PERSON),
    # 422: validation fails for good; a duplicate means the first one is live: published.
    "422-validation": Case(422, li_error(422, "/commentary :: length exceeds 3000"),
                           OutcomeKind.FAILED, says=("rejected", "length exceeds 3000")),
    "422-duplicate": Case(422, li_error(422, f"Content is a duplicate of {SHARE}"),
                          OutcomeKind.PUBLISHED, post_id=SHARE, says=(SHARE,),
                          detail={"duplicate_of": SHARE}),
    "422-duplicate-linkedin-body": Case(422, duplicate_body(SHARE), OutcomeKind.PUBLISHED,
                                        post_id=SHARE, detail={"code": "DUPLICATE_POST"}),
    "422-duplicate-ugcpost": Case(422, duplicate_body(UGC), OutcomeKind.PUBLISHED,
                                  post_id=UGC),
    "422-duplicate-no-urn": Case(422, li_error(422, "Content is a duplicate",
                                               "DUPLICATE_POST"),
                                 OutcomeKind.UNKNOWN, says=("URN not given",)),
    "422-duplicate-code-only-in-details": Case(
        422, {**duplicate_body(SHARE), "message": "Duplicate post is detected"},
        OutcomeKind.UNKNOWN, says=("URN not given",)),
    # Another kind of URN is not a post: not taken for the live post.
    "422-duplicate-of-a-person": Case(422, li_error(422, "Content is a duplicate of "
                                                    "urn:li:person:782bbtaQ"),
                                      OutcomeKind.FAILED),
    # 426 (and version codes): our configuration, not the post.
    "426-nonexistent-version": version_case(426, li_error(426, "Requested version 202601 is "
                                                          "not active", "NONEXISTENT_VERSION")),
    "426-no-body": version_case(426, b"Upgrade Required"),
    "400-version-missing": version_case(400, li_error(400, "A version must be present",
                                                      "VERSION_MISSING")),
    # 429: throttled; the account waits.
    "429-retry-after": Case(429, li_error(429, "Too many requests"), OutcomeKind.DEFER,
                            headers={"Retry-After": "120"}, wait=120.0, says=("throttled",)),
    # The app's budget: every LinkedIn post waits (the platform is paused).
    "429-application-day": Case(429, li_error(429, "Resource level throttle APPLICATION DAY "
                                              "limit for calls to this resource is reached."),
                                OutcomeKind.DEFER, wait=UNTIL_MIDNIGHT, pause_platform=True,
                                says=("app-wide", "daily limit", "midnight UTC"),
                                detail={"limit": "application"}),
    "429-member-day": Case(429, li_error(429, "Resource level throttle MEMBER DAY limit for "
                                         "calls to this resource is reached."),
                           OutcomeKind.DEFER, wait=UNTIL_MIDNIGHT, detail={"limit": "member"}),
    "429-daily-retry-after-wins": Case(429, li_error(429, "daily limit reached"),
                                       OutcomeKind.DEFER, headers={"Retry-After": "30"},
                                       wait=30.0),
    "429-no-body": Case(429, None, OutcomeKind.DEFER, wait=THROTTLE_SECONDS),
    # 5xx, LinkedIn's own body or a proxy's: the post may have been made; never re-sent.
    **{f"{s}-linkedin-body": Case(s, li_error(s, "Internal Server Error"), OutcomeKind.UNKNOWN,
                                  says=("server error", f"HTTP {s}", "not sent again"))
       for s in (500, 502, 503, 504)},
    **{f"{s}-html": Case(s, HTML_502, OutcomeKind.UNKNOWN, headers={"Content-Type": "text/html"},
                         says=("does not prove", "Bad Gateway"))
       for s in (500, 502, 503, 504)},
    "504-empty": Case(504, None, OutcomeKind.UNKNOWN),
    "500-json-not-linkedin": Case(500, {"oops": True}, OutcomeKind.UNKNOWN),
    # Any other 4xx: permanent, with LinkedIn's message.
    "400-bad-request": Case(400, li_error(400, "Invalid author urn"), OutcomeKind.FAILED,
                            says=("Invalid author urn", "HTTP 400")),
    "404": Case(404, li_error(404, "No virtual resource found"), OutcomeKind.FAILED,
                says=("No virtual resource found",)),
    "400-not-json": Case(400, b"Bad Request", OutcomeKind.FAILED, says=("HTTP 400",)),
    # LinkedIn echoes the token back: it never reaches the outcome.
    "token-echoed": Case(401, li_error(401, f"Invalid token {TOKEN_MARK}"), OutcomeKind.REAUTH),
    "token-echoed-html": Case(502, f"<html>Bearer {TOKEN_MARK}</html>".encode(),
                              OutcomeKind.UNKNOWN),
}

PREPARE_CASES = {
    "500-html": Case(500, HTML_502, OutcomeKind.RETRY, says=("server error",)),
    "503-linkedin-body": Case(503, li_error(503, "Service Unavailable"), OutcomeKind.RETRY),
    "401-revoked": Case(401, li_error(401, "revoked", "REVOKED_ACCESS_TOKEN", 65601),
                        OutcomeKind.REAUTH, says=("revoked",)),
    "403": Case(403, li_error(403, "Not enough permissions"), OutcomeKind.FAILED,
                says=("w_organization_social",)),
    "422-duplicate-is-not-live-here": Case(422, li_error(422, f"Content is a duplicate of "
                                                              f"{SHARE}"), OutcomeKind.FAILED),
    "426": version_case(426, li_error(426, "version gone", "NONEXISTENT_VERSION")),
    "429": Case(429, None, OutcomeKind.DEFER, headers={"Retry-After": "60"}, wait=60.0),
    "400": Case(400, li_error(400, "Invalid owner"), OutcomeKind.FAILED, says=("Invalid owner",)),
}


@pytest.fixture
async def li() -> AsyncIterator[LinkedIn]:
    """A respx-mocked LinkedIn with its gate and context."""
    async with harness() as mocked:
        yield mocked


@pytest.mark.parametrize("case", PUBLISH_CASES.values(), ids=PUBLISH_CASES.keys())
async def test_post_call_error(li: LinkedIn, case: Case) -> None:
    """An answer to POST /rest/posts comes to the table's outcome."""
    posts = li.router.post(f"{API}/rest/posts").mock(return_value=case.response())

    outcome = await publish_masked(ADAPTER, make_post(author=case.author), li.context)

    assert posts.call_count == 1
    assert li.gate.calls == 1
    assert_outcome(outcome, case)


@pytest.mark.parametrize("case", PREPARE_CASES.values(), ids=PREPARE_CASES.keys())
async def test_initialize_upload_error(li: LinkedIn, case: Case) -> None:
    """An answer to initializeUpload stops the post before anything is sent."""
    li.all_media(1)
    init = li.router.post(f"{API}/rest/images").mock(return_value=case.response())
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]),
                                   li.context)

    assert init.call_count == 1
    assert posts.call_count == 0
    assert li.gate.calls == 0
    assert_outcome(outcome, case)


@pytest.mark.parametrize(("status", "kind"), [(500, OutcomeKind.RETRY), (502, OutcomeKind.RETRY),
                                              (401, OutcomeKind.REAUTH),
                                              (400, OutcomeKind.FAILED),
                                              (429, OutcomeKind.DEFER)])
async def test_upload_put_error(li: LinkedIn, status: int, kind: OutcomeKind) -> None:
    """An error answer to the byte upload is a preparation error: nothing is sent."""
    li.all_media(1)
    li.initialize()
    li.upload(status)
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]),
                                   li.context)

    assert outcome.kind is kind
    assert posts.call_count == 0
    assert li.gate.calls == 0


@pytest.mark.parametrize(("status", "kind"), [(500, OutcomeKind.RETRY),
                                              (401, OutcomeKind.REAUTH),
                                              (400, OutcomeKind.FAILED)])
async def test_image_status_error(li: LinkedIn, status: int, kind: OutcomeKind) -> None:
    """An error answer to the image status check (other than 403/404) stops the post."""
    li.all_media(1)
    li.initialize()
    li.upload()
    li.status(status)
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]),
                                   li.context)

    assert outcome.kind is kind
    assert posts.call_count == 0


def test_config_error_names_the_setting() -> None:
    """The run can tell a configuration problem from a post's or an account's."""
    response = PUBLISH_CASES["426-nonexistent-version"].response()

    outcome = classify_linkedin_error(response, irreversible=True, version="202401")
    assert config_error(outcome) == "LINKEDIN_VERSION"
    assert "202401" in (outcome.reason or "")
    assert config_error(Outcome.failed("caption too long")) is None


@pytest.mark.parametrize(("now", "seconds"), [
    (NOW, 5.5 * 3600),
    (datetime(2026, 3, 10, 0, 0, tzinfo=UTC), 86400.0),
    (datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC), 30.0),
    (datetime.fromisoformat("2026-03-10T20:00:00-05:00"), 23 * 3600.0),  # 01:00 UTC
])
def test_seconds_until_midnight_utc(now: datetime, seconds: float) -> None:
    """LinkedIn's daily limits reset at 00:00 UTC, whatever the local zone."""
    assert seconds_until_midnight_utc(now) == seconds

"""Every row of the YouTube error table (shared/platforms.md sections 6 and 7), via the adapter.

Error bodies follow Google's shape, {"error": {"code", "message", "errors": [{"domain",
"reason"}]}}. The table is walked on the session POST (where quota and metadata errors
land) and on an upload chunk (where the session must be kept for the next attempt).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from youtube_support import (
    NOW,
    TOKEN,
    FakeMedia,
    FakeYouTube,
    Fault,
    Gate,
    context,
    gate,
    google_error,
    make_adapter,
    make_post,
    media,
    router,
    youtube,
)

from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext, TokenGrant, publish_masked
from publisher.platforms.youtube.errors import (
    DEFAULT_THROTTLE_SECONDS,
    QUOTA_RESET_MARGIN_SECONDS,
    UPLOAD_LIMIT_SECONDS,
    seconds_until_quota_reset,
)
from publisher.settings import OAuthClient, PlatformEndpoints

__all__ = ["context", "gate", "make_post", "media", "router", "youtube"]  # fixtures

ADAPTER = make_adapter()
PostFactory = Callable[..., ClaimedPost]
# NOW is 12:00 UTC on 1 July 2026 = 05:00 PDT; the next Pacific midnight is 07:00 UTC.
UNTIL_MIDNIGHT_PT = 19 * 3600 + QUOTA_RESET_MARGIN_SECONDS
Q_RECEIVED = 256 * 1024


@dataclass(frozen=True)
class Case:
    """One error answer and the outcome it must come to."""

    status: int
    body: dict[str, Any] | bytes
    kind: OutcomeKind
    headers: dict[str, str] = field(default_factory=dict)
    wait: float | None = None       # expected retry_after
    says: tuple[str, ...] = ()      # substrings the reason must contain

    def response(self) -> httpx.Response:
        if isinstance(self.body, dict):
            return httpx.Response(self.status, json=self.body, headers=self.headers)
        return httpx.Response(self.status, content=self.body, headers=self.headers)


def assert_outcome(outcome: Outcome, case: Case) -> None:
    """The outcome matches the case and carries no token."""
    assert outcome.kind is case.kind, outcome
    for text in case.says:
        assert text in (outcome.reason or ""), outcome.reason
    if case.kind is OutcomeKind.DEFER:
        assert outcome.retry_after == case.wait
        assert outcome.pause_account is True
    if case.wait is not None and case.kind is OutcomeKind.RETRY:
        assert outcome.retry_after == case.wait
    assert outcome.detail.get("http_status") == case.status
    assert TOKEN not in repr(outcome)


FAILED_REASONS = {
    "invalidTitle": (400, "title"),
    "invalidDescription": (400, "description"),
    "invalidTags": (400, "tags"),
    "invalidPublishAt": (400, "publish_at"),
    "invalidCategoryId": (400, "category_id"),
    "invalidVideoMetadata": (400, "metadata"),
    "mediaBodyRequired": (400, "no video bytes"),
    "forbidden": (403, "refused the upload"),
    "youtubeSignupRequired": (403, "no YouTube channel"),
}

TABLE = {
    # Quota: the project's daily quota resets at midnight Pacific.
    "403-quotaExceeded": Case(403, google_error(403, "quotaExceeded", "The request cannot be "
                                                "completed because you have exceeded your "
                                                "quota.", domain="youtube.quota"),
                              OutcomeKind.DEFER, wait=UNTIL_MIDNIGHT_PT,
                              says=("quota", "midnight Pacific", "quotaExceeded")),
    # The channel's own upload cap: 24 hours.
    "400-uploadLimitExceeded": Case(400, google_error(400, "uploadLimitExceeded",
                                                      "The user has exceeded the number of "
                                                      "videos they may upload."),
                                    OutcomeKind.DEFER, wait=UPLOAD_LIMIT_SECONDS,
                                    says=("upload limit", "24 h")),
    # Throttles: Retry-After when given, else a few minutes.
    **{f"{status}-{reason}-{'retry-after' if after else 'default'}": Case(
        status, google_error(status, reason, "Rate Limit Exceeded", domain="usageLimits"),
        OutcomeKind.DEFER, headers={"Retry-After": "120"} if after else {},
        wait=120.0 if after else DEFAULT_THROTTLE_SECONDS, says=("throttled", reason))
       for status in (403, 429) for reason in ("rateLimitExceeded", "userRateLimitExceeded")
       for after in (True, False)},
    "429-no-body": Case(429, b"", OutcomeKind.DEFER, wait=DEFAULT_THROTTLE_SECONDS,
                        says=("throttled",)),
    # Server errors: retry (the session, when there is one, is resumed).
    "500-backendError": Case(500, google_error(500, "backendError", "Backend Error",
                                               domain="global"),
                             OutcomeKind.RETRY, says=("temporary", "backendError")),
    **{f"{status}-html": Case(status, b"<html>Bad Gateway</html>", OutcomeKind.RETRY,
                              says=(f"HTTP {status}",)) for status in (502, 503, 504)},
    "503-retry-after": Case(503, b"", OutcomeKind.RETRY, headers={"Retry-After": "30"},
                            wait=30.0),
    # A bad token: the run refreshed expiring tokens already, so the user must reconnect.
    "401-authError": Case(401, google_error(401, "authError", "Invalid Credentials",
                                            domain="global"),
                          OutcomeKind.REAUTH, says=("token", "Invalid Credentials")),
    "401-no-body": Case(401, b"", OutcomeKind.REAUTH, says=("token",)),
    # docs/errors: 401 youtubeSignupRequired is an account without a channel, not a dead
    # token: its own reason, no reconnect.
    "401-youtubeSignupRequired": Case(401, google_error(401, "youtubeSignupRequired",
                                                       "Unauthorized",
                                                       domain="youtube.header"),
                                      OutcomeKind.FAILED,
                                      says=("no YouTube channel: create one, then reconnect",)),
    "403-insufficientPermissions": Case(403, google_error(403, "insufficientPermissions",
                                                         "Request had insufficient "
                                                         "authentication scopes.",
                                                         domain="global"),
                                        OutcomeKind.REAUTH, says=("youtube.upload",)),
    # Permanent: the reason names what to fix.
    **{f"{status}-{reason}": Case(status, google_error(status, reason, f"{reason} message"),
                                  OutcomeKind.FAILED, says=(meaning, f"{reason} message"))
       for reason, (status, meaning) in FAILED_REASONS.items()},
    "400-unlisted-reason": Case(400, google_error(400, "somethingNew", "Odd request"),
                                OutcomeKind.FAILED, says=("rejected", "Odd request",
                                                          "somethingNew")),
    "400-unreadable": Case(400, b"Bad Request", OutcomeKind.FAILED, says=("HTTP 400",)),
    "409-conflict": Case(409, google_error(409, "conflict", "Conflict"), OutcomeKind.FAILED),
    # The table picks the meaningful reason even when another one comes first.
    "403-quota-second-reason": Case(403, {"error": {"code": 403, "message": "quota", "errors": [
        {"domain": "global", "reason": "forbidden"},
        {"domain": "youtube.quota", "reason": "quotaExceeded"}]}},
        OutcomeKind.DEFER, wait=UNTIL_MIDNIGHT_PT),
}


@pytest.mark.parametrize("case", TABLE.values(), ids=TABLE.keys())
async def test_error_opening_the_session(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, case: Case) -> None:
    """An error answer to the session POST comes to the table's outcome; nothing is sent."""
    youtube.open_responses = [case.response()]

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert_outcome(outcome, case)
    assert youtube.chunks == []
    assert gate.calls == 0
    assert outcome.state == {}


CHUNK_TABLE = {name: case for name, case in TABLE.items() if case.status < 500}


@pytest.mark.parametrize("case", CHUNK_TABLE.values(), ids=CHUNK_TABLE.keys())
async def test_error_on_a_chunk_keeps_the_session(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, case: Case) -> None:
    """A 4xx on an upload chunk comes to the table's outcome, carrying the session."""
    youtube.faults[1] = Fault("respond", response=case.response())

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert_outcome(outcome, case)
    assert outcome.state == {"upload_session": youtube.uri("s1"),
                             "total": youtube.session().total}
    assert len(youtube.chunks) == 2
    assert youtube.probes == []
    assert gate.calls == 0


@pytest.mark.parametrize("name", ["403-quotaExceeded", "401-authError", "400-invalidTitle"])
async def test_error_on_the_final_chunk(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, name: str) -> None:
    """A definite error answer to the last chunk is classified too (no video was made)."""
    case = TABLE[name]
    youtube.faults[4] = Fault("respond", response=case.response())

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert_outcome(outcome, case)
    assert gate.calls == 1
    assert outcome.state["upload_session"] == youtube.uri("s1")


@pytest.mark.parametrize("case", [TABLE["401-authError"], TABLE["403-forbidden"]],
                         ids=["401", "403"])
async def test_error_probing_a_stored_session(
        youtube: FakeYouTube, media: FakeMedia, gate: Gate, context: PublishContext,
        make_post: PostFactory, case: Case) -> None:
    """The probe of a stored session is classified like any answer; the session is kept."""
    total = len(media.data)
    uri = youtube.add_session("old", total, received=Q_RECEIVED, data=media.data)
    youtube.probe_faults = [case.response()]

    outcome = await publish_masked(
        ADAPTER, make_post(publish_state={"upload_session": uri, "total": total}), context)

    assert_outcome(outcome, case)
    assert outcome.state == {"upload_session": uri, "total": total}
    assert media.requested == []



@pytest.mark.parametrize(("now", "expected_hours"), [
    pytest.param(NOW, 19, id="summer-PDT"),
    pytest.param(datetime(2026, 1, 15, 12, 0, tzinfo=UTC), 20, id="winter-PST"),
    pytest.param(datetime(2026, 3, 8, 8, 0, tzinfo=UTC), 23, id="spring-forward-day"),
    pytest.param(datetime(2026, 11, 1, 7, 0, tzinfo=UTC), 25, id="fall-back-day"),
    pytest.param(datetime(2026, 7, 2, 6, 59, tzinfo=UTC), 1 / 60, id="a-minute-before"),
])
def test_quota_reset_is_next_pacific_midnight(now: datetime, expected_hours: float) -> None:
    """The quota wait runs to the next midnight in America/Los_Angeles, DST included."""
    assert seconds_until_quota_reset(now) == pytest.approx(
        expected_hours * 3600 + QUOTA_RESET_MARGIN_SECONDS)


# --- Google's token endpoint (google-auth's google/oauth2/_client.py _can_retry) -------------

TOKEN_URL = f"{PlatformEndpoints().google_oauth.rstrip('/')}/token"
OAUTH = OAuthClient(client_id="client-1.apps.googleusercontent.com",
                    client_secret="GOCSPX-secret-value-0123")
REFRESH = "1//0refresh-token-secret-value"

TOKEN_TABLE = {
    # Transient by its code, whatever the status (HTTP 400 included): RETRY, no reconnect.
    **{f"400-{code}": (400, {"error": code}, OutcomeKind.RETRY)
       for code in ("temporarily_unavailable", "server_error", "internal_failure")},
    "400-code-in-description": (400, {"error": "x",
                                      "error_description": "temporarily_unavailable"},
                                OutcomeKind.RETRY),
    **{f"{status}-status": (status, {"error": "x"}, OutcomeKind.RETRY)
       for status in (408, 429, 500, 502, 503, 504)},
    # A refused grant is final: the account reconnects.
    "400-invalid_grant": (400, {"error": "invalid_grant", "error_description": "Token has "
                                "been expired or revoked."}, OutcomeKind.REAUTH),
    # Our app's client: the operator's settings, neither a retry nor a reconnect.
    "401-invalid_client": (401, {"error": "invalid_client"}, OutcomeKind.FAILED),
    "400-invalid_request": (400, {"error": "invalid_request"}, OutcomeKind.FAILED),
}


@pytest.mark.parametrize(("status", "body", "kind"), TOKEN_TABLE.values(),
                         ids=TOKEN_TABLE.keys())
async def test_token_endpoint_answer(router: respx.MockRouter, status: int,
                                     body: dict[str, Any], kind: OutcomeKind) -> None:
    """Each token endpoint answer comes to its row's outcome; no secret in it."""
    router.post(TOKEN_URL).respond(status, json=body)

    async with httpx.AsyncClient(timeout=5) as client:
        outcome = await ADAPTER.refresh_token(client, PlatformEndpoints(), access_token="old",
                                              refresh_token=REFRESH, oauth=OAUTH)

    assert not isinstance(outcome, TokenGrant)
    assert outcome.kind is kind, outcome
    assert REFRESH not in repr(outcome)
    assert OAUTH.client_secret not in repr(outcome)

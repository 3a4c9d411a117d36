"""YouTube Data API and Google OAuth errors -> outcomes, in one table each.

API body shape: {"error": {"code", "message", "errors": [{"domain", "reason"}]}}; the
`reason` decides, the HTTP status only where no reason does. The token endpoint answers
{"error": "invalid_grant", "error_description": "..."}.

References: the YouTube Data API's error pages (developers.google.com/youtube/v3/docs/errors
and .../docs/videos/insert#errors), google-api-python-client's googleapiclient/http.py
(_should_retry_response: 5xx, 429 and 403 rate limits are retried) and google-auth's
google/oauth2/_client.py (_can_retry: what the token endpoint says is transient) and
google/auth/transport/requests.py (AuthorizedSession: a 401 refreshes the token and
repeats the request; the upload does that once, see upload.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from publisher import redact
from publisher.models import Outcome, OutcomeKind
from publisher.platforms.http import retry_after_seconds, snippet

DEFAULT_THROTTLE_SECONDS = 300.0
UPLOAD_LIMIT_SECONDS = 24 * 3600.0
QUOTA_RESET_MARGIN_SECONDS = 60.0  # land just after the reset, not just before it
OAUTH_SETTINGS = "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET"

# docs/errors (403 usageLimits) and googleapiclient/http.py _should_retry_response, which
# retries a 403 only for these two reasons.
THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# The token endpoint's own words for "try again" (google/oauth2/_client.py _can_retry, after
# RFC 6749 4.1.2.1), sent with HTTP 400 as well as 5xx.
TRANSIENT_TOKEN_ERRORS = frozenset({"internal_failure", "server_error",
                                    "temporarily_unavailable"})
# Statuses google-auth retries at the token endpoint (google/auth/transport/__init__.py
# DEFAULT_RETRYABLE_STATUS_CODES: 500, 503, 504, 408, 429); we take every 5xx.
TRANSIENT_TOKEN_STATUSES = frozenset({408, 429})

# reason -> (kind, what to tell the user); the throttles above and 5xx are handled first.
VIDEO_INSERT_ERRORS = "developers.google.com/youtube/v3/docs/videos/insert#errors"
ERROR_TABLE: dict[str, tuple[OutcomeKind, str]] = {
    # VIDEO_INSERT_ERRORS, 400 badRequest rows:
    "invalidTitle": (OutcomeKind.FAILED, "YouTube rejected the title (1-100 characters, "
                     "no < or >)"),
    "invalidDescription": (OutcomeKind.FAILED, "YouTube rejected the description (at most "
                           "5000 bytes, no < or >)"),
    "invalidTags": (OutcomeKind.FAILED, "YouTube rejected the tags (500 characters in all)"),
    "invalidPublishAt": (OutcomeKind.FAILED, "YouTube rejected publish_at (a future time, "
                         "private videos only)"),
    "invalidCategoryId": (OutcomeKind.FAILED, "YouTube rejected category_id (not a valid "
                          "video category)"),
    "invalidVideoMetadata": (OutcomeKind.FAILED, "YouTube rejected the video's metadata"),
    "mediaBodyRequired": (OutcomeKind.FAILED, "YouTube received no video bytes"),
    # VIDEO_INSERT_ERRORS, 403 forbidden:
    "forbidden": (OutcomeKind.FAILED, "YouTube refused the upload for this channel"),
    # docs/errors, 401 unauthorized youtubeSignupRequired: a Google account without a
    # channel. The token is fine; reconnecting alone does not help, making a channel does.
    "youtubeSignupRequired": (OutcomeKind.FAILED, "the Google account has no YouTube "
                              "channel: create one, then reconnect"),
    # docs/errors, 403 insufficientPermissions: a token without the youtube.upload scope;
    # only reconnecting (and granting the scope) gives one that has it.
    "insufficientPermissions": (OutcomeKind.REAUTH, "the account's token lacks the "
                                "youtube.upload scope: reconnect it and grant access"),
}


def _pacific() -> timezone | ZoneInfo:
    try:
        return ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:  # no tz database: PST is the later of the two midnights
        return timezone(timedelta(hours=-8))


def seconds_until_quota_reset(now: datetime) -> float:
    """Seconds from `now` (aware) to the next midnight Pacific, when YouTube quotas reset."""
    zone = _pacific()
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(),
                                tzinfo=zone)
    return (midnight.astimezone(UTC) - now.astimezone(UTC)).total_seconds() \
        + QUOTA_RESET_MARGIN_SECONDS


def _rank(reason: str) -> int:
    if reason in ("quotaExceeded", "uploadLimitExceeded"):
        return 0
    if reason in THROTTLE_REASONS:
        return 1
    return 2 if reason in ERROR_TABLE else 3


def _google_error(response: httpx.Response) -> tuple[list[str], str | None]:
    """The error reasons and message of a Google API error body (empty when it has none)."""
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return [], None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return [], None
    items = error.get("errors")
    reasons = [str(item["reason"]) for item in items
               if isinstance(item, dict) and item.get("reason")] if isinstance(items,
                                                                                list) else []
    message = error.get("message")
    return reasons, redact.clip(str(message), 300) if message else None


def has_google_error(response: httpx.Response) -> bool:
    """Whether the body is the API's own error (a reason or a message), not a proxy's."""
    reasons, message = _google_error(response)
    return bool(reasons or message)


def classify_youtube_error(response: httpx.Response, *, now: datetime) -> Outcome:
    """The outcome of an error answer from the YouTube Data API (upload or session)."""
    status = response.status_code
    reasons, message = _google_error(response)
    # Several reasons: what time will fix wins over what it will not (defer, don't fail).
    reason = min(reasons, key=_rank, default=None)
    said = message or f"HTTP {status}: {snippet(response)!r}"
    described = f"{said} ({reason or 'no reason'}, HTTP {status})"
    detail: dict[str, Any] = {"http_status": status, "error_reason": reason}

    if reason == "quotaExceeded":
        # docs/errors 403 quotaExceeded; quotas reset at midnight Pacific
        # (developers.google.com/youtube/v3/determine_quota_cost). The quota belongs to
        # the API project: every channel waits, not just this one.
        return Outcome.defer(f"the YouTube API quota is used up until midnight Pacific: "
                             f"{described}", seconds_until_quota_reset(now),
                             pause_account=True, pause_platform=True, **detail)
    if reason == "uploadLimitExceeded":  # VIDEO_INSERT_ERRORS: the channel's own limit
        return Outcome.defer(f"the channel reached YouTube's upload limit; waiting 24 h: "
                             f"{described}", UPLOAD_LIMIT_SECONDS, pause_account=True, **detail)
    if reason in THROTTLE_REASONS or status == 429:  # googleapiclient/http.py: retried
        return Outcome.defer(f"throttled by YouTube: {described}",
                             retry_after_seconds(response) or DEFAULT_THROTTLE_SECONDS,
                             pause_account=True, **detail)
    if status >= 500:  # googleapiclient/http.py _should_retry_response: 5xx is retried
        # (on the final chunk the upload probes the session first: upload.py)
        return Outcome.retry(f"temporary YouTube error: {described}",
                             retry_after_seconds(response), **detail)
    if reason is not None and reason in ERROR_TABLE:  # before 401: youtubeSignupRequired
        kind, meaning = ERROR_TABLE[reason]
        return Outcome(kind=kind, reason=f"{meaning}: {described}", detail=detail)
    if status == 401:
        # docs/errors 401 authError: the token is dead. (A 401 in the middle of an upload
        # is first met with one refresh, as google-auth's AuthorizedSession does.)
        return Outcome.reauth(f"YouTube refused the account's token: {described}", **detail)
    return Outcome.failed(f"YouTube rejected the upload: {described}", **detail)


def is_dead_token(outcome: Outcome) -> bool:
    """A 401 that one token refresh may cure (not youtubeSignupRequired, not a scope)."""
    return (outcome.kind is OutcomeKind.REAUTH and outcome.detail.get("http_status") == 401
            and outcome.detail.get("error_reason") not in ERROR_TABLE)


def classify_token_error(response: httpx.Response) -> Outcome:
    """The outcome of a refused refresh at Google's token endpoint."""
    status = response.status_code
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    code = error if isinstance(error, str) else None
    description = body.get("error_description") if isinstance(body, dict) else None
    said = f"{code or f'HTTP {status}'}" + (f": {redact.clip(str(description), 200)}"
                                           if description else "")
    detail: dict[str, Any] = {"http_status": status, "error": code}
    # google/oauth2/_client.py _can_retry: these statuses, or these error codes (in `error`
    # or `error_description`) whatever the status: transient, never a reconnect.
    transient_code = code in TRANSIENT_TOKEN_ERRORS or (
        isinstance(description, str) and description in TRANSIENT_TOKEN_ERRORS)
    if status in TRANSIENT_TOKEN_STATUSES or status >= 500 or transient_code:
        return Outcome.retry(f"Google's token endpoint is unavailable ({said})",
                             retry_after_seconds(response), **detail)
    if code == "invalid_grant":  # RFC 6749 5.2; google/oauth2/_client.py: not retryable
        return Outcome.reauth(f"Google refused the refresh token ({said}): reconnect the "
                              "YouTube account", **detail)
    if code in ("invalid_client", "unauthorized_client"):  # RFC 6749 5.2: our app's client
        return Outcome.failed(f"Google refused this app's OAuth client ({said}): check "
                              f"{OAUTH_SETTINGS}", **detail)
    return Outcome.failed(f"Google refused the token refresh ({said})", **detail)

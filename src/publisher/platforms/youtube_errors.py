"""YouTube Data API and Google OAuth errors -> outcomes, in one table each.

API body shape: {"error": {"code", "message", "errors": [{"domain", "reason"}]}}; the
`reason` decides, the HTTP status only where no reason does. The token endpoint answers
{"error": "invalid_grant", "error_description": "..."}.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.http import retry_after_seconds, snippet

DEFAULT_THROTTLE_SECONDS = 300.0
UPLOAD_LIMIT_SECONDS = 24 * 3600.0
QUOTA_RESET_MARGIN_SECONDS = 60.0  # land just after the reset, not just before it
OAUTH_SETTINGS = "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET"

THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})

# reason -> (kind, what to tell the user); the throttles above and 5xx are handled first.
ERROR_TABLE: dict[str, tuple[OutcomeKind, str]] = {
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
    "forbidden": (OutcomeKind.FAILED, "YouTube refused the upload for this channel"),
    "youtubeSignupRequired": (OutcomeKind.FAILED, "the Google account has no YouTube "
                              "channel: create one, then reconnect the account"),
    # A token without the youtube.upload scope: only reconnecting can grant it.
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
    return reasons, str(message)[:300] if message else None


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
        # The quota belongs to the API project: every channel waits, not just this one.
        return Outcome.defer(f"the YouTube API quota is used up until midnight Pacific: "
                             f"{described}", seconds_until_quota_reset(now),
                             pause_account=True, pause_platform=True, **detail)
    if reason == "uploadLimitExceeded":
        return Outcome.defer(f"the channel reached YouTube's upload limit; waiting 24 h: "
                             f"{described}", UPLOAD_LIMIT_SECONDS, pause_account=True, **detail)
    if reason in THROTTLE_REASONS or status == 429:
        return Outcome.defer(f"throttled by YouTube: {described}",
                             retry_after_seconds(response) or DEFAULT_THROTTLE_SECONDS,
                             pause_account=True, **detail)
    if status >= 500:
        return Outcome.retry(f"temporary YouTube error: {described}",
                             retry_after_seconds(response), **detail)
    if status == 401:
        return Outcome.reauth(f"YouTube refused the account's token: {described}", **detail)
    if reason is not None and reason in ERROR_TABLE:
        kind, meaning = ERROR_TABLE[reason]
        return Outcome(kind=kind, reason=f"{meaning}: {described}", detail=detail)
    return Outcome.failed(f"YouTube rejected the upload: {described}", **detail)


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
    said = f"{code or f'HTTP {status}'}" + (f": {str(description)[:200]}" if description else "")
    detail: dict[str, Any] = {"http_status": status, "error": code}
    if status == 429 or status >= 500:
        return Outcome.retry(f"Google's token endpoint is unavailable ({said})",
                             retry_after_seconds(response), **detail)
    if code == "invalid_grant":
        return Outcome.reauth(f"Google refused the refresh token ({said}): reconnect the "
                              "YouTube account", **detail)
    if code in ("invalid_client", "unauthorized_client"):
        return Outcome.failed(f"Google refused this app's OAuth client ({said}): check "
                              f"{OAUTH_SETTINGS}", **detail)
    return Outcome.failed(f"Google refused the token refresh ({said})", **detail)

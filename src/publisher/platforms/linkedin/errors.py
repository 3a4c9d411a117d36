"""LinkedIn REST API errors -> outcomes, in one table.

Body shapes: {"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN",
"message": "..."}, and for validation errors {"status": 422, "message": "...",
"errorDetailType": "...", "errorDetails": {"inputErrors": [{"code": "DUPLICATE_POST", ...}]}};
bodies that are not JSON (proxy HTML) are handled too.

    HTTP / code                         outcome
    426, or NONEXISTENT_VERSION /       DEFER 1 h, account not paused, detail
      VERSION_MISSING                     config_error=LINKEDIN_VERSION (not the post's fault)
    429 APPLICATION limit               DEFER, the platform paused (the app's budget is spent)
    429 (MEMBER limit, or unnamed)      DEFER, account paused
      wait: Retry-After; else until the next midnight UTC (+1 min) when the message names a
      DAY/daily limit; else 15 min
    5xx on a preparation call           RETRY
    5xx on POST /rest/posts             UNKNOWN, body or not: an error answer to the one
                                          irreversible call does not prove the post was not
                                          created (reconciliation, never a blind re-send)
    401 (65600 INVALID_ACCESS_TOKEN,    REAUTH: the member must reconnect
      65601 REVOKED_ACCESS_TOKEN, any)
    403 (missing permission)            FAILED naming the permission: reconnecting grants
                                          nothing the app or the member's role lacks
    "Content is a duplicate of          PUBLISHED (on POST /rest/posts) as that URN: the
      urn:li:share:N" (422)               identical post is live
    DUPLICATE_POST without a URN        UNKNOWN: live, but which post is not said
    422 / any other 4xx                 FAILED with LinkedIn's message

Token refresh (POST /oauth/v2/accessToken, {"error", "error_description"}): 5xx RETRY;
429 DEFER (account paused); invalid_client DEFER 1 h with config_error (our app's
credentials, not the member's); any other refusal (invalid_grant...) REAUTH.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from publisher import redact
from publisher.models import Outcome, OutcomeKind
from publisher.platforms.http import retry_after_seconds, snippet

CONFIG_ERROR = "config_error"           # detail key: the setting an operator must fix
VERSION_SETTING = "LINKEDIN_VERSION"
VERSION_CODES = frozenset({"NONEXISTENT_VERSION", "VERSION_MISSING"})
DUPLICATE_CODE = "DUPLICATE_POST"
CONFIG_DEFER_SECONDS = 3600.0
THROTTLE_SECONDS = 900.0                # 429 that names no daily limit and no Retry-After
MIDNIGHT_MARGIN_SECONDS = 60.0          # don't arrive at the very second of the reset
SERVICE_ERRORS = {
    # learn.microsoft.com/linkedin/shared/api-guide/concepts/error-handling (401 cases)
    65600: "the access token is invalid or expired (INVALID_ACCESS_TOKEN)",
    65601: "the member revoked the app's access (REVOKED_ACCESS_TOKEN)",
}
_DUPLICATE = re.compile(r"duplicate of (urn:li:(?:share|ugcPost):\d+)", re.IGNORECASE)
_DAILY = re.compile(r"\bDAY\b|daily", re.IGNORECASE)
_PERMISSION = re.compile(r"Not enough permissions to access:?\s*([A-Za-z][\w.]*\w)")
_API_VERSION_SUFFIX = re.compile(r"\.\d{8}$")   # partnerApiPostsExternal.CREATE.20240101

# Where each row comes from (LinkedIn's docs, under learn.microsoft.com/linkedin/):
ERROR_DOCS = "learn.microsoft.com/linkedin/shared/api-guide/concepts/error-handling"
RATE_DOCS = "learn.microsoft.com/linkedin/shared/api-guide/concepts/rate-limits"
VERSION_DOCS = "learn.microsoft.com/linkedin/marketing/versioning"
POSTS_DOCS = "learn.microsoft.com/linkedin/marketing/community-management/shares/posts-api"


def config_error(outcome: Outcome) -> str | None:
    """The setting an outcome blames (e.g. "LINKEDIN_VERSION"), for the run to raise loudly;
    None when the outcome is about the post or the account."""
    value = outcome.detail.get(CONFIG_ERROR)
    return value if isinstance(value, str) else None


def seconds_until_midnight_utc(now: datetime) -> float:
    """Seconds from now to the next 00:00 UTC, when LinkedIn's daily limits reset."""
    now = now.astimezone(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def permission_hint(author: str | None) -> str:
    """What a 403 most likely means for this author, in words the operator can act on."""
    if author and author.startswith("urn:li:organization:"):
        return ("the LinkedIn app needs the w_organization_social permission (Community "
                "Management API), and the member must be an ADMINISTRATOR, "
                f"CONTENT_ADMINISTRATOR or DSC poster of {author}")
    return ("the LinkedIn app needs the w_member_social permission (Share on LinkedIn or "
            "Community Management API)")


def duplicate_urn(message: str) -> str | None:
    """The live post a "Content is a duplicate of urn:li:share:N" refusal names."""
    found = _DUPLICATE.search(message)
    return found.group(1) if found else None


def classify_linkedin_error(response: httpx.Response, *, irreversible: bool,
                            version: str, author: str | None = None,
                            now: datetime | None = None) -> Outcome:
    """The outcome of a non-2xx LinkedIn REST response. `irreversible`: the answer is to
    POST /rest/posts, the one call that makes the post public."""
    status = response.status_code
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    service = _int(fields.get("serviceErrorCode"))
    codes = _codes(fields)
    code = codes[0] if codes else None
    raw_message = str(fields.get("message") or "")
    message = redact.clip(raw_message, 300) or snippet(response)
    detail: dict[str, Any] = {"http_status": status, "service_error_code": service,
                              "code": code}
    tag = "/".join(str(part) for part in (service, code) if part is not None)
    described = f"{message} (HTTP {status}{f', {tag}' if tag else ''})"

    # VERSION_DOCS: 426 for a sunset LinkedIn-Version; a missing one is VERSION_MISSING.
    if status == 426 or VERSION_CODES & set(codes):
        detail[CONFIG_ERROR] = VERSION_SETTING
        return Outcome.defer(
            f"LinkedIn no longer accepts API version {version}: {described}. Set "
            f"{VERSION_SETTING} to a current YYYYMM month; the post waits and is not at fault",
            CONFIG_DEFER_SECONDS, pause_account=False, **detail)
    if status == 429:  # RATE_DOCS: APPLICATION and MEMBER daily limits, reset 00:00 UTC
        return _throttled(response, message, described, detail, now)
    if status >= 500:  # ERROR_DOCS: 5xx server errors
        reason = f"LinkedIn server error: {described}"
        if irreversible:
            # Never twice: LinkedIn may have made the post before failing (issue 11).
            return Outcome.unknown(f"{reason}; an error answer to the post itself does not "
                                   "prove it was not created: not sent again", **detail)
        return Outcome.retry(reason, **detail)
    if status == 401:  # ERROR_DOCS: invalid, expired or revoked token
        meaning = SERVICE_ERRORS.get(service or 0, "LinkedIn rejected the access token")
        return Outcome.reauth(f"{meaning}: the member must reconnect LinkedIn ({described})",
                              **detail)
    if status == 403:  # ERROR_DOCS: 403 Access Denied, the token lacks a permission
        return _forbidden(raw_message, described, detail, author)
    urn = duplicate_urn(raw_message)
    if irreversible and urn:
        # POSTS_DOCS 422 DUPLICATE_POST: the identical post of this author is live.
        detail["duplicate_of"] = urn
        return Outcome(kind=OutcomeKind.PUBLISHED, platform_post_id=urn,
                       url=f"https://www.linkedin.com/feed/update/{urn}/", detail=detail,
                       reason=f"LinkedIn refused a repeat of a live post, {urn}: recorded as "
                              "that post")
    if irreversible and DUPLICATE_CODE in codes:
        return Outcome.unknown(f"LinkedIn says this post duplicates one already live (URN not "
                               f"given): not sent again ({described})", **detail)
    # ERROR_DOCS: 400 / 404 / 422 validation errors: nothing was made, and never will be.
    return Outcome.failed(f"LinkedIn rejected the request: {described}", **detail)


def _codes(fields: dict[str, Any]) -> list[str]:
    """Every error code in a body: the top-level `code`, then errorDetails.inputErrors'."""
    codes = [fields["code"]] if isinstance(fields.get("code"), str) else []
    details = fields.get("errorDetails")
    inputs = details.get("inputErrors") if isinstance(details, dict) else None
    for item in inputs if isinstance(inputs, list) else []:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            codes.append(item["code"])
    return codes


def _forbidden(raw_message: str, described: str, detail: dict[str, Any],
               author: str | None) -> Outcome:
    """A 403: a permission the app or the member's role lacks. Reconnecting the same app
    grants nothing new, so the post fails with the permission named, and the account is
    not sent to reconnect."""
    found = _PERMISSION.search(raw_message)
    permission = _API_VERSION_SUFFIX.sub("", found.group(1)) if found else None
    if permission:
        detail["permission"] = permission
    named = f"the permission {permission}" if permission else "a permission"
    return Outcome.failed(f"LinkedIn refused the action for lack of {named}: "
                          f"{permission_hint(author)}; reconnecting the account does not "
                          f"grant it ({described})", **detail)


def _throttled(response: httpx.Response, message: str, described: str,
               detail: dict[str, Any], now: datetime | None) -> Outcome:
    wait = retry_after_seconds(response)
    daily = bool(_DAILY.search(message))
    if wait is None:
        wait = (seconds_until_midnight_utc(now or datetime.now(UTC)) + MIDNIGHT_MARGIN_SECONDS
                if daily else THROTTLE_SECONDS)
    upper = message.upper()
    scope = "application" if "APPLICATION" in upper else "member" if "MEMBER" in upper else None
    if scope:
        detail["limit"] = scope
    what = "daily limit reached (resets at midnight UTC)" if daily else "throttled"
    if scope == "application":
        # The app's budget, shared by every member: all LinkedIn posts wait, not one account.
        return Outcome.defer(f"LinkedIn app-wide {what}: {described}", wait,
                             pause_account=True, pause_platform=True, **detail)
    return Outcome.defer(f"LinkedIn {what}: {described}", wait, pause_account=True, **detail)


def classify_token_error(response: httpx.Response) -> Outcome:
    """The outcome of a refused POST /oauth/v2/accessToken (refresh_token grant).

    learn.microsoft.com/linkedin/shared/authentication/programmatic-refresh-tokens; error
    codes per RFC 6749 section 5.2. invalid_client is our app's credentials, not the
    member's: it defers the post and names the settings instead of marking the account for
    reconnection.
    """
    status = response.status_code
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    error = str(fields.get("error") or "") or None
    description = redact.clip(str(fields.get("error_description") or fields.get("message")
                                  or ""), 300)
    described = f"{error or 'no error code'}: {description or snippet(response)} (HTTP {status})"
    detail: dict[str, Any] = {"http_status": status, "error": error}
    if status >= 500:  # ERROR_DOCS: server error, try later
        return Outcome.retry(f"LinkedIn's token endpoint failed: {described}", **detail)
    if status == 429:  # RATE_DOCS
        return Outcome.defer(f"LinkedIn's token endpoint is throttling: {described}",
                             retry_after_seconds(response) or THROTTLE_SECONDS,
                             pause_account=True, **detail)
    if error == "invalid_client":  # RFC 6749 5.2: the client (our app) failed to authenticate
        detail[CONFIG_ERROR] = "LINKEDIN_CLIENT_SECRET"
        return Outcome.defer(
            f"LinkedIn refused our app's credentials: {described}. Check LINKEDIN_CLIENT_ID "
            "and LINKEDIN_CLIENT_SECRET", CONFIG_DEFER_SECONDS, **detail)
    # RFC 6749 5.2 invalid_grant (expired or revoked refresh token) and the rest.
    return Outcome.reauth(f"LinkedIn refused to refresh the token ({described}): the member "
                          "must reconnect LinkedIn", **detail)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

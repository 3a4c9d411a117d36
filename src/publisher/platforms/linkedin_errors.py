"""LinkedIn REST API errors -> outcomes, in one table.

Body shape: {"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN",
"message": "..."}; bodies that are not JSON (proxy HTML) are handled too.

    HTTP / code                         outcome
    426, or NONEXISTENT_VERSION /       DEFER 1 h, account not paused, detail
      VERSION_MISSING                     config_error=LINKEDIN_VERSION (not the post's fault)
    429                                 DEFER, account paused: Retry-After; else until the
                                          next midnight UTC (+1 min) when the message names a
                                          DAY/daily limit; else 15 min
    5xx on a preparation call           RETRY
    5xx on POST /rest/posts             RETRY with a LinkedIn JSON body (LinkedIn answered: the
                                          post was not created); UNKNOWN without one (a proxy
                                          answered: LinkedIn may have created it)
    401 (65600 INVALID_ACCESS_TOKEN,    REAUTH: the member must reconnect
      65601 REVOKED_ACCESS_TOKEN, any)
    403                                 REAUTH: missing scope or organization role, named
    "... is a duplicate of urn:li:..."  UNKNOWN (on POST /rest/posts): the earlier identical
      (422), or DUPLICATE_POST            post is live; its URN goes in detail["duplicate_of"]
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

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.http import retry_after_seconds, snippet

CONFIG_ERROR = "config_error"           # detail key: the setting an operator must fix
VERSION_SETTING = "LINKEDIN_VERSION"
VERSION_CODES = frozenset({"NONEXISTENT_VERSION", "VERSION_MISSING"})
CONFIG_DEFER_SECONDS = 3600.0
THROTTLE_SECONDS = 900.0                # 429 that names no daily limit and no Retry-After
MIDNIGHT_MARGIN_SECONDS = 60.0          # don't arrive at the very second of the reset
SERVICE_ERRORS = {
    65600: "the access token is invalid or expired (INVALID_ACCESS_TOKEN)",
    65601: "the member revoked the app's access (REVOKED_ACCESS_TOKEN)",
}
_DUPLICATE = re.compile(r"duplicate of (urn:li:[A-Za-z]+:[\w-]+)", re.IGNORECASE)
_DAILY = re.compile(r"\bDAY\b|daily", re.IGNORECASE)


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
        return ("the token lacks the w_organization_social permission, or the member is not an "
                f"ADMINISTRATOR, CONTENT_ADMINISTRATOR or DSC poster of {author}: reconnect "
                "LinkedIn as a member with that role and grant the permission")
    return ("the token lacks the w_member_social permission: the member must reconnect "
            "LinkedIn and grant it")


def classify_linkedin_error(response: httpx.Response, *, irreversible: bool,
                            version: str, author: str | None = None,
                            now: datetime | None = None) -> Outcome:
    """The outcome of a non-2xx LinkedIn REST response."""
    status = response.status_code
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    linkedin_body = isinstance(body, dict) and bool(
        {"message", "serviceErrorCode", "code", "status"} & body.keys())
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    service = _int(fields.get("serviceErrorCode"))
    code = fields.get("code") if isinstance(fields.get("code"), str) else None
    message = str(fields.get("message") or "")[:300] or snippet(response)
    detail: dict[str, Any] = {"http_status": status, "service_error_code": service,
                              "code": code}
    tag = "/".join(str(part) for part in (service, code) if part is not None)
    described = f"{message} (HTTP {status}{f', {tag}' if tag else ''})"

    if status == 426 or code in VERSION_CODES:
        detail[CONFIG_ERROR] = VERSION_SETTING
        return Outcome.defer(
            f"LinkedIn no longer accepts API version {version}: {described}. Set "
            f"{VERSION_SETTING} to a current YYYYMM month; the post waits and is not at fault",
            CONFIG_DEFER_SECONDS, pause_account=False, **detail)
    if status == 429:
        return _throttled(response, message, described, detail, now)
    if status >= 500:
        reason = f"LinkedIn server error: {described}"
        if irreversible and not linkedin_body:
            return Outcome.unknown(f"{reason}; the answer did not come from LinkedIn's API, so "
                                   "the post may have been created", **detail)
        return Outcome.retry(reason, **detail)
    if status == 401:
        meaning = SERVICE_ERRORS.get(service or 0, "LinkedIn rejected the access token")
        return Outcome.reauth(f"{meaning}: the member must reconnect LinkedIn ({described})",
                              **detail)
    if status == 403:
        return Outcome.reauth(f"LinkedIn refused the action: {permission_hint(author)} "
                              f"({described})", **detail)
    duplicate = _DUPLICATE.search(message)
    if irreversible and (duplicate or code == "DUPLICATE_POST"):
        urn = duplicate.group(1) if duplicate else None
        if urn:
            detail["duplicate_of"] = urn
            detail["duplicate_url"] = f"https://www.linkedin.com/feed/update/{urn}/"
        return Outcome(kind=OutcomeKind.UNKNOWN, detail=detail,
                       reason=f"LinkedIn says this post duplicates one already live "
                              f"({urn or 'URN not given'}): not sent again ({described})")
    return Outcome.failed(f"LinkedIn rejected the request: {described}", **detail)


def _throttled(response: httpx.Response, message: str, described: str,
               detail: dict[str, Any], now: datetime | None) -> Outcome:
    wait = retry_after_seconds(response)
    daily = bool(_DAILY.search(message))
    if wait is None:
        wait = (seconds_until_midnight_utc(now or datetime.now(UTC)) + MIDNIGHT_MARGIN_SECONDS
                if daily else THROTTLE_SECONDS)
    scope = ("application" if "APPLICATION" in message.upper()
             else "member" if "MEMBER" in message.upper() else None)
    if scope:
        detail["limit"] = scope
    what = "daily limit reached (resets at midnight UTC)" if daily else "throttled"
    return Outcome.defer(f"LinkedIn {what}: {described}", wait, pause_account=True, **detail)


def classify_token_error(response: httpx.Response) -> Outcome:
    """The outcome of a refused POST /oauth/v2/accessToken (refresh_token grant).

    invalid_client is our app's credentials, not the member's: it defers the post and
    names the settings instead of marking the account for reconnection.
    """
    status = response.status_code
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    error = str(fields.get("error") or "") or None
    description = str(fields.get("error_description") or fields.get("message") or "")[:300]
    described = f"{error or 'no error code'}: {description or snippet(response)} (HTTP {status})"
    detail: dict[str, Any] = {"http_status": status, "error": error}
    if status >= 500:
        return Outcome.retry(f"LinkedIn's token endpoint failed: {described}", **detail)
    if status == 429:
        return Outcome.defer(f"LinkedIn's token endpoint is throttling: {described}",
                             retry_after_seconds(response) or THROTTLE_SECONDS,
                             pause_account=True, **detail)
    if error == "invalid_client":
        detail[CONFIG_ERROR] = "LINKEDIN_CLIENT_SECRET"
        return Outcome.defer(
            f"LinkedIn refused our app's credentials: {described}. Check LINKEDIN_CLIENT_ID "
            "and LINKEDIN_CLIENT_SECRET", CONFIG_DEFER_SECONDS, **detail)
    return Outcome.reauth(f"LinkedIn refused to refresh the token ({described}): the member "
                          "must reconnect LinkedIn", **detail)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

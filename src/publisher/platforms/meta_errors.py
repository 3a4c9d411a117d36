"""Meta Graph API errors (Facebook Pages, Instagram) -> outcomes, in one table.

Body shape: {"error": {"message", "type", "code", "error_subcode", "is_transient",
"fbtrace_id"}}. Throttles mostly come as 400/403 with a code, so classify by code.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.http import retry_after_seconds, snippet

THROTTLE_CODES = frozenset({4, 17, 32, 613, 341, 80001, 80002, 80000, 80003, 80004, 80005,
                            80006})
APP_THROTTLE_CODES = frozenset({4, 341})
TRANSIENT_CODES = frozenset({1, 2})
TOKEN_CODES = frozenset({190, 102})
PERMISSION_CODES = frozenset({3, 10, *range(200, 300)})
BAD_INPUT_CODES = frozenset({100, 1609005, 1366046})
DUPLICATE_CODE = 506
POLICY_BLOCK_CODE = 368
DEFAULT_THROTTLE_SECONDS = 300.0
POLICY_BLOCK_SECONDS = 3600.0

# code -> (kind, what to tell the user); checked after is_transient and throttles.
ERROR_TABLE: dict[int, tuple[OutcomeKind, str]] = {
    **{code: (OutcomeKind.REAUTH, "the access token is expired or invalid")
       for code in TOKEN_CODES},
    **{code: (OutcomeKind.REAUTH, "the app lacks a permission for this page: reconnect the "
              "account and grant it") for code in PERMISSION_CODES},
    **{code: (OutcomeKind.FAILED, "the platform rejected the post") for code in BAD_INPUT_CODES},
    DUPLICATE_CODE: (OutcomeKind.UNKNOWN, "the platform says this exact text was just posted: "
                     "it may already be live"),
}


def _usage_wait_seconds(response: httpx.Response) -> float | None:
    """estimated_time_to_regain_access (minutes) from X-Business-Use-Case-Usage."""
    raw = response.headers.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
        minutes = [float(entry.get("estimated_time_to_regain_access", 0))
                   for entries in usage.values() for entry in entries]
    except (ValueError, AttributeError, TypeError):
        return None
    longest = max(minutes, default=0.0)
    return longest * 60 if longest > 0 else None


def classify_meta_error(response: httpx.Response, *, irreversible: bool) -> Outcome:
    """The outcome of a non-2xx (or error-bodied) Graph API response."""
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    if not isinstance(error, dict):
        if status == 429:
            return Outcome.defer("throttled (HTTP 429)", retry_after_seconds(response)
                                 or DEFAULT_THROTTLE_SECONDS, pause_account=True)
        if status >= 500:
            reason = f"platform error HTTP {status} with no error body: {snippet(response)!r}"
            return (Outcome.unknown(reason, http_status=status) if irreversible
                    else Outcome.retry(reason, http_status=status))
        return Outcome.failed(f"platform answered HTTP {status} with an unreadable body: "
                              f"{snippet(response)!r}", http_status=status)

    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    message = str(error.get("message") or "no message")[:300]
    detail: dict[str, Any] = {"http_status": status, "code": code, "subcode": subcode}
    described = f"{message} (code {code}{f'/{subcode}' if subcode else ''})"

    if code in THROTTLE_CODES or status == 429 or subcode == 1390008:
        wait = (_usage_wait_seconds(response) or retry_after_seconds(response)
                or DEFAULT_THROTTLE_SECONDS)
        # Codes 4 and 341 are the app's own budget: every account of the app waits.
        return Outcome.defer(f"throttled by the platform: {described}", wait,
                             pause_account=True, pause_platform=code in APP_THROTTLE_CODES,
                             **detail)
    if code == POLICY_BLOCK_CODE:
        return Outcome.defer(f"temporarily blocked by the platform: {described}",
                             POLICY_BLOCK_SECONDS, pause_account=True, **detail)
    if error.get("is_transient") is True or code in TRANSIENT_CODES or status >= 500:
        return Outcome.retry(f"temporary platform error: {described}", **detail)
    if code is not None and code in ERROR_TABLE:
        kind, meaning = ERROR_TABLE[code]
        return Outcome(kind=kind, reason=f"{meaning}: {described}", detail=detail)
    return Outcome.failed(f"the platform rejected the post: {described}", **detail)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

"""Meta Graph API errors (Facebook Pages, Instagram) -> outcomes, in one table.

Body shape: {"error": {"message", "type", "code", "error_subcode", "is_transient",
"fbtrace_id"}}. Throttles mostly come as 400/403 with a code, so classify by code.

The same answer means different things on the two kinds of call. On a preparation call
(an unpublished upload, a container, a status read) a server error is simply tried again.
On the one irreversible call (Facebook /feed, /photos, /videos; Instagram media_publish)
an error answer does not prove that nothing was made: Meta may have made the post and then
failed to say so. There codes 1/2, is_transient and a 5xx are UNKNOWN (reconciliation, never
a resend), as a timeout is. Only answers that prove the post was not made (a throttle, a
refused token or parameter) keep their usual outcome. `irreversible` says which call it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from publisher import redact
from publisher.models import Outcome, OutcomeKind
from publisher.platforms.http import retry_after_seconds, send, snippet

DEFAULT_THROTTLE_SECONDS = 300.0
POLICY_BLOCK_SECONDS = 3600.0
POSTING_TOO_FAST = 1390008   # subcode of 368: a throttle, waited by the usage headers [1]

# References cited by the rows:
_GUIDE = "developers.facebook.com/docs/graph-api/guides/error-handling"
_LIMITS = "developers.facebook.com/docs/graph-api/overview/rate-limiting"
# [1] shared/platforms.md section 7 (Meta table, checked against Postiz and the SDK)


@dataclass(frozen=True, slots=True)
class Row:
    """What one Meta error code comes to."""

    kind: OutcomeKind                     # on a preparation call
    meaning: str
    on_publish: OutcomeKind | None = None  # on the irreversible call, when that differs
    app_wide: bool = False                # DEFER: the app's own budget: every account waits
    wait: float | None = None             # DEFER: a fixed wait instead of the usage headers

    def kind_for(self, irreversible: bool) -> OutcomeKind:
        return self.on_publish if irreversible and self.on_publish else self.kind


_RETRY, _DEFER, _REAUTH = OutcomeKind.RETRY, OutcomeKind.DEFER, OutcomeKind.REAUTH
_FAILED, _UNKNOWN = OutcomeKind.FAILED, OutcomeKind.UNKNOWN

# "Wait and retry" says Meta; after the publishing call that would risk a second post.
TRANSIENT = Row(_RETRY, "temporary platform error", on_publish=_UNKNOWN)
THROTTLED = Row(_DEFER, "throttled by the platform")
APP_THROTTLED = Row(_DEFER, "throttled by the platform (the app's budget)", app_wide=True)
TOKEN = Row(_REAUTH, "the access token is expired or invalid")
PERMISSION = Row(_REAUTH, "the app lacks a permission for this page: reconnect the account "
                 "and grant it")
REJECTED = Row(_FAILED, "the platform rejected the post")
POLICY_BLOCK = Row(_DEFER, "temporarily blocked by the platform", wait=POLICY_BLOCK_SECONDS)
DUPLICATE = Row(_UNKNOWN, "the platform says this exact text was just posted: it may already "
                "be live")

ERROR_TABLE: dict[int, Row] = {
    1: TRANSIENT,        # API Unknown: "possibly a temporary issue due to downtime" (_GUIDE)
    2: TRANSIENT,        # API Service: "temporary issue due to downtime" (_GUIDE)
    4: APP_THROTTLED,    # API Too Many Calls: the app's platform rate limit (_GUIDE, _LIMITS)
    341: APP_THROTTLED,  # Application limit reached (_GUIDE)
    17: THROTTLED,       # API User Too Many Calls: the user's limit (_GUIDE, _LIMITS)
    32: THROTTLED,       # Page request limit reached: the Page's limit (_LIMITS)
    613: THROTTLED,      # Calls within one hour exceeded: a custom limit (_GUIDE, _LIMITS)
    80001: THROTTLED,    # Business Use Case limit, Pages (_LIMITS)
    80002: THROTTLED,    # Business Use Case limit, Instagram (_LIMITS)
    **{code: THROTTLED for code in (80000, 80003, 80004, 80005, 80006)},  # other BUC (_LIMITS)
    368: POLICY_BLOCK,   # Temporarily blocked for policy violations: wait an hour (_GUIDE)
    190: TOKEN,          # Access token has expired / invalid (OAuthException) (_GUIDE)
    102: TOKEN,          # API Session: login status or token invalid (_GUIDE)
    3: PERMISSION,       # API Method: capability or permissions issue (_GUIDE)
    10: PERMISSION,      # API Permission Denied (_GUIDE)
    **{code: PERMISSION for code in range(200, 300)},  # API Permission (_GUIDE)
    100: REJECTED,       # Invalid parameter (_GUIDE)
    1609005: REJECTED,   # the link could not be scraped for its preview [1]
    1366046: REJECTED,   # the photo is too big [1]
    506: DUPLICATE,      # Duplicate Post: it may be live, so never resent (_GUIDE)
}


def _usage_wait_seconds(response: httpx.Response) -> float | None:
    """estimated_time_to_regain_access (minutes) from X-Business-Use-Case-Usage (_LIMITS)."""
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
    """The outcome of a non-2xx (or error-bodied) Graph API response. `irreversible`: the
    answer is to the call that makes the post public (see the module docstring)."""
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    if not isinstance(error, dict):
        return _without_body(response, irreversible=irreversible)

    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    message = redact.clip(str(error.get("message") or "no message"), 300)
    detail: dict[str, Any] = {"http_status": status, "code": code, "subcode": subcode}
    described = f"{message} (code {code}{f'/{subcode}' if subcode else ''})"
    row = _row(code, subcode, status, transient=error.get("is_transient") is True)
    kind = row.kind_for(irreversible)
    if kind is _DEFER:
        wait = (row.wait or _usage_wait_seconds(response) or retry_after_seconds(response)
                or DEFAULT_THROTTLE_SECONDS)
        return Outcome.defer(f"{row.meaning}: {described}", wait, pause_account=True,
                             pause_platform=row.app_wide, **detail)
    meaning = row.meaning
    if kind is not row.kind:
        meaning += (" in answer to the publishing call, which does not prove the post was not "
                    "made: it may be live")
    return Outcome(kind=kind, reason=f"{meaning}: {described}", detail=detail)


def _row(code: int | None, subcode: int | None, status: int, *, transient: bool) -> Row:
    """Throttles first (they prove nothing was done), then server trouble, then the code."""
    row = ERROR_TABLE.get(code) if code is not None else None
    if subcode == POSTING_TOO_FAST:
        return THROTTLED
    if row is not None and row.kind is _DEFER:
        return row
    if status == 429:
        return THROTTLED
    if transient or status >= 500:   # is_transient overrides the code (_GUIDE, [1])
        return TRANSIENT
    return row or REJECTED


def _without_body(response: httpx.Response, *, irreversible: bool) -> Outcome:
    """An answer without a Meta error body: a bare 429, a proxy's 5xx page, nonsense."""
    status = response.status_code
    if status == 429:
        return Outcome.defer("throttled (HTTP 429)", retry_after_seconds(response)
                             or DEFAULT_THROTTLE_SECONDS, pause_account=True)
    if status >= 500:
        reason = f"platform error HTTP {status} with no error body: {snippet(response)!r}"
        return (Outcome.unknown(reason, http_status=status) if irreversible
                else Outcome.retry(reason, http_status=status))
    return Outcome.failed(f"platform answered HTTP {status} with an unreadable body: "
                          f"{snippet(response)!r}", http_status=status)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def check_meta_token(client: httpx.AsyncClient, root: str,
                           access_token: str) -> Outcome | None:
    """GET {root}/me?fields=id: the token's own node, the cheapest read there is (a Page
    token's /me is the Page; an Instagram User token's, on graph.instagram.com, the IG user).
    None when Meta takes the token; else what its answer maps to (190: REAUTH)."""
    sent = await send(client, "GET", f"{root}/me", irreversible=False,
                      params={"fields": "id"},
                      headers={"Authorization": f"Bearer {access_token}"})
    if isinstance(sent, Outcome):
        return sent
    try:
        body: Any = json.loads(sent.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    if sent.is_success and isinstance(body, dict) and "error" not in body:
        return None
    return classify_meta_error(sent, irreversible=False)

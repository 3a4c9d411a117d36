"""What Facebook and Instagram share: Graph error bodies, token checks, usage headers, paging.

Errors look like ``{"error": {"message", "type", "code", "error_subcode",
"is_transient", "fbtrace_id"}}``; usage headers are JSON percentages.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from publisher.simulator.base import Headers, Request, Response, json_response
from publisher.simulator.faults import GENERIC_FAULTS, META_FAULTS
from publisher.simulator.state import SimState

VERSION = r"/v\d+\.\d+"
"""The Graph API version prefix of every path (``/v25.0`` and so on)."""

PUBLISHING_FAULTS: tuple[str, ...] = (*GENERIC_FAULTS, *META_FAULTS)
"""What a Facebook or Instagram publishing call may draw."""


def meta_error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    transient: bool = False,
    headers: Headers | None = None,
    user_title: str | None = None,
) -> Response:
    """A Graph API error response."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_title is not None:
        error["error_user_title"] = user_title
        error["error_user_msg"] = message
    error["is_transient"] = transient
    error["fbtrace_id"] = secrets.token_urlsafe(8)
    return json_response({"error": error}, status, headers)


def token_error(message: str, subcode: int | None = None) -> Response:
    """A 190 (invalid token) error, with the header Meta sends alongside it."""
    auth = f'OAuth "Facebook Platform" "invalid_token" "{message}"'.encode()
    return meta_error(400, 190, message, subcode=subcode, headers=[(b"www-authenticate", auth)])


def bad_param(message: str) -> Response:
    """A code 100 (invalid parameter) error."""
    return meta_error(400, 100, message)


def unknown_object(request: Request) -> Response:
    """Meta's answer for an object id that does not exist (code 100)."""
    obj = request.match.get("object_id", request.path)
    return bad_param(
        f"Unsupported get request. Object with ID '{obj}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation."
    )


def expired() -> Response:
    """The error for an expired token (190/463)."""
    return token_error("Error validating access token: Session has expired.", 463)


def rate_limited(retry_after: int) -> Response:
    """HTTP 429 with code 4 and ``Retry-After``."""
    return meta_error(
        429,
        4,
        "(#4) Application request limit reached",
        transient=True,
        headers=[(b"retry-after", str(retry_after).encode())],
    )


def token_of(request: Request) -> str:
    """The access token: ``Authorization: Bearer|OAuth`` wins over ``access_token``."""
    token = request.params.get("access_token", "")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        token = value.strip()
    return token


def check_token(token: str) -> Response | None:
    """A 190 error for a missing, revoked (460) or expired (463) token, else None."""
    if not token:
        return token_error("An access token is required to request this resource.")
    if "revoked" in token:
        return token_error(
            "Error validating access token: The session has been invalidated because "
            "the user changed their password or Facebook has changed the session for "
            "security reasons.",
            460,
        )
    if "expired" in token:
        return expired()
    return None


INSTAGRAM_HOST = "/_ig"
"""graph.instagram.com is served under this path prefix, graph.facebook.com at the root
(``publisher.settings.SIMULATOR_INSTAGRAM_GRAPH`` names the same prefix)."""


def on_instagram_host(request: Request) -> bool:
    """Whether the request went to graph.instagram.com (Instagram API with Instagram Login)."""
    return request.path.startswith(INSTAGRAM_HOST + "/")


def authenticate(request: Request) -> Response | None:
    """Check the request's access token the way the Graph API does, and its kind: each host
    takes one kind of token and cannot parse the other (code 190). As real ones do, an
    Instagram Login (Instagram User) token starts with ``IG``; any other is a Facebook one
    (Page or user tokens start with ``EAA``)."""
    token = token_of(request)
    denied = check_token(token)
    if denied is None and token.startswith("IG") != on_instagram_host(request):
        return token_error("Invalid OAuth access token - Cannot parse access token")
    return denied


def me(request: Request) -> Response:
    """``GET /me``: the token's own node (a Page for a Page token, the IG user for an
    Instagram User token), reached only once ``authenticate`` took the token. Its id is made
    from the token: the simulator does not bind tokens to accounts."""
    fields = fields_of(request, ("id", "name"), ("id", "name"), "User")
    if isinstance(fields, Response):
        return fields
    digest = hashlib.sha256(token_of(request).encode()).hexdigest()
    node = {"id": str(10**14 + int(digest[:10], 16)), "name": "Simulated account"}
    return json_response(pick(node, fields))


def graph_time(timestamp: float) -> str:
    """A Graph timestamp: ``2026-01-02T03:04:05+0000``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def unix(value: str) -> float:
    """A Graph time parameter: unix seconds or an ISO-8601 string."""
    try:
        return float(value)
    except ValueError:
        parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def fields_of(
    request: Request, allowed: Sequence[str], default: tuple[str, ...], node: str
) -> tuple[str, ...] | Response:
    """The ``fields`` parameter, or a code 100 error naming an unknown field."""
    raw = request.params.get("fields")
    if not raw:
        return default
    fields = tuple(f.strip() for f in raw.split(",") if f.strip())
    for name in fields:
        if name not in allowed:
            return bad_param(
                f"(#100) Tried accessing nonexisting field ({name}) on node type ({node})"
            )
    return fields


def pick(values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``id`` plus each requested field that has a value."""
    out: dict[str, Any] = {"id": values["id"]}
    out.update((name, values[name]) for name in fields if values.get(name) is not None)
    return out


def page(request: Request, items: Sequence[Any]) -> tuple[Sequence[Any], dict[str, Any]] | Response:
    """One page of ``items`` by ``limit``/``after`` and its ``paging`` object."""
    params = request.params
    try:
        limit = max(1, min(100, int(params.get("limit") or 25)))
        offset = int(params.get("after") or 0)
    except ValueError:
        return bad_param("(#100) Invalid limit or after parameter")
    window = items[offset : offset + limit]
    paging: dict[str, Any] = {
        "cursors": {"before": str(offset), "after": str(offset + len(window))}
    }
    if offset + limit < len(items):
        query = {k: v for k, v in params.items() if k != "access_token"}
        query["after"] = str(offset + limit)
        paging["next"] = f"{request.base_url}{request.path}?{urlencode(query)}"
    return window, paging


def buc_header(kind: str, account: str, pct: int, regain: int) -> tuple[bytes, bytes]:
    """``X-Business-Use-Case-Usage`` for one business object."""
    usage = {
        account: [
            {
                "type": kind,
                "call_count": pct,
                "total_cputime": pct,
                "total_time": pct,
                "estimated_time_to_regain_access": regain,
            }
        ]
    }
    return (b"x-business-use-case-usage", json.dumps(usage).encode())


def app_usage_header(pct: int) -> tuple[bytes, bytes]:
    """``X-App-Usage``: the app's share of its budget, in percent."""
    app = {"call_count": pct, "total_time": pct, "total_cputime": pct}
    return (b"x-app-usage", json.dumps(app).encode())


def decorate(state: SimState, platform: str, kind: str, account: str, response: Response) -> None:
    """Add ``X-App-Usage`` and (for an account) ``X-Business-Use-Case-Usage``, unless the
    response carries its own (a throttle states what is used up)."""
    if not any(k == b"x-app-usage" for k, _ in response.headers):
        response.headers.append(app_usage_header(state.app_usage_percent()))
    if account and not any(k == b"x-business-use-case-usage" for k, _ in response.headers):
        response.headers.append(
            buc_header(kind, account, state.usage_percent(platform, account), 0)
        )


THROTTLES: tuple[tuple[int, int, str], ...] = (
    (4, 403, "(#4) Application request limit reached"),
    (17, 400, "(#17) User request limit reached"),
    (32, 403, "(#32) Page request limit reached"),
    (613, 400, "(#613) Calls to this api have exceeded the rate limit."),
)
"""Meta's throttle codes with the HTTP status each comes with (never 429)."""


def throttled(state: SimState, kind: str, account: str, nth: int) -> Response:
    """The ``meta_throttle`` fault, the ``nth`` drawn: codes 4, 17, 32, 613 in turn. Code 4
    (the app's budget) reads 100 % in ``X-App-Usage``; the others name the business object
    at 100 % in ``X-Business-Use-Case-Usage``, with the minutes until access returns."""
    code, status, message = THROTTLES[nth % len(THROTTLES)]
    if code == 4:
        headers = [app_usage_header(100)]
    else:
        headers = [buc_header(kind, account, 100, state.config.regain_minutes)]
    return meta_error(status, code, message, transient=True, headers=headers)


def error_after_create(nth: int) -> Response:
    """The ``meta_error_after_create`` fault, the ``nth`` drawn: HTTP 400 with code 1 (an
    unknown error) or code 2 (a temporary one), in turn. Only the code says it is not the
    post's fault; nothing says whether the post was made (it was)."""
    if nth % 2 == 0:
        return meta_error(400, 1, "An unknown error occurred", subcode=99)
    return meta_error(
        400, 2, "An unexpected error has occurred. Please retry your request later.",
        transient=True,
    )

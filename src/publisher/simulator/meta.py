"""What Facebook and Instagram share: Graph error bodies, token checks, usage headers, paging.

Errors look like ``{"error": {"message", "type", "code", "error_subcode",
"is_transient", "fbtrace_id"}}``; usage headers are JSON percentages.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from publisher.simulator.base import Headers, Request, Response, json_response
from publisher.simulator.state import SimState

VERSION = r"/v\d+\.\d+"
"""The Graph API version prefix of every path (``/v25.0`` and so on)."""


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


def authenticate(request: Request) -> Response | None:
    """Check the request's access token the way the Graph API does."""
    return check_token(token_of(request))


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


def decorate(state: SimState, platform: str, kind: str, account: str, response: Response) -> None:
    """Add ``X-App-Usage`` and (for an account) ``X-Business-Use-Case-Usage``."""
    pct = state.app_usage_percent()
    app = {"call_count": pct, "total_time": pct, "total_cputime": pct}
    response.headers.append((b"x-app-usage", json.dumps(app).encode()))
    if account and not any(k == b"x-business-use-case-usage" for k, _ in response.headers):
        response.headers.append(
            buc_header(kind, account, state.usage_percent(platform, account), 0)
        )

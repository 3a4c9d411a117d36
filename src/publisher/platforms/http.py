"""Shared HTTP for adapters: send a request, and map transport failures to outcomes.

The line that matters: a failure that provably happened before the request reached the
platform (DNS, connection refused, TLS, pool) is safe to retry; one after the request was
sent (read timeout, reset) leaves the outcome unknown when the call was the irreversible one.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from publisher import redact
from publisher.models import Outcome

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
             httpx.UnsupportedProtocol)
_MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
               httpx.RemoteProtocolError, httpx.CloseError)


async def send(client: httpx.AsyncClient, method: str, url: str, *, irreversible: bool,
               **kwargs: Any) -> httpx.Response | Outcome:
    """The response, or the Outcome a transport failure amounts to."""
    _remember_secrets(kwargs)
    try:
        return await client.request(method, url, **kwargs)
    except _NOT_SENT as exc:
        return Outcome.retry(f"could not reach the platform ({type(exc).__name__}); "
                             "nothing was sent", stage="connect")
    except _MAYBE_SENT as exc:
        reason = f"no answer from the platform ({type(exc).__name__}) after the request was sent"
        if irreversible:
            return Outcome.unknown(reason, stage="publish", error=type(exc).__name__)
        return Outcome.retry(reason, stage="prepare")
    except httpx.HTTPError as exc:
        return Outcome.retry(f"HTTP error talking to the platform: {type(exc).__name__}")


# Form and query fields that carry a secret (OAuth token requests, Instagram's refresh).
_SECRET_FIELDS = ("access_token", "refresh_token", "client_secret", "fb_exchange_token",
                  "input_token")


def _remember_secrets(kwargs: dict[str, Any]) -> None:
    """What this request sends as a credential is masked in whatever the call reports."""
    headers = kwargs.get("headers")
    if headers:
        auth = headers.get("Authorization") or headers.get("authorization")
        if isinstance(auth, str):
            redact.remember(auth.partition(" ")[2] or auth)
    for key in ("data", "params"):
        fields = kwargs.get(key)
        if isinstance(fields, dict):
            for name in _SECRET_FIELDS:
                value = fields.get(name)
                if isinstance(value, str):
                    redact.remember(value)


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The response's JSON object, or None when the body is not a JSON object."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def snippet(response: httpx.Response, limit: int = 120) -> str:
    """The start of a body, for error messages about nonsense answers: the secrets of the
    call masked first (a secret straddling the cut is masked whole), then cut."""
    longest = max(map(len, redact.current()), default=0)
    # Enough beyond the cut for a secret that starts before it, even URL-encoded (3x).
    text = response.content[:limit + 3 * longest].decode("utf-8", "replace")
    return redact.clip(text.replace("\n", " "), limit)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After in seconds (only the delta form; dates are rare in these APIs)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

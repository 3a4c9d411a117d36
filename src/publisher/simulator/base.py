"""The pieces every simulated platform is built from: requests, responses, routes.

A platform (``facebook/handlers.py``, ``instagram/handlers.py``, ...) is one class that
satisfies :class:`Platform`: it lists its routes, checks auth, and renders faults and
"not found" in its own error format. ``app.py`` does the rest (latency, fault draws,
recording is left to the handlers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from publisher.simulator.state import GENERIC_FAULTS

Headers = list[tuple[bytes, bytes]]

JSON_TYPE = b"application/json; charset=UTF-8"


@dataclass(slots=True, kw_only=True)
class Request:
    """One parsed HTTP request: query and body parameters merged into ``params``."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]
    body: bytes = b""
    received: int = 0
    """Bytes of a streamed body (the body itself is counted and dropped, never kept)."""
    match: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    """The fault drawn for this call, for the handlers that act on one themselves."""
    created: str | None = None
    """The id of the post this call created, for a fault answered after creating it."""

    def json(self) -> Any:
        """The body decoded as JSON (``{}`` when empty)."""
        return json.loads(self.body) if self.body.strip() else {}

    @property
    def base_url(self) -> str:
        """``http://host:port`` as the client addressed the simulator."""
        return f"http://{self.headers.get('host', '127.0.0.1')}"

    def bearer(self) -> str:
        """The bearer token of the ``Authorization`` header, or ``""``."""
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""


@dataclass(slots=True, kw_only=True)
class Response:
    """A complete HTTP response."""

    status: int = 200
    body: bytes = b""
    headers: Headers = field(default_factory=list)
    content_type: bytes = JSON_TYPE


@dataclass(slots=True, frozen=True)
class Hang:
    """Send nothing for ``seconds`` (or until the client gives up), then ``then``."""

    seconds: float
    then: Response


@dataclass(slots=True, frozen=True)
class Abort:
    """Start a response, then drop the connection (the client sees a broken read)."""


@dataclass(slots=True, kw_only=True)
class Stream:
    """A response whose ``length`` bytes are produced chunk by chunk, never held whole."""

    status: int = 200
    length: int
    chunks: Iterable[bytes]
    headers: Headers = field(default_factory=list)
    content_type: bytes = b"application/octet-stream"


Outcome = Response | Hang | Abort | Stream
Handler = Callable[[Request], Outcome | None]
Predicate = Callable[[Request], bool]


@dataclass(slots=True, frozen=True)
class Route:
    """``method`` + ``pattern`` (full match on the path) -> ``handler``.

    A handler returns ``None`` to say "not mine", and the next matching route is
    tried (how several Meta platforms can share ``GET /{v}/{object-id}``).
    ``publishing`` routes (or calls, when it is a predicate) get simulated latency, the
    account quota and the fault kinds in ``faults``; other calls draw only from
    ``idle_faults``. A ``streaming`` route's body is counted into ``Request.received``
    and dropped, so uploads of any size cost no memory.
    """

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    platform: Platform
    publishing: bool | Predicate = False
    faults: tuple[str, ...] = GENERIC_FAULTS
    idle_faults: tuple[str, ...] = ()
    streaming: bool = False

    def publishes(self, request: Request) -> bool:
        """Whether this call is a publishing call."""
        return self.publishing if isinstance(self.publishing, bool) else self.publishing(request)

    def fault_kinds(self, request: Request, publishing: bool) -> tuple[str, ...]:
        """The kinds this call may draw (no idle faults for a streaming call without body)."""
        if publishing:
            return self.faults
        return self.idle_faults if request.received or not self.streaming else ()


class Platform(Protocol):
    """One simulated platform."""

    name: str

    def routes(self) -> Sequence[Route]:
        """Every route this platform serves."""
        ...

    def authenticate(self, request: Request) -> Response | None:
        """An error response when the request's credentials are refused, else None."""
        ...

    def account_of(self, request: Request) -> str:
        """The account (page, user, channel) a request acts for, or ``""``."""
        ...

    def fault(self, kind: str, request: Request) -> Response:
        """The platform's response for an HTTP-shaped fault kind."""
        ...

    def not_found(self, request: Request) -> Response:
        """The platform's response when no route handled a request."""
        ...

    def decorate(self, request: Request, response: Response) -> None:
        """Add per-platform headers (usage, quotas) to any response."""
        ...


def json_response(payload: Any, status: int = 200, headers: Headers | None = None) -> Response:
    """A JSON response."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status=status, body=body, headers=headers if headers is not None else [])


def route(
    platform: Platform,
    method: str,
    pattern: str,
    handler: Handler,
    *,
    publishing: bool | Predicate = False,
    faults: tuple[str, ...] = GENERIC_FAULTS,
    idle_faults: tuple[str, ...] = (),
    streaming: bool = False,
) -> Route:
    """Build a :class:`Route` from a regex string."""
    return Route(
        method, re.compile(pattern), handler, platform, publishing, faults, idle_faults, streaming
    )


def json_body(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        decoded = request.json()
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def base64_number(number: int) -> str:
    """``number`` in URL-safe base64 digits (how Instagram shortcodes are made)."""
    out = ""
    while number:
        number, digit = divmod(number, 64)
        out = _ID_CHARS[digit] + out
    return out or "A"


def flag(value: str | None, default: bool) -> bool:
    """Parse a boolean parameter the way the Graph API does (true/false/1/0)."""
    if value is None or value == "":
        return default
    return value.strip().lower() in ("true", "1", "yes")

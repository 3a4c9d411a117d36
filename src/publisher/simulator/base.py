"""The pieces every simulated platform is built from: requests, responses, routes.

A platform module (``facebook.py``, later ``instagram.py``, ...) is one class that
satisfies :class:`Platform`: it lists its routes, checks auth, and renders faults and
"not found" in its own error format. ``app.py`` does the rest (latency, fault draws,
recording is left to the handlers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    match: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body decoded as JSON (``{}`` when empty)."""
        return json.loads(self.body) if self.body.strip() else {}


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


Outcome = Response | Hang | Abort
Handler = Callable[[Request], Response | None]


@dataclass(slots=True, frozen=True)
class Route:
    """``method`` + ``pattern`` (full match on the path) -> ``handler``.

    A handler returns ``None`` to say "not mine", and the next matching route is
    tried (how several Meta platforms can share ``GET /{v}/{object-id}``).
    ``publishing`` routes get simulated latency, quotas and faults.
    """

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    platform: Platform
    publishing: bool = False


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
    platform: Platform, method: str, pattern: str, handler: Handler, *, publishing: bool = False
) -> Route:
    """Build a :class:`Route` from a regex string."""
    return Route(method, re.compile(pattern), handler, platform, publishing)


def flag(value: str | None, default: bool) -> bool:
    """Parse a boolean parameter the way the Graph API does (true/false/1/0)."""
    if value is None or value == "":
        return default
    return value.strip().lower() in ("true", "1", "yes")

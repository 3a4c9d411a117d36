"""The simulator as a plain ASGI application: parse, route, simulate, send.

A publishing call goes: latency -> auth -> count the call -> draw a fault -> handler.
Faults that happen "before" the platform acts (errors, ``timeout_before``, ``reset``)
record nothing; ``timeout_after`` and ``malformed`` let the handler record the post and
then hang or garble the answer, which is what makes an outcome ambiguous for a client.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from publisher.simulator.base import (
    Abort,
    Hang,
    Outcome,
    Platform,
    Request,
    Response,
    Route,
    json_response,
)
from publisher.simulator.control import PREFIX, Control
from publisher.simulator.facebook import Facebook
from publisher.simulator.state import SimConfig, SimState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PLATFORMS: dict[str, Callable[[SimState], Platform]] = {"facebook": Facebook}
"""Every simulated platform by name; a new platform is one module and one line here."""

MALFORMED_BODY = b"<html>oops</html>"
_DROPPED = contextvars.ContextVar("simulator_dropped", default=False)


class QuietDrops(logging.Filter):
    """Drop the server's complaint about a connection the simulator dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record except those logged for a deliberate drop."""
        return not _DROPPED.get()


def parse_params(query: bytes, content_type: str, body: bytes) -> dict[str, str]:
    """Query string and form or JSON body, merged (the body wins)."""
    params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    if not body:
        return params
    kind = content_type.partition(";")[0].strip().lower()
    if kind == "application/json":
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("JSON body must be an object")
        params.update({k: _as_param(v) for k, v in decoded.items()})
    elif kind in ("application/x-www-form-urlencoded", ""):
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    return params


def _as_param(value: Any) -> str:
    """A JSON value as the string a form would have carried."""
    return value if isinstance(value, str) else json.dumps(value)


async def read_body(receive: Receive) -> bytes:
    """The whole request body."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class SimulatorApp:
    """The ASGI application serving every platform and the ``/_sim/`` endpoints."""

    def __init__(
        self, config: SimConfig | None = None, *, platforms: Sequence[str] | None = None
    ) -> None:
        """Serve ``platforms`` (default: all) with ``config``."""
        self.state = SimState(config or SimConfig())
        names = list(platforms) if platforms is not None else list(PLATFORMS)
        self.routes: list[Route] = []
        for name in names:
            self.routes.extend(PLATFORMS[name](self.state).routes())
        self.control = Control(self.state, names)

    def close(self) -> None:
        """End every hanging request now (called before the server stops)."""
        self.state.closing.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        request, ok = _request(scope, body)
        if request.path.startswith(PREFIX):
            outcome: Outcome = (
                self.control.handle(request)
                if ok
                else json_response({"error": "unreadable body"}, 400)
            )
        else:
            outcome = await self.dispatch(request, body_ok=ok)
        await self._send(outcome, receive, send)

    async def dispatch(self, request: Request, *, body_ok: bool = True) -> Outcome:
        """Route a platform request and simulate the platform's behaviour."""
        matches = [
            (r, m)
            for r in self.routes
            if r.method == request.method and (m := r.pattern.fullmatch(request.path))
        ]
        if not matches:
            message = f"no simulated route for {request.method} {request.path}"
            return json_response({"error": {"message": message, "code": 404}}, 404)
        first, match = matches[0]
        platform = first.platform
        request.match = match.groupdict()
        if first.publishing and self.state.config.latency > 0:
            await asyncio.sleep(self.state.latency())
        denied = platform.authenticate(request)
        if denied is not None:
            return denied
        account = platform.account_of(request)
        self.state.count_call(platform.name, account)
        kind: str | None = "bad_input"
        if body_ok:
            kind = self.state.draw_fault(platform.name, account) if first.publishing else None
        early = self._early_fault(kind, platform, request)
        if early is not None:
            return early
        response = self._handle(matches, request)
        platform.decorate(request, response)
        if kind == "timeout_after":
            return Hang(self.state.config.hang_seconds, response)
        if kind == "malformed":
            return Response(body=MALFORMED_BODY, content_type=b"text/html; charset=utf-8")
        return response

    def _early_fault(
        self, kind: str | None, platform: Platform, request: Request
    ) -> Outcome | None:
        """The answer for a fault that stops the call before the platform acts."""
        if kind is None or kind in ("timeout_after", "malformed"):
            return None
        if kind == "reset":
            return Abort()
        if kind == "timeout_before":
            late = platform.fault("transient", request)
            platform.decorate(request, late)
            return Hang(self.state.config.hang_seconds, late)
        response = platform.fault(kind, request)
        platform.decorate(request, response)
        return response

    @staticmethod
    def _handle(matches: list[tuple[Route, Any]], request: Request) -> Response:
        """The first handler that claims the request, else the platform's not-found."""
        for route, match in matches:
            request.match = match.groupdict()
            response = route.handler(request)
            if response is not None:
                return response
        return matches[-1][0].platform.not_found(request)

    async def _send(self, outcome: Outcome, receive: Receive, send: Send) -> None:
        """Send a response, hang first, or drop the connection."""
        if isinstance(outcome, Hang):
            outcome = outcome.then if await self._hang(outcome.seconds, receive) else Abort()
        if isinstance(outcome, Abort):
            _DROPPED.set(True)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return
        headers = [
            (b"content-type", outcome.content_type),
            (b"content-length", str(len(outcome.body)).encode()),
            *outcome.headers,
        ]
        await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
        await send({"type": "http.response.body", "body": outcome.body})

    async def _hang(self, seconds: float, receive: Receive) -> bool:
        """Wait ``seconds``; False if the client left or the server is closing first."""
        waits = {
            asyncio.ensure_future(_disconnected(receive)),
            asyncio.ensure_future(self.state.closing.wait()),
        }
        done, pending = await asyncio.wait(
            waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return not done


async def _disconnected(receive: Receive) -> None:
    """Return once the client has closed the connection."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge ASGI lifespan startup and shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _request(scope: Scope, body: bytes) -> tuple[Request, bool]:
    """Build a :class:`Request`; the flag is False when the body could not be parsed."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    ok = True
    try:
        params = parse_params(scope["query_string"], headers.get("content-type", ""), body)
    except (ValueError, UnicodeDecodeError):
        params = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        ok = False
    request = Request(
        method=scope["method"], path=scope["path"], headers=headers, params=params, body=body
    )
    return request, ok


__all__ = ["PLATFORMS", "QuietDrops", "SimulatorApp", "parse_params"]

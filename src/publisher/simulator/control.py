"""The ``/_sim/`` control endpoints: records, stats, reset, runtime configuration.

GET  /_sim/health   {"status": "ok", "platforms": [...], "fault_kinds": [...]}
GET  /_sim/posts    [PostRecord.as_json(), ...]  (optional ?platform=&account=)
GET  /_sim/stats    {"accepted", "duplicates", "duplicates_refused" (re-sends LinkedIn
                     refused as duplicates), "by_platform", "faults_injected", "calls",
                     "token_refreshes": {token: refresh calls}}
POST /_sim/reset    {"status": "reset"}
GET  /_sim/config   SimConfig.as_json()
POST /_sim/config   JSON with any SimConfig keys -> the new SimConfig.as_json()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from publisher.simulator.base import Request, Response, json_response
from publisher.simulator.state import FAULT_KINDS, SimState

PREFIX = "/_sim/"


class Control:
    """Answers the ``/_sim/`` endpoints from a :class:`SimState`."""

    def __init__(self, state: SimState, platforms: Sequence[str]) -> None:
        """Serve ``state``; ``platforms`` are the names reported by health."""
        self.state = state
        self.platforms = list(platforms)
        self._table: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "/_sim/health"): self.health,
            ("GET", "/_sim/posts"): self.posts,
            ("GET", "/_sim/stats"): self.stats,
            ("POST", "/_sim/reset"): self.reset,
            ("GET", "/_sim/config"): self.get_config,
            ("POST", "/_sim/config"): self.set_config,
        }

    def handle(self, request: Request) -> Response:
        """Dispatch one control request."""
        handler = self._table.get((request.method, request.path.rstrip("/")))
        if handler is None:
            return json_response({"error": f"no control endpoint {request.path}"}, 404)
        return handler(request)

    def health(self, request: Request) -> Response:
        """Liveness, the served platforms and the fault kinds."""
        return json_response(
            {"status": "ok", "platforms": self.platforms, "fault_kinds": list(FAULT_KINDS)}
        )

    def posts(self, request: Request) -> Response:
        """Every accepted post, oldest first, optionally filtered."""
        platform = request.params.get("platform")
        account = request.params.get("account")
        return json_response(
            [
                rec.as_json()
                for rec in self.state.records
                if (platform is None or rec.platform == platform)
                and (account is None or rec.account == account)
            ]
        )

    def stats(self, request: Request) -> Response:
        """Accepted posts, duplicates and counters."""
        return json_response(self.state.stats())

    def reset(self, request: Request) -> Response:
        """Forget everything but the configuration."""
        self.state.reset()
        return json_response({"status": "reset"})

    def get_config(self, request: Request) -> Response:
        """The current configuration."""
        return json_response(self.state.config.as_json())

    def set_config(self, request: Request) -> Response:
        """Apply a partial configuration; 400 with a reason if it is invalid."""
        try:
            changes = request.json()
            if not isinstance(changes, dict):
                raise ValueError("config must be a JSON object")
            config = self.state.config.updated(changes)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        self.state.configure(config)
        return json_response(config.as_json())

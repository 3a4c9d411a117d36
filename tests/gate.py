"""begin_sending's stand-in for adapter tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Gate:
    """Stands in for begin_sending: counts the calls, keeps what each stamp carried
    (`states`) and what had been sent before each (`sent_before`: `seen()` at that moment,
    e.g. the requests so far); answers `allow` (False: the claim was lost)."""

    def __init__(self, seen: Callable[[], list[Any]]) -> None:
        self.allow = True
        self.calls = 0
        self.states: list[Mapping[str, Any] | None] = []
        self.sent_before: list[list[Any]] = []
        self._seen = seen

    async def __call__(self, state: Mapping[str, Any] | None = None) -> bool:
        self.calls += 1
        self.states.append(state)
        self.sent_before.append(self._seen())
        return self.allow

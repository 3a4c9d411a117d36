"""The one plug-in point of the store: call a contract function by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Transport(Protocol):
    """Reaches the database. `call` runs one contract function and returns its value,
    json decoded; it raises StoreError when the database cannot be reached."""

    async def call(self, function: str, params: Mapping[str, Any]) -> Any: ...

    async def close(self) -> None: ...

"""Small helpers shared by the simulator tests."""

from __future__ import annotations

from typing import Any

import httpx


async def configure(client: httpx.AsyncClient, **changes: Any) -> None:
    """Change the simulator's configuration."""
    response = await client.post("/_sim/config", json=changes)
    assert response.status_code == 200, response.text


async def posts(client: httpx.AsyncClient, platform: str | None = None) -> list[dict[str, Any]]:
    """The posts the simulator recorded (for one platform)."""
    params = {"platform": platform} if platform else {}
    return list((await client.get("/_sim/posts", params=params)).json())


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    """The simulator's counters."""
    return dict((await client.get("/_sim/stats")).json())


def meta_error(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a Meta error body, checked for its shape."""
    error = response.json()["error"]
    assert error["type"] == "OAuthException"
    assert isinstance(error["fbtrace_id"], str)
    assert isinstance(error["is_transient"], bool)
    return dict(error)

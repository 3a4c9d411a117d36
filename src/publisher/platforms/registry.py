"""Which adapter serves which platform."""

from __future__ import annotations

from publisher.platforms.base import PlatformAdapter
from publisher.platforms.facebook import FacebookAdapter


def build_adapters() -> dict[str, PlatformAdapter]:
    adapters: list[PlatformAdapter] = [FacebookAdapter()]
    return {adapter.platform: adapter for adapter in adapters}

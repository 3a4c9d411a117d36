"""Which adapter serves which platform."""

from __future__ import annotations

from publisher.platforms.base import PlatformAdapter
from publisher.platforms.facebook import FacebookAdapter
from publisher.platforms.linkedin import LinkedInAdapter


def build_adapters() -> dict[str, PlatformAdapter]:
    adapters: list[PlatformAdapter] = [FacebookAdapter(), LinkedInAdapter()]
    return {adapter.platform: adapter for adapter in adapters}

"""Which adapter serves which platform."""

from __future__ import annotations

from publisher.platforms.base import PlatformAdapter
from publisher.platforms.facebook.adapter import FacebookAdapter
from publisher.platforms.instagram.adapter import InstagramAdapter
from publisher.platforms.linkedin.adapter import LinkedInAdapter
from publisher.platforms.youtube.adapter import YouTubeAdapter


def build_adapters() -> dict[str, PlatformAdapter]:
    adapters: list[PlatformAdapter] = [FacebookAdapter(), InstagramAdapter(), LinkedInAdapter(),
                                       YouTubeAdapter()]
    return {adapter.platform: adapter for adapter in adapters}

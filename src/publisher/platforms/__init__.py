"""One adapter per platform, each turning the platform's answers into an Outcome."""

from __future__ import annotations

from publisher.platforms.base import PlatformAdapter, PublishContext
from publisher.platforms.registry import build_adapters

__all__ = ["PlatformAdapter", "PublishContext", "build_adapters"]

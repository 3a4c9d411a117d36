"""The simulator's memory: configuration, accepted posts, counters and fault draws.

Everything lives in one process and is lost on exit. Duplicate detection is O(1): a
dict keyed by (platform, account, message, link).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from publisher.simulator.faults import (
    AFTER_CREATE_FAULTS,
    DEFAULT_FAULTS,
    FAULT_HELP,
    FAULT_KINDS,
    GENERIC_FAULTS,
    META_FAULTS,
    parse_faults,
)

_OPTIONAL = ("seed", "account_quota", "youtube_channel_uploads")
_INTS = (
    "retry_after",
    "regain_minutes",
    "seed",
    "account_quota",
    "instagram_quota",
    "youtube_daily_uploads",
    "youtube_channel_uploads",
    "media_default_size",
)
_NUMBERS = (
    "latency",
    "fault_rate",
    "hang_seconds",
    "video_processing_seconds",
    "instagram_container_ttl",
    "youtube_session_ttl",
)
_NON_NEGATIVE = (
    "video_processing_seconds",
    "instagram_container_ttl",
    "youtube_session_ttl",
    "instagram_quota",
    "youtube_daily_uploads",
    "youtube_channel_uploads",
    "media_default_size",
)

USAGE_BUDGET = 4800
"""Calls per account that read as 100 % in usage headers when no quota is set."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """How the simulator behaves. Change it at runtime with ``POST /_sim/config``."""

    latency: float = 0.0
    """Seconds added to every publishing call (with +/-10 % jitter)."""
    fault_rate: float = 0.0
    """Probability that a publishing call answers with a fault."""
    faults: tuple[str, ...] = DEFAULT_FAULTS
    """Kinds to draw from, uniformly."""
    seed: int | None = None
    """Seed for the fault and jitter draws, so runs repeat."""
    hang_seconds: float = 300.0
    """How long the timeout faults hang (or until the client disconnects)."""
    retry_after: int = 2
    """Seconds in ``Retry-After`` for ``rate_limit_429``."""
    regain_minutes: int = 1
    """``estimated_time_to_regain_access`` for ``throttle``."""
    account_quota: int | None = None
    """Publishing calls per account before every further call is throttled."""
    video_processing_seconds: float = 0.0
    """How long an Instagram video container stays ``IN_PROGRESS`` (and a Facebook video
    ``processing``)."""
    instagram_container_ttl: float = 86400.0
    """Seconds before an unpublished Instagram container is ``EXPIRED``."""
    instagram_quota: int = 100
    """Instagram posts per account per rolling 24 h (``content_publishing_limit``)."""
    linkedin_sunset_before: str = "202401"
    """``LinkedIn-Version`` values older than this (YYYYMM) are sunset: HTTP 426."""
    linkedin_refuse_duplicates: bool = True
    """Refuse a post whose commentary and content repeat a live post of the same author
    with 422 "Content is a duplicate of urn:li:share:N", as LinkedIn does."""
    youtube_daily_uploads: int = 100
    """``videos.insert`` calls per channel per Pacific day before ``quotaExceeded``."""
    youtube_channel_uploads: int | None = None
    """Completed uploads per channel per Pacific day before ``uploadLimitExceeded``."""
    youtube_session_ttl: float = 7 * 86400.0
    """Seconds a resumable upload session lives; after that its URI answers 404."""
    media_default_size: int = 1_048_576
    """Bytes the media host serves for ``/_media/{name}`` without ``size``."""

    def __post_init__(self) -> None:
        """Reject values that make no sense."""
        self._check_types()
        if self.latency < 0 or self.hang_seconds < 0:
            raise ValueError("latency and hang_seconds must be >= 0")
        for name in _NON_NEGATIVE:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if not (len(self.linkedin_sunset_before) == 6 and self.linkedin_sunset_before.isdigit()):
            raise ValueError("linkedin_sunset_before must be YYYYMM")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        unknown = [k for k in self.faults if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
        if self.account_quota is not None and self.account_quota < 0:
            raise ValueError("account_quota must be >= 0")

    def _check_types(self) -> None:
        """Reject values of the wrong type (as JSON sent to ``/_sim/config`` may have)."""
        for name in _NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number")
        for name in _INTS:
            value = getattr(self, name)
            if type(value) is not int and not (value is None and name in _OPTIONAL):
                raise TypeError(f"{name} must be an integer")
        if not isinstance(self.linkedin_sunset_before, str):
            raise TypeError("linkedin_sunset_before must be a string")
        if not isinstance(self.linkedin_refuse_duplicates, bool):
            raise TypeError("linkedin_refuse_duplicates must be true or false")
        if not isinstance(self.faults, tuple):
            raise TypeError("faults must be a tuple of kind names")

    def updated(self, changes: dict[str, Any]) -> SimConfig:
        """A copy with ``changes`` applied (as sent to ``/_sim/config``)."""
        known = set(self.__dataclass_fields__)
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        values = dict(changes)
        if "faults" in values:
            values["faults"] = parse_faults(values["faults"])
        return replace(self, **values)

    def as_json(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict."""
        data = asdict(self)
        data["faults"] = list(self.faults)
        return data


DedupKey = tuple[str, str, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class PostRecord:
    """One post the simulator accepted (made public)."""

    platform: str
    account: str
    post_id: str
    message: str | None
    link: str | None
    media: tuple[str, ...]
    accepted_at: float
    title: str | None = None
    description: str | None = None

    @property
    def dedup_key(self) -> DedupKey:
        """Posts with the same key accepted twice are duplicates."""
        return (self.platform, self.account, self.message, self.link, self.description)

    def as_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (``accepted_at`` as ISO-8601 UTC)."""
        return {
            "platform": self.platform,
            "account": self.account,
            "post_id": self.post_id,
            "message": self.message,
            "link": self.link,
            "media": list(self.media),
            "accepted_at": datetime.fromtimestamp(self.accepted_at, UTC).isoformat(),
        } | {
            name: value
            for name, value in (("title", self.title), ("description", self.description))
            if value is not None
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaObject:
    """An uploaded but unpublished media item (a Facebook unpublished photo, ...)."""

    platform: str
    account: str
    object_id: str
    url: str


@dataclass(slots=True)
class SimState:
    """All mutable simulator state, shared by every platform module."""

    config: SimConfig = field(default_factory=SimConfig)
    records: list[PostRecord] = field(default_factory=list)
    by_id: dict[str, PostRecord] = field(default_factory=dict)
    by_account: dict[tuple[str, str], list[PostRecord]] = field(default_factory=dict)
    seen: dict[DedupKey, int] = field(default_factory=dict)
    duplicates: int = 0
    by_platform: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    total_calls: int = 0
    media: dict[str, MediaObject] = field(default_factory=dict)
    token_refreshes: Counter[str] = field(default_factory=Counter)
    duplicates_refused: int = 0
    """Posts refused because they repeated a live one (LinkedIn's duplicate rule)."""
    expired_tokens: set[str] = field(default_factory=set)
    """Tokens the ``upload_token_expired`` fault expired: refused from then on."""
    on_reset: list[Callable[[], None]] = field(default_factory=list)
    """Platform modules' own stores, cleared with everything else by :meth:`reset`."""
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _fault_rng: random.Random = field(default_factory=random.Random)
    _jitter_rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        """Seed the random sources from the configuration."""
        self._reseed()

    def _reseed(self) -> None:
        self._fault_rng.seed(self.config.seed)
        self._jitter_rng.seed(None if self.config.seed is None else self.config.seed + 1)

    def configure(self, config: SimConfig) -> None:
        """Switch to ``config``; a new seed restarts the random sequences."""
        reseed = config.seed != self.config.seed
        self.config = config
        if reseed:
            self._reseed()

    def reset(self) -> None:
        """Forget every post, object and counter; keep the config, restart the seed."""
        self.records.clear()
        self.by_id.clear()
        self.by_account.clear()
        self.seen.clear()
        self.duplicates = 0
        self.by_platform.clear()
        self.faults_injected.clear()
        self.calls.clear()
        self.total_calls = 0
        self.media.clear()
        self.token_refreshes.clear()
        self.duplicates_refused = 0
        self.expired_tokens.clear()
        for clear in self.on_reset:
            clear()
        self._reseed()

    def new_id(self) -> str:
        """A fresh numeric object id, unique within this process."""
        return str(10**15 + next(self._ids))

    def record(
        self,
        *,
        platform: str,
        account: str,
        post_id: str,
        message: str | None,
        link: str | None = None,
        media: tuple[str, ...] = (),
        title: str | None = None,
        description: str | None = None,
    ) -> PostRecord:
        """Record an accepted post and count it if it repeats an earlier one."""
        rec = PostRecord(
            platform=platform,
            account=account,
            post_id=post_id,
            message=message,
            link=link,
            media=media,
            accepted_at=time.time(),
            title=title,
            description=description,
        )
        self.records.append(rec)
        self.by_id[post_id] = rec
        self.by_account.setdefault((platform, account), []).append(rec)
        self.by_platform[platform] += 1
        count = self.seen.get(rec.dedup_key, 0)
        if count:
            self.duplicates += 1
        self.seen[rec.dedup_key] = count + 1
        return rec

    def count_call(self, platform: str, account: str) -> int:
        """Count one call for ``account``; return its running total."""
        self.total_calls += 1
        key = (platform, account)
        self.calls[key] += 1
        return self.calls[key]

    def usage_percent(self, platform: str, account: str) -> int:
        """An account's call usage as a percentage of its quota (capped at 100)."""
        budget = self.config.account_quota or USAGE_BUDGET
        return min(100, self.calls[(platform, account)] * 100 // budget)

    def app_usage_percent(self) -> int:
        """All calls as a percentage of an app-wide budget (capped at 100)."""
        budget = (self.config.account_quota or USAGE_BUDGET) * 10
        return min(100, self.total_calls * 100 // budget)

    def draw_fault(
        self,
        platform: str,
        account: str,
        kinds: Sequence[str] = GENERIC_FAULTS,
        *,
        publishing: bool = True,
    ) -> str | None:
        """The fault for this call, or None: quota first (publishing calls), then chance.

        Only the configured kinds that are also in ``kinds`` (what this call supports)
        are drawn; when there are none, nothing is drawn at all.
        """
        quota = self.config.account_quota
        if publishing and quota is not None and self.calls[(platform, account)] > quota:
            kind: str | None = "throttle"
        else:
            kind = self._chance_fault(kinds)
        if kind is not None:
            self.faults_injected[kind] += 1
        return kind

    def _chance_fault(self, kinds: Sequence[str]) -> str | None:
        cfg = self.config
        choices = [k for k in cfg.faults if k in kinds]
        if cfg.fault_rate <= 0 or not choices:
            return None
        if self._fault_rng.random() >= cfg.fault_rate:
            return None
        return self._fault_rng.choice(choices)

    def refreshed(self, token: str) -> int:
        """Count one refresh call for ``token``; return its running total."""
        self.token_refreshes[token] += 1
        return self.token_refreshes[token]

    def latency(self) -> float:
        """Seconds to wait before answering a publishing call."""
        base = self.config.latency
        return base * self._jitter_rng.uniform(0.9, 1.1) if base > 0 else 0.0

    def stats(self) -> dict[str, Any]:
        """Counts for ``GET /_sim/stats``."""
        return {
            "accepted": len(self.records),
            "duplicates": self.duplicates,
            "duplicates_refused": self.duplicates_refused,
            "by_platform": dict(self.by_platform),
            "faults_injected": dict(self.faults_injected),
            "calls": self.total_calls,
            "token_refreshes": dict(self.token_refreshes),
        }


__all__ = [
    "AFTER_CREATE_FAULTS",
    "DEFAULT_FAULTS",
    "FAULT_HELP",
    "FAULT_KINDS",
    "GENERIC_FAULTS",
    "META_FAULTS",
    "MediaObject",
    "PostRecord",
    "SimConfig",
    "SimState",
    "parse_faults",
]

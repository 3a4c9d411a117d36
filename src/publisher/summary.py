"""The run summary: counts by outcome and platform, rate, success rate, lateness."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LATENESS_SAMPLE = 10_000  # lateness values kept for the percentiles (memory stays bounded)


@dataclass
class Lateness:
    """Seconds from published posts' scheduled_at to the moment their outcome was decided.

    count and max are exact; p50 and p95 are exact up to LATENESS_SAMPLE posts and come
    from a uniform sample of that size beyond (reservoir sampling), so a run that publishes
    a million posts holds 10,000 floats. Percentiles interpolate as Postgres's
    percentile_cont does, so they compare with `publisher status`.
    """

    count: int = 0
    max: float | None = None
    sample: list[float] = field(default_factory=list)
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def add(self, seconds: float) -> None:
        self.count += 1
        if self.max is None or seconds > self.max:
            self.max = seconds
        if len(self.sample) < LATENESS_SAMPLE:
            self.sample.append(seconds)
            return
        slot = self._random.randrange(self.count)  # keeps each value with equal chance
        if slot < LATENESS_SAMPLE:
            self.sample[slot] = seconds

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.sample)
        return {"count": self.count, "p50": _rounded(percentile(ordered, 0.5)),
                "p95": _rounded(percentile(ordered, 0.95)), "max": _rounded(self.max)}


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """percentile_cont over sorted values: linear between the two nearest ranks."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class RunSummary:
    worker_id: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_clock: float = field(default_factory=time.monotonic)
    housekeeping: dict[str, int] = field(default_factory=dict)
    claimed: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_platform: dict[str, Counter[str]] = field(default_factory=dict)
    lost_claims: int = 0
    unwritten: int = 0
    database_failed: bool = False
    stopped_because: str = ""
    lateness: Lateness = field(default_factory=Lateness)
    clock: Callable[[], float] = field(default=time.time, repr=False)  # wall clock, seconds

    @property
    def failed_run(self) -> bool:
        """The run could not do its work: the process should exit non-zero."""
        return self.database_failed or self.unwritten > 0

    def count(self, platform: str, status: str, scheduled_at: datetime | None = None) -> None:
        """One post's outcome, as it is decided; a published post's lateness is measured
        from scheduled_at (its due time) to now."""
        if status == "published" and scheduled_at is not None:
            if scheduled_at.tzinfo is None:
                scheduled_at = scheduled_at.replace(tzinfo=UTC)
            self.lateness.add(self.clock() - scheduled_at.timestamp())
        self.by_status[status] += 1
        counts = self.by_platform.get(platform)  # not setdefault: a Counter per call, per post
        if counts is None:
            counts = self.by_platform[platform] = Counter()
        counts[status] += 1

    @property
    def finished(self) -> int:
        return sum(self.by_status.values())

    def as_dict(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started_clock, 1e-9)
        published = self.by_status.get("published", 0)
        return {
            "worker_id": self.worker_id,
            "started_at": self.started_at.isoformat(),
            "wall_seconds": round(elapsed, 3),
            "claimed": self.claimed,
            "finished": self.finished,
            "by_status": dict(self.by_status),
            "by_platform": {p: dict(c) for p, c in sorted(self.by_platform.items())},
            "housekeeping": self.housekeeping,
            "posts_per_minute": round(self.finished / elapsed * 60, 1),
            "success_rate": round(published / self.finished, 4) if self.finished else None,
            "lateness_seconds": self.lateness.as_dict(),
            "lost_claims": self.lost_claims,
            "unwritten_outcomes": self.unwritten,
            "database_failed": self.database_failed,
            "stopped_because": self.stopped_because,
        }

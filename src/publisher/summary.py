"""The run summary: counts by outcome and platform, rate, success rate."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


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

    @property
    def failed_run(self) -> bool:
        """The run could not do its work: the process should exit non-zero."""
        return self.database_failed or self.unwritten > 0

    def count(self, platform: str, status: str) -> None:
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
            "lost_claims": self.lost_claims,
            "unwritten_outcomes": self.unwritten,
            "database_failed": self.database_failed,
            "stopped_because": self.stopped_because,
        }

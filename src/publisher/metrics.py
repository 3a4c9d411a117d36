"""Prometheus metrics of `publisher worker` (METRICS_PORT; off by default).

The run calls a few hooks on a `Metrics`: this base class does nothing, so with metrics off
(every `publisher run`, and the worker unless METRICS_PORT is set) a hook costs one empty
call. `PrometheusMetrics` keeps the metrics on a registry of its own, never
prometheus_client's global one, so several workers in one process (tests, benchmarks) never
collide; prometheus_client is imported only when metrics are on, keeping it out of the
start-up of every cron run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from publisher.errors import ConfigError
from publisher.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.metrics import MetricWrapperBase

_Metric = TypeVar("_Metric", bound="MetricWrapperBase")

log = logging.getLogger("publisher.metrics")

# A claim is one statement; a publish is 1 to 5 platform calls (a YouTube upload, minutes).
CLAIM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PUBLISH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Seconds after the due time: within a second (worker), a minute (cron), an hour, a day.
LATENESS_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
                    4 * 3600.0, 24 * 3600.0)


class Metrics:
    """The run's metric hooks. This base is metrics off: every hook does nothing."""

    def claimed(self, seconds: float, posts: Mapping[str, int]) -> None:
        """A claim statement returned after `seconds` with this many posts per platform."""

    def published(self, platform: str, seconds: float) -> None:
        """One publish through the platform's adapter (in its slot) took `seconds`."""

    def recorded(self, platform: str, outcome: str, status: str,
                 scheduled_at: datetime | None) -> None:
        """A post's outcome was handed in for writing; scheduled_at only for a post just
        published now (not one a review found published earlier), for its lateness."""

    def watch_in_flight(self, in_flight: Mapping[str, int], platforms: Iterable[str]) -> None:
        """Report in_flight (posts held per platform; read at scrape time, never updated
        per post) for these platforms."""

    def run_finished(self) -> None:
        """One run of the worker's loop ended."""


NO_METRICS = Metrics()


class PrometheusMetrics(Metrics):
    """The worker's metrics, on their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.registry: CollectorRegistry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)  # CPU and memory of the worker: sizing
        self._posts = Counter("publisher_posts", "Post outcomes handed in for writing, by "
                              "platform, outcome kind and the post's new status",
                              ("platform", "outcome", "status"), registry=registry)
        self._claimed = Counter("publisher_claimed_posts", "Posts claimed, by platform",
                                ("platform",), registry=registry)
        self._in_flight = Gauge("publisher_in_flight", "Posts claimed and not yet finished, "
                                "by platform", ("platform",), registry=registry)
        self._claim_seconds = Histogram("publisher_claim_seconds", "Duration of one claim "
                                        "statement", buckets=CLAIM_BUCKETS, registry=registry)
        self._publish_seconds = Histogram(
            "publisher_publish_seconds", "Duration of one publish through the platform's "
            "adapter (its calls and the sending stamp), by platform", ("platform",),
            buckets=PUBLISH_BUCKETS, registry=registry)
        self._lateness = Histogram(
            "publisher_lateness_seconds", "Published posts: seconds from the due time "
            "(scheduled_at) to the platform's answer, by platform", ("platform",),
            buckets=LATENESS_BUCKETS, registry=registry)
        self._runs = Counter("publisher_runs", "Runs of the worker's loop finished",
                             registry=registry)
        self._last_claim = Gauge("publisher_last_claim_timestamp", "Unix time of the last "
                                 "claim statement that succeeded (0: none yet)",
                                 registry=registry)
        # .labels() looks its child up under a lock: each child is looked up once.
        self._post_children: dict[tuple[str, str, str], Counter] = {}
        self._claimed_children: dict[str, Counter] = {}
        self._publish_children: dict[str, Histogram] = {}
        self._lateness_children: dict[str, Histogram] = {}

    def claimed(self, seconds: float, posts: Mapping[str, int]) -> None:
        self._claim_seconds.observe(seconds)
        self._last_claim.set_to_current_time()
        for platform, count in posts.items():
            _child(self._claimed_children, self._claimed, platform).inc(count)

    def published(self, platform: str, seconds: float) -> None:
        _child(self._publish_children, self._publish_seconds, platform).observe(seconds)

    def recorded(self, platform: str, outcome: str, status: str,
                 scheduled_at: datetime | None) -> None:
        key = (platform, outcome, status)
        counter = self._post_children.get(key)
        if counter is None:
            counter = self._post_children[key] = self._posts.labels(*key)
        counter.inc()
        if status == "published" and scheduled_at is not None:
            if scheduled_at.tzinfo is None:  # the store's times carry an offset; be safe
                scheduled_at = scheduled_at.replace(tzinfo=UTC)
            late = (datetime.now(UTC) - scheduled_at).total_seconds()
            # Clock skew with the database could make it negative: never below 0.
            _child(self._lateness_children, self._lateness, platform).observe(max(0.0, late))

    def watch_in_flight(self, in_flight: Mapping[str, int], platforms: Iterable[str]) -> None:
        for platform in platforms:
            self._in_flight.labels(platform).set_function(_reader(in_flight, platform))

    def run_finished(self) -> None:
        self._runs.inc()


def _reader(counts: Mapping[str, int], key: str) -> Callable[[], float]:
    """Reads counts[key] from the scrape's thread: a dict lookup, safe under the GIL."""
    return lambda: float(counts.get(key, 0))


def _child(children: dict[str, _Metric], metric: _Metric, platform: str) -> _Metric:
    child = children.get(platform)
    if child is None:
        child = children[platform] = metric.labels(platform)
    return child


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[Metrics]:
    """The worker's metrics, served on METRICS_HOST:METRICS_PORT (a daemon thread of
    prometheus_client's) while the block runs; NO_METRICS when METRICS_PORT is unset."""
    if settings.metrics_port is None:
        yield NO_METRICS
        return
    from prometheus_client import start_http_server

    metrics = PrometheusMetrics()
    host, port = settings.metrics_host, settings.metrics_port
    try:
        server, thread = start_http_server(port, host, registry=metrics.registry)
    except OSError as exc:  # in use, not an address of this machine, a privileged port
        raise ConfigError(f"METRICS_PORT={port}: cannot serve metrics on {host}:{port}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    log.info("serving metrics", extra={"fields": {
        "event": "metrics_serving", "host": host, "port": port}})
    try:
        yield metrics
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

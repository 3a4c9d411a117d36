"""The operator's settings: alarms (ALERT_*), review checks (RECONCILE_*), the look-ahead
(PREFLIGHT_*), webhooks (WEBHOOK_*) and worker metrics (METRICS_*). Settings holds them."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from publisher.env_values import http_url_problem, integer, number, shown, switch, text
from publisher.errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertSettings:
    """When `publisher status --check` reports a problem (ALERT_* variables)."""

    silent_minutes: float = 10.0        # no run finished this long while posts are due
    overdue_minutes: float = 15.0       # posts still queued this long after their due time
    review_hours: float = 4.0           # needs_review posts left this long
    failure_rate_percent: float = 20.0  # of the last hour's ended posts, not published
    failure_min_posts: int = 10         # ... judged from this many ended posts on


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewSettings:
    """Checking needs_review posts with the platforms (publisher.reconcile; RECONCILE_*)."""

    every_seconds: float = 600.0        # a post is checked no more often than this
    max_checks: int = 6                 # ... and at most this many times
    absent_checks: int = 3              # found absent this many times,
    settle_minutes: float = 20.0        # ... spanning this long: back to the queue, on
    # the platforms whose listing settles absence well enough (RECONCILE_REQUEUE_<P>=on|off)
    requeue_platforms: frozenset[str] = frozenset({"linkedin"})


@dataclass(frozen=True, kw_only=True, slots=True)
class PreflightSettings:
    """Looking ahead at posts due soon (publisher.preflight; PREFLIGHT_* variables)."""

    hours: float = 24.0         # posts due within this many hours are checked; 0: off
    budget: int = 200           # posts checked per run at most
    token_checks: int = 20      # accounts whose token is checked per run at most

    @property
    def on(self) -> bool:
        return self.hours > 0


@dataclass(frozen=True, kw_only=True, slots=True)
class WebhookSettings:
    """Signed notifications to an operator's endpoint (publisher.webhooks; WEBHOOK_*)."""

    url: str | None = None          # None: events stay in publisher_events, nothing is sent
    secret: bytes = b""             # WEBHOOK_SECRET: the bytes after whsec_, base64-decoded
    timeout_seconds: float = 10.0   # one delivery attempt's request

    def __repr__(self) -> str:
        # The URL's path and query may carry a token of the receiver's: scheme and host only.
        where = None if self.url is None else "{0.scheme}://{0.netloc}/...".format(
            urlsplit(self.url))
        return (f"WebhookSettings(url={where!r}, secret={'***' if self.secret else ''!r}, "
                f"timeout_seconds={self.timeout_seconds!r})")


def read_alerts(env: Mapping[str, str]) -> AlertSettings:
    default = AlertSettings()
    return AlertSettings(
        silent_minutes=number(env, "ALERT_SILENT_MINUTES", default.silent_minutes,
                               low=1, high=7 * 24 * 60),
        overdue_minutes=number(env, "ALERT_OVERDUE_MINUTES", default.overdue_minutes,
                                low=1, high=7 * 24 * 60),
        review_hours=number(env, "ALERT_REVIEW_HOURS", default.review_hours, low=0.1,
                             high=30 * 24),
        failure_rate_percent=number(env, "ALERT_FAILURE_RATE_PERCENT",
                                     default.failure_rate_percent, low=0, high=100),
        failure_min_posts=integer(env, "ALERT_FAILURE_MIN_POSTS", default.failure_min_posts,
                                   low=1, high=1_000_000),
    )


# Platforms whose reconcile can find a post absent (reconcile_signals.absent), with whether
# that requeues it by default: LinkedIn's posts by author come from its own store; Facebook's
# feed can lag or hold a post back (integrity review), and shows mention tags as names.
REQUEUE_DEFAULTS = {"facebook": False, "linkedin": True}


def read_review(env: Mapping[str, str]) -> ReviewSettings:
    default = ReviewSettings()
    every = number(env, "RECONCILE_EVERY_SECONDS", default.every_seconds, low=0.1,
                    high=86_400)
    max_checks = integer(env, "RECONCILE_MAX_CHECKS", default.max_checks, low=1, high=1000)
    absent = integer(env, "RECONCILE_ABSENT_CHECKS", default.absent_checks, low=1,
                      high=1000)
    settle = number(env, "RECONCILE_SETTLE_MINUTES", default.settle_minutes, low=0,
                     high=30 * 24 * 60)
    if absent > max_checks:
        raise ConfigError(f"RECONCILE_ABSENT_CHECKS ({absent}) must not be above "
                          f"RECONCILE_MAX_CHECKS ({max_checks}): no post would be checked "
                          "that often")
    if settle * 60 > (max_checks - 1) * every:
        raise ConfigError(f"RECONCILE_SETTLE_MINUTES ({settle:g}) is longer than "
                          f"RECONCILE_MAX_CHECKS ({max_checks}) checks RECONCILE_EVERY_SECONDS "
                          f"({every:g}) apart can span")
    requeue = frozenset(platform for platform, on in REQUEUE_DEFAULTS.items()
                        if switch(env, f"RECONCILE_REQUEUE_{platform.upper()}", on))
    return ReviewSettings(every_seconds=every, max_checks=max_checks, absent_checks=absent,
                          settle_minutes=settle, requeue_platforms=requeue)


def read_preflight(env: Mapping[str, str]) -> PreflightSettings:
    default = PreflightSettings()
    return PreflightSettings(
        hours=number(env, "PREFLIGHT_HOURS", default.hours, low=0, high=30 * 24),
        budget=integer(env, "PREFLIGHT_BUDGET", default.budget, low=1, high=100_000),
        token_checks=integer(env, "PREFLIGHT_TOKEN_CHECKS", default.token_checks, low=0,
                              high=100_000),
    )


def read_metrics_port(env: Mapping[str, str]) -> int | None:
    """Unset: no metrics (the default)."""
    if text(env, "METRICS_PORT") is None:
        return None
    return integer(env, "METRICS_PORT", 0, low=1, high=65_535)


def read_metrics_host(env: Mapping[str, str]) -> str:
    """The address /metrics listens on. 127.0.0.1 unless set: the metrics have no
    authentication and tell the posting volume, so they reach past the machine only when
    asked to (0.0.0.0 for a scraper on another host or a container's published port)."""
    value = text(env, "METRICS_HOST")
    if value is None:
        return "127.0.0.1"
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", value):
        raise ConfigError(f"METRICS_HOST must be an IP address or host name, such as "
                          f"127.0.0.1 or 0.0.0.0, got {shown(value)}")
    return value


_HOW_TO_SIGN = ("make one with: echo \"whsec_$(openssl rand -base64 32)\" "
                "(Standard Webhooks: whsec_ and base64 of 24 to 64 random bytes)")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def read_webhooks(env: Mapping[str, str]) -> WebhookSettings:
    """WEBHOOK_URL (https; http only to this machine), WEBHOOK_SECRET (required with a URL),
    WEBHOOK_TIMEOUT_SECONDS. Neither value is ever shown: both may be secrets."""
    url = text(env, "WEBHOOK_URL")
    raw_secret = text(env, "WEBHOOK_SECRET")
    secret = b"" if raw_secret is None else webhook_secret(raw_secret)
    if url is not None:
        problem = http_url_problem(url.split("?", 1)[0])
        if problem:
            raise ConfigError(f"WEBHOOK_URL {problem} (value not shown)")
        parts = urlsplit(url)
        if parts.scheme.lower() != "https" and parts.hostname not in _LOCAL_HOSTS:
            raise ConfigError("WEBHOOK_URL must be an https URL (http only to localhost): "
                              "the events name the users' posts (value not shown)")
        if not secret:
            raise ConfigError(f"WEBHOOK_SECRET is missing: webhooks to WEBHOOK_URL are "
                              f"signed with it; {_HOW_TO_SIGN}")
    timeout = number(env, "WEBHOOK_TIMEOUT_SECONDS", WebhookSettings().timeout_seconds,
                      low=0.5, high=120)
    return WebhookSettings(url=url, secret=secret, timeout_seconds=timeout)


def webhook_secret(value: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: whsec_ + base64 (padding optional)."""
    prefix, _, encoded = value.strip().partition("whsec_")
    if prefix or not encoded:
        raise ConfigError(f"WEBHOOK_SECRET must start with whsec_ (value not shown); "
                          f"{_HOW_TO_SIGN}")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (ValueError, binascii.Error):
        raise ConfigError(f"WEBHOOK_SECRET is not whsec_ followed by base64 (value not "
                          f"shown); {_HOW_TO_SIGN}") from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(f"WEBHOOK_SECRET holds {len(key)} bytes; {_HOW_TO_SIGN}")
    return key

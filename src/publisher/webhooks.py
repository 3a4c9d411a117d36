"""Webhooks: the outbox's events, signed per Standard Webhooks, POSTed to WEBHOOK_URL.

Every outcome the product's users must hear about is a row of public.publisher_events,
written by the statement that applied the outcome (20261207001100_outbox.sql). This module
hands them to an operator's endpoint: after a run's publishing work, within what is left of
the run's deadline (`deliver_after_run`), or beside `publisher worker`'s runs, continuously
(`delivering_in_background`). Never in a post's way: a run delivers only once its posts are
done, a worker's deliverer is a task of its own, and a slow or dead endpoint only delays
events.

At least once, with a stable id: `claim_events` leases a batch (FOR UPDATE SKIP LOCKED; two
deliverers never hold the same event at once), each is POSTed, and `finish_events` marks it
delivered on a 2xx, or due again after a backoff (30 s doubling, at most 6 h, for 3 days).
A deliverer that dies mid-batch leaves its events due again when the lease ends. The event's
id is the webhook-id of every attempt: receivers drop what they have already seen.

Signature (https://www.standardwebhooks.com):
    webhook-id         the event's id
    webhook-timestamp  this attempt's time, unix seconds
    webhook-signature  "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")),
                       key: WEBHOOK_SECRET's bytes after whsec_, base64-decoded
Body: {"type": "post.published", "timestamp": when it happened, "data": the event's facts
(claim_events builds it: ids, platform, status, reason, the post on the platform)}.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from publisher.errors import StoreError
from publisher.settings import Settings
from publisher.settings_ops import WebhookSettings
from publisher.store import Store
from publisher.summary import RunSummary

log = logging.getLogger("publisher.webhooks")

BATCH = 20                   # events claimed (and POSTed at once) per statement
MIN_RUN_SECONDS = 5.0        # a run past its deadline still gets this long for its events
LEASE_MARGIN_SECONDS = 30.0  # a claim's lease: two request timeouts plus this
THROTTLED = frozenset({429, 502, 503, 504})  # the endpoint asks for fewer: stop this round
PAUSE_SECONDS = 30.0         # the worker's wait after a round the endpoint stopped
USER_AGENT = "publisher-webhooks/1"


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One claimed event, as claim_events returns it."""

    number: int                 # publisher_events.id: what finish_events is told
    id: str                     # the webhook-id, the same on every attempt
    type: str
    occurred_at: str            # ISO 8601, UTC
    data: Mapping[str, Any]
    attempt: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Event:
        occurred = datetime.fromisoformat(str(row["created_at"])).astimezone(UTC)
        return cls(number=int(row["id"]), id=str(row["webhook_id"]), type=str(row["type"]),
                   occurred_at=occurred.isoformat().replace("+00:00", "Z"),
                   data=dict(row.get("data") or {}), attempt=int(row["attempt"]))

    def body(self) -> bytes:
        """The same bytes on every attempt (minified JSON, as the spec suggests)."""
        return json.dumps({"type": self.type, "timestamp": self.occurred_at,
                           "data": self.data}, separators=(",", ":"),
                          ensure_ascii=False).encode()


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value: v1, then base64 of the HMAC-SHA256 of id.timestamp.body."""
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(key: bytes, event: Event, body: bytes, timestamp: int) -> dict[str, str]:
    return {"content-type": "application/json", "user-agent": USER_AGENT,
            "webhook-id": event.id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(key, event.id, timestamp, body)}


@dataclass(frozen=True, kw_only=True, slots=True)
class Attempt:
    """What one POST came to: error None is delivered."""

    error: str | None = None
    retry_after: float | None = None
    throttled: bool = False


@dataclass(kw_only=True, slots=True)
class Delivered:
    """A delivery round's counts."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0
    stalled: bool = field(default=False)  # the endpoint throttled, or took none of a batch

    def add(self, claimed: int, counts: Mapping[str, int]) -> None:
        self.claimed += claimed
        self.delivered += counts.get("delivered", 0)
        self.retrying += counts.get("retrying", 0)
        self.given_up += counts.get("given_up", 0)


class Deliverer:
    """Claims due events, POSTs them signed, records what became of each."""

    def __init__(self, settings: WebhookSettings, store: Store, worker: str,
                 client: httpx.AsyncClient) -> None:
        if settings.url is None:
            raise ValueError("no WEBHOOK_URL: nothing to deliver to")
        self._settings = settings
        self._url = settings.url
        self._store = store
        self._worker = worker
        self._client = client
        self._lease = 2 * settings.timeout_seconds + LEASE_MARGIN_SECONDS

    async def deliver(self, seconds: float, stop: asyncio.Event | None = None) -> Delivered:
        """Rounds of claim / POST / finish until nothing is due, the endpoint asks for
        fewer or takes none of a batch, `seconds` are up or stop is set."""
        deadline = time.monotonic() + seconds
        done = Delivered()
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            rows = await self._store.claim_events(self._worker, BATCH, self._lease)
            if not rows:
                break
            events = [Event.from_row(row) for row in rows]
            attempts = await asyncio.gather(*(self._post(e, deadline) for e in events))
            counts = await self._store.finish_events([
                {"id": e.number, "attempt": e.attempt, "error": a.error,
                 "retry_after": a.retry_after} for e, a in zip(events, attempts, strict=True)])
            done.add(len(events), counts)
            _log_failures(events, attempts)
            # Throttled, or down (not one taken): the rest waits for a later round.
            if any(a.throttled for a in attempts) or all(a.error for a in attempts):
                done.stalled = True
                break
            if len(rows) < BATCH:
                break
        if done.claimed:
            log.info("webhooks: %d delivered, %d to retry, %d given up", done.delivered,
                     done.retrying, done.given_up, extra={"fields": {
                         "event": "webhooks", "delivered": done.delivered,
                         "retrying": done.retrying, "given_up": done.given_up}})
        return done

    async def _post(self, event: Event, deadline: float) -> Attempt:
        timeout = max(1.0, min(self._settings.timeout_seconds, deadline - time.monotonic()))
        body = event.body()
        headers = signed_headers(self._settings.secret, event, body, int(time.time()))
        try:
            async with asyncio.timeout(timeout), self._client.stream(
                    "POST", self._url, content=body, headers=headers,
                    timeout=timeout) as response:
                status = response.status_code  # the body is not read: only the status counts
                retry_after = _seconds(response.headers.get("retry-after"))
        except (TimeoutError, httpx.TimeoutException):
            return Attempt(error=f"no answer within {timeout:g} s")
        except httpx.HTTPError as exc:
            # The class only: a message may quote the URL, whose path can hold a token.
            return Attempt(error=f"could not reach the endpoint ({type(exc).__name__})")
        except Exception as exc:  # one event's odd data must not stop the others
            log.exception("webhook %s could not be sent", event.id)
            return Attempt(error=f"internal error: {type(exc).__name__}")
        if 200 <= status < 300:
            return Attempt()
        what = "HTTP 410 Gone: the endpoint wants no more webhooks" if status == 410 \
            else f"HTTP {status}"
        return Attempt(error=what, retry_after=retry_after, throttled=status in THROTTLED)

    async def deliver_until(self, stop: asyncio.Event, poll_seconds: float) -> None:
        """The worker's deliverer: a round whenever events are due, a pause of poll_seconds
        when none are (PAUSE_SECONDS when the endpoint stopped the round), until stop.
        Never raises: a database or endpoint problem is logged and tried again."""
        while not stop.is_set():
            pause = poll_seconds
            try:
                done = await self.deliver(60.0, stop)
                if done.stalled:
                    pause = max(poll_seconds, PAUSE_SECONDS)
                elif done.claimed:
                    pause = 0.0
            except StoreError as exc:
                log.warning("webhooks: the database is unavailable, trying again: %s", exc)
            except Exception:
                log.exception("webhooks: delivery round failed, trying again")
            if pause:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)


def _log_failures(events: list[Event], attempts: list[Attempt]) -> None:
    """One line per batch with failures (a dead endpoint must not flood the log); each
    event's own error is in its last_error, and at DEBUG here."""
    failed = [(e, a) for e, a in zip(events, attempts, strict=True) if a.error is not None]
    for event, attempt in failed:
        log.debug("webhook %s (%s, attempt %d) not delivered: %s", event.id, event.type,
                  event.attempt, attempt.error)
    if failed:
        first = failed[0][1].error
        log.warning("webhooks: %d of %d not delivered, tried again later (%s)", len(failed),
                    len(events), first, extra={"fields": {
                        "event": "webhooks_failed", "failed": len(failed), "error": first}})


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds (its HTTP-date form is rare for webhooks: ignored)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def webhook_client(settings: WebhookSettings) -> httpx.AsyncClient:
    """The deliverer's own client: no redirects (a 3xx is a failure, per the spec), no
    proxy from the environment, no cookies kept."""
    return httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False,
                             trust_env=False,
                             limits=httpx.Limits(max_connections=BATCH,
                                                 max_keepalive_connections=BATCH))


async def deliver_after_run(settings: Settings, store: Store, summary: RunSummary,
                            stop: asyncio.Event | None = None) -> Delivered:
    """After a run's publishing work: the due events, within the rest of the run's deadline
    (at least MIN_RUN_SECONDS). Nothing without WEBHOOK_URL, when stopping (SIGTERM) or
    when the database already failed. Never raises: the run's posts are done and
    recorded, and the next run delivers what this one could not."""
    if (settings.webhooks.url is None or summary.database_failed
            or (stop is not None and stop.is_set())):
        return Delivered()
    left = summary.started_clock + settings.run_deadline_seconds - time.monotonic()
    try:
        async with webhook_client(settings.webhooks) as client:
            deliverer = Deliverer(settings.webhooks, store, settings.worker_id, client)
            return await deliverer.deliver(max(MIN_RUN_SECONDS, left))
    except StoreError as exc:
        log.warning("webhooks: not delivered this run, the database failed: %s", exc)
    except Exception:
        log.exception("webhooks: delivery failed this run")
    return Delivered()


@asynccontextmanager
async def delivering_in_background(settings: Settings, store: Store) -> AsyncIterator[None]:
    """`publisher worker`: a deliverer task beside the runs while the block lasts; on leaving,
    it finishes the requests under way (up to one timeout) and stops."""
    if settings.webhooks.url is None:
        yield
        return
    stop = asyncio.Event()
    async with webhook_client(settings.webhooks) as client:
        deliverer = Deliverer(settings.webhooks, store, settings.worker_id, client)
        task = asyncio.create_task(deliverer.deliver_until(stop, settings.worker_poll_seconds))
        try:
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, settings.webhooks.timeout_seconds + 5.0)
            except TimeoutError:
                log.warning("webhooks: the deliverer did not stop in time; its events are "
                            "sent again when their lease ends")

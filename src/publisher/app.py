"""Wires settings, store, HTTP client, cipher and adapters into a run."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from publisher import webhooks
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import ConfigError, StoreError
from publisher.http_transport import AiohttpTransport
from publisher.keycheck import check_key
from publisher.metrics import NO_METRICS, Metrics, served
from publisher.platforms import build_adapters
from publisher.preflight import WORKER_EVERY_SECONDS, WORKER_SECONDS, Preflight
from publisher.run import Publisher
from publisher.settings import Settings
from publisher.store import Store, open_store
from publisher.summary import RunSummary

log = logging.getLogger("publisher")


def load_cipher(settings: Settings) -> TokenCipher:
    """The token cipher. The embedded local database gets a key kept beside its data."""
    key_text, source = settings.encryption_key, "ENCRYPTION_KEY"
    if key_text is None:
        if settings.store_kind != "embedded":
            raise ConfigError("ENCRYPTION_KEY is missing: tokens are stored encrypted with it; "
                              "make one with `python -m publisher keygen`")
        key_text = _local_key(settings.data_dir)
        source = "the local key file encryption.key under PUBLISHER_DATA_DIR"
    previous = [parse_key(k, "ENCRYPTION_KEYS_PREVIOUS") for k in
                settings.encryption_keys_previous]
    return TokenCipher(parse_key(key_text, source), previous)


def _local_key(data_dir: Path) -> str:
    path = data_dir / "encryption.key"
    try:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(generate_key())
            path.chmod(0o600)
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"PUBLISHER_DATA_DIR: cannot keep the local encryption key in "
                          f"{str(data_dir)!r}: {exc.strerror or type(exc).__name__}") from None


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: the platform APIs authenticate with tokens, never cookies."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _CookielessClient(httpx.AsyncClient):
    """httpx's client minus its cookie jar, which it fills from every response through
    urllib's cookie machinery: about an eighth of the client's CPU per request here."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise ValueError("this client keeps no cookies")


def http_client(settings: Settings) -> httpx.AsyncClient:
    """One client for the whole run, its pool sized to the concurrency limits."""
    # Idle connections are dropped (4 s) before servers commonly drop them (5 s and up), so
    # a publish never goes out on a connection the server is closing.
    transport = AiohttpTransport(max_connections=settings.max_concurrency + 8,
                                 keepalive_expiry=4.0)
    return _CookielessClient(
        timeout=httpx.Timeout(settings.http_timeout_seconds, connect=10.0),
        transport=transport,
        follow_redirects=False,
        # No proxy mounts from the environment: they would bypass the transport above, and
        # looking them up costs every request.
        trust_env=False,
    )


@dataclass
class Runtime:
    settings: Settings
    store: Store
    client: httpx.AsyncClient
    cipher: TokenCipher

    def publisher(self, metrics: Metrics = NO_METRICS) -> Publisher:
        return Publisher(self.settings, self.store, self.client, build_adapters(), self.cipher,
                         metrics=metrics)

    def preflight(self) -> Preflight:
        return Preflight(self.settings, self.store, self.client, build_adapters(), self.cipher)


@asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    cipher = load_cipher(settings)  # before any database work: bad settings claim nothing
    store = await open_store(settings)
    try:
        # Before housekeeping and any claim: a wrong (but valid) key stops here, exit 2,
        # instead of failing every due post for good.
        await check_key(store, cipher)
        async with http_client(settings) as client:
            yield Runtime(settings, store, client, cipher)
    finally:
        await store.close()


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM / SIGINT: stop claiming, let in-flight posts finish, write outcomes."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def run_once(settings: Settings, stop: asyncio.Event | None = None) -> RunSummary:
    async with runtime(settings) as rt:
        publisher = rt.publisher()
        summary = await publisher.run(stop)
        await look_ahead(rt, summary, stop)
        await finish_run(rt.store, summary)
        await webhooks.deliver_after_run(settings, rt.store, summary, stop)
        return summary


async def look_ahead(rt: Runtime, summary: RunSummary, stop: asyncio.Event | None, *,
                     within: float | None = None) -> None:
    """Preflight (publisher.preflight) after the run's publishing work, with what is left of
    its deadline (and at most `within` seconds): it never holds a slot a due post could
    use. Skipped when off, stopping, or when the database already failed; an error here only
    costs the look-ahead."""
    if (not rt.settings.preflight.on or summary.database_failed
            or (stop is not None and stop.is_set())):
        return
    deadline = summary.started_clock + rt.settings.run_deadline_seconds
    if within is not None:
        deadline = min(deadline, time.monotonic() + within)
    if deadline <= time.monotonic():
        return  # the run used its whole deadline: a quieter run looks ahead
    try:
        report = await rt.preflight().run(deadline=deadline)
    except StoreError as exc:
        log.warning("preflight skipped: %s", exc)
        return
    except Exception:  # a look-ahead's bug must not cost the run its summary
        log.exception("preflight failed")
        return
    summary.housekeeping.update(report.counts())


async def work_forever(settings: Settings, stop: asyncio.Event) -> None:
    """`publisher worker`: run after run until stopped. Between runs with nothing due it
    waits for a NOTIFY from the database (direct connections) or polls. Serves its metrics
    when METRICS_PORT is set (bound first: a port in use stops it before any database work)."""
    async with served(settings) as metrics, runtime(settings) as rt, \
            webhooks.delivering_in_background(settings, rt.store):
        wake = asyncio.Event()
        listening = await rt.store.listen_for_due_posts(wake.set)
        idle_wait = settings.worker_poll_seconds * (10 if listening else 1)
        log.info("worker started", extra={"fields": {
            "event": "worker_started", "worker_id": settings.worker_id, "listening": listening}})
        looked_ahead = -WORKER_EVERY_SECONDS
        while not stop.is_set():
            wake.clear()
            summary = await rt.publisher(metrics).run(stop)
            metrics.run_finished()
            if time.monotonic() - looked_ahead >= WORKER_EVERY_SECONDS:
                looked_ahead = time.monotonic()
                await look_ahead(rt, summary, stop, within=WORKER_SECONDS)
            if summary.claimed or any(summary.housekeeping.values()):
                await finish_run(rt.store, summary)
            if summary.database_failed:
                await _sleep_or_stop(stop, wake, settings.worker_poll_seconds * 5, wake_ok=False)
            elif summary.stopped_because == "nothing due":
                await _sleep_or_stop(stop, wake, idle_wait)


async def _sleep_or_stop(stop: asyncio.Event, wake: asyncio.Event, seconds: float, *,
                         wake_ok: bool = True) -> None:
    waiters = {asyncio.create_task(stop.wait())}
    if wake_ok:
        waiters.add(asyncio.create_task(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def finish_run(store: Store, summary: RunSummary) -> None:
    """The summary as a run-log row and as one structured log line."""
    fields = summary.as_dict()
    await store.record_run(summary.worker_id, summary.started_at, fields)
    log.info("run finished", extra={"fields": {"event": "run_summary", **fields}})

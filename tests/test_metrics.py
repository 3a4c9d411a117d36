"""Worker metrics (publisher.metrics): what a run counts, and /metrics on METRICS_PORT."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import insert_account, insert_posts, sql
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import ConfigError
from publisher.metrics import NO_METRICS, PrometheusMetrics, served
from publisher.models import ClaimedPost, Outcome
from publisher.platforms.base import PublishContext
from publisher.run import Publisher
from publisher.settings import Settings
from publisher.simulator.server import SimulatorProcess
from publisher.simulator.state import SimConfig
from publisher.store import Store

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))


class ByContent:
    """A platform whose answer is written in the post: ok publishes, bad fails for good,
    wait is deferred for an hour (back to scheduled, out of this run)."""

    def __init__(self, platform: str) -> None:
        self.platform = platform

    def validate(self, post: ClaimedPost) -> str | None:
        return None

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        if post.content == "ok":
            return Outcome.published(f"{self.platform}-{post.id}", None)
        if post.content == "bad":
            return Outcome.failed("refused for good")
        return Outcome.defer("throttled", 3600.0)


def free_port() -> int:
    """A port nothing listens on now (the OS's pick)."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def listening_socket() -> Iterator[int]:
    """A port taken by someone else for the block."""
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


async def test_run_counts_outcomes_latency_and_lateness(
        database_url: str, db: asyncpg.Connection, store: Store) -> None:
    """The counters by platform, outcome and status match the posts' final statuses; every
    published post, and only those, adds to the lateness histogram, and each was at least
    the minute late it was due; nothing is left in flight."""
    accounts = {p: await insert_account(db, platform=p, access_token_encrypted=CIPHER.encrypt(
        "tok")) for p in ("facebook", "linkedin")}
    for platform, content, count in (("facebook", "ok", 3), ("facebook", "bad", 2),
                                     ("linkedin", "ok", 2), ("linkedin", "wait", 1)):
        await insert_posts(db, count, platform=platform, account_id=accounts[platform],
                           content=content)
    metrics = PrometheusMetrics()
    settings = Settings(database_url=database_url, encryption_key=KEY, worker_id="metrics",
                        run_deadline_seconds=60)
    async with httpx.AsyncClient() as client:
        await Publisher(settings, store, client, {p: ByContent(p) for p in accounts},
                        CIPHER, metrics=metrics).run()

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        found = metrics.registry.get_sample_value(name, labels)
        assert found is not None, (name, labels)
        return found

    final = {(r["platform"], r["status"]): r["n"] for r in await db.fetch(
        "select platform, status, count(*) as n from created_content group by 1, 2")}
    assert final == {("facebook", "published"): 3, ("facebook", "failed"): 2,
                     ("linkedin", "published"): 2, ("linkedin", "scheduled"): 1}
    for (platform, status), count in final.items():
        outcome = {"published": "published", "failed": "failed", "scheduled": "defer"}[status]
        assert value("publisher_posts_total", {"platform": platform, "outcome": outcome,
                                               "status": status}) == count
    counted = [sample.value for family in metrics.registry.collect()
               for sample in family.samples if sample.name == "publisher_posts_total"]
    assert sum(counted) == sum(final.values())  # no outcome counted under another label
    for platform, published, claimed in (("facebook", 3, 5), ("linkedin", 2, 3)):
        labels = {"platform": platform}
        assert value("publisher_lateness_seconds_count", labels) == published
        assert value("publisher_lateness_seconds_bucket", {**labels, "le": "30.0"}) == 0
        assert value("publisher_lateness_seconds_sum", labels) >= 60 * published
        assert value("publisher_claimed_posts_total", labels) == claimed
        assert value("publisher_publish_seconds_count", labels) == claimed
        assert value("publisher_in_flight", labels) == 0
    assert value("publisher_claim_seconds_count") >= 1
    assert value("publisher_last_claim_timestamp") > 0


def test_metrics_are_off_unless_asked_for() -> None:
    """A run without METRICS_PORT gets the do-nothing hooks, and `publisher run` never
    imports prometheus_client (its import would slow every cron start)."""
    assert Settings.from_env({}).metrics_port is None
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, publisher.app, publisher.cli, publisher.run; "
                               "print('prometheus_client' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"


async def test_served_yields_no_metrics_without_a_port() -> None:
    """METRICS_PORT unset: nothing is served and the hooks are the null ones."""
    async with served(Settings()) as metrics:
        assert metrics is NO_METRICS


async def test_a_taken_metrics_port_is_a_config_error() -> None:
    """A port in use stops the worker with a message naming METRICS_PORT (exit 2)."""
    with listening_socket() as port, pytest.raises(ConfigError, match=f"METRICS_PORT={port}"):
        async with served(Settings(metrics_port=port)):
            pass


async def test_worker_serves_metrics_on_metrics_port(database_url: str,
                                                     db: asyncpg.Connection) -> None:
    """`publisher worker` with METRICS_PORT: /metrics (Prometheus text) counts the posts it
    published by platform and outcome, with their lateness; after SIGTERM the port is free."""
    account = await insert_account(db, external_id="page-metrics",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    await insert_posts(db, 6, account_id=account, content=sql("'m ' || random()"))
    port = free_port()
    async with SimulatorProcess(SimConfig(latency=0.0)) as sim:
        env = {**os.environ, "DATABASE_URL": database_url, "SIMULATOR_URL": sim.url,
               "ENCRYPTION_KEY": KEY, "WORKER_POLL_SECONDS": "0.2", "METRICS_PORT": str(port)}
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "publisher", "worker", env=env,
            stderr=asyncio.subprocess.DEVNULL)
        try:
            for _ in range(300):
                if await db.fetchval("select count(*) from created_content "
                                     "where status = 'published'") == 6:
                    break
                await asyncio.sleep(0.1)
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), 30) == 0
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    assert response.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text)
               for s in family.samples}
    facebook = (("platform", "facebook"),)
    assert samples[("publisher_posts_total", (("outcome", "published"),
                                              ("platform", "facebook"),
                                              ("status", "published")))] == 6
    assert samples[("publisher_lateness_seconds_count", facebook)] == 6
    assert samples[("publisher_claimed_posts_total", facebook)] == 6
    assert samples[("publisher_last_claim_timestamp", ())] > 0
    assert ("process_cpu_seconds_total", ()) in samples
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/metrics")


@pytest.mark.parametrize(("env", "port", "host"), [
    ({}, None, "127.0.0.1"),
    ({"METRICS_PORT": " "}, None, "127.0.0.1"),
    ({"METRICS_PORT": "9100"}, 9100, "127.0.0.1"),
    ({"METRICS_PORT": "65535", "METRICS_HOST": "10.1.2.3"}, 65535, "10.1.2.3"),
    ({"METRICS_PORT": "1", "METRICS_HOST": "::"}, 1, "::"),
])
def test_metrics_settings(env: dict[str, str], port: int | None, host: str) -> None:
    """METRICS_PORT is off when unset; METRICS_HOST is the loopback unless set."""
    settings = Settings.from_env(env)
    assert (settings.metrics_port, settings.metrics_host) == (port, host)


@pytest.mark.parametrize(("env", "named"), [
    ({"METRICS_PORT": "0"}, "METRICS_PORT"),
    ({"METRICS_PORT": "65536"}, "METRICS_PORT"),
    ({"METRICS_PORT": "ninety"}, "METRICS_PORT"),
    ({"METRICS_PORT": "9100.5"}, "METRICS_PORT"),
    ({"METRICS_PORT": "9100", "METRICS_HOST": "local host"}, "METRICS_HOST"),
    ({"METRICS_PORT": "9100", "METRICS_HOST": "http://0.0.0.0"}, "METRICS_HOST"),
])
def test_bad_metrics_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    """A bad METRICS_PORT or METRICS_HOST stops start-up with a message naming it."""
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)

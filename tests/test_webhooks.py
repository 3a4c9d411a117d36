"""Webhooks (publisher.webhooks): the outbox's events POSTed to a local server, signed per
Standard Webhooks, checked here by recomputing the HMAC and with the `standardwebhooks`
reference library; retried with the same id; never in a post's way."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from helpers import insert_account, insert_posts, sql
from publisher.app import run_once, work_forever
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import ConfigError
from publisher.settings import Settings, simulator_endpoints
from publisher.settings_ops import WebhookSettings
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig
from publisher.store import Store
from publisher.store.postgres import PostgresTransport
from publisher.store.store import OutcomeRow
from publisher.summary import RunSummary
from publisher.webhooks import Deliverer, Event, deliver_after_run, signature, webhook_client

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))
SECRET_BYTES = os.urandom(32)
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
TOKEN_IN_PATH = "s3cret-path"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local endpoint: records each request; answers `answers` in turn, then 200; waits
    for `gate` when one is set; calls `on_request` on arrival."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    reply_headers: dict[str, str] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    on_request: Callable[[], Awaitable[None]] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received({k.lower(): v for k, v in request.headers.items()},
                                      await request.read()))
        self.arrived.set()
        if self.on_request is not None:
            await self.on_request()
        if self.gate is not None:
            await self.gate.wait()
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, headers=self.reply_headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{token}", endpoint.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    endpoint.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/{TOKEN_IN_PATH}"
    try:
        yield endpoint
    finally:
        if endpoint.gate is not None:
            endpoint.gate.set()
        await runner.cleanup()


def hooks(url: str, timeout: float = 5.0) -> WebhookSettings:
    return WebhookSettings(url=url, secret=SECRET_BYTES, timeout_seconds=timeout)


def verified(request: Received) -> dict[str, Any]:
    """The request's payload, once its signature checks out twice: recomputed here from
    the spec, and by the Standard Webhooks reference library."""
    h = request.headers
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(SECRET_BYTES, signed, hashlib.sha256).digest())
    assert h["webhook-signature"] == "v1," + expected.decode()
    assert h["content-type"] == "application/json"
    payload: dict[str, Any] = Webhook(SECRET).verify(request.body, h)
    assert payload == json.loads(request.body)
    return payload


async def published_events(db: asyncpg.Connection, store: Store, count: int) -> None:
    """`count` posts published by worker w, so `count` post.published events."""
    posts = await insert_posts(db, count, status="publishing", locked_by="w", attempts=1,
                               lease_expires_at=sql("now() + interval '5 minutes'"))
    await store.record("w", [OutcomeRow(id=p, attempt=1, status="published",
                                        outcome="published", platform_post_id=f"fb_{p}")
                             for p in posts])


async def webhook_ids(db: asyncpg.Connection) -> list[str]:
    """The events' webhook-ids (given at their first delivery attempt)."""
    return [r[0] for r in await db.fetch("select webhook_id::text from publisher_events "
                                         "order by id")]


async def wait_until(db: asyncpg.Connection, query: str, expected: object,
                     seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.05)):
        if await db.fetchval(query) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{query} never became {expected!r}: {await db.fetchval(query)!r}")


# --- the signature -------------------------------------------------------------------------

def test_signature_is_the_reference_librarys() -> None:
    """Our webhook-signature equals what the Standard Webhooks library signs for the same
    id, timestamp and body; and changes with each of them."""
    body = b'{"type":"post.published","timestamp":"2026-12-07T10:00:00Z","data":{"a":1}}'
    ours = signature(SECRET_BYTES, "evt_1", 1_765_000_000, body)
    reference = Webhook(SECRET).sign("evt_1", datetime.fromtimestamp(1_765_000_000, UTC),
                                     body.decode())
    assert ours == reference
    assert len({ours, signature(SECRET_BYTES, "evt_2", 1_765_000_000, body),
                signature(SECRET_BYTES, "evt_1", 1_765_000_001, body),
                signature(SECRET_BYTES, "evt_1", 1_765_000_000, body + b" ")}) == 4


def test_body_is_the_same_on_every_attempt() -> None:
    """Minified JSON {type, timestamp (UTC, Z), data}, whatever zone the database wrote."""
    row = {"id": 3, "webhook_id": "0190", "type": "post.failed",
           "created_at": "2026-12-07T11:00:00.5+01:00",
           "data": {"post_id": 7, "reason": "caption too long"}, "attempt": 1}
    first, again = Event.from_row(row), Event.from_row({**row, "attempt": 2})
    assert first.body() == again.body() == (
        b'{"type":"post.failed","timestamp":"2026-12-07T10:00:00.500000Z",'
        b'"data":{"post_id":7,"reason":"caption too long"}}')


# --- settings ------------------------------------------------------------------------------

def test_webhook_settings_are_validated_and_masked() -> None:
    """A whsec_ secret of 24-64 bytes, https (http only to this machine), a secret with
    every URL; bad values name their variable and never show a value; repr masks both."""
    env = {"WEBHOOK_URL": f"https://hooks.example.com/in/{TOKEN_IN_PATH}?k=v",
           "WEBHOOK_SECRET": SECRET, "WEBHOOK_TIMEOUT_SECONDS": "3"}
    settings = Settings.from_env(env)
    assert settings.webhooks.secret == SECRET_BYTES
    assert settings.webhooks.timeout_seconds == 3
    assert Settings.from_env({**env, "WEBHOOK_SECRET": SECRET.rstrip("=")}).webhooks.secret \
        == SECRET_BYTES
    assert Settings.from_env({**env, "WEBHOOK_URL": "http://localhost:8080/in"}).webhooks.url
    shown = repr(settings)
    assert TOKEN_IN_PATH not in shown
    assert SECRET[6:20] not in shown
    assert "https://hooks.example.com/..." in shown
    assert Settings.from_env({}).webhooks == WebhookSettings()
    for changes, variable in (
            ({"WEBHOOK_SECRET": base64.b64encode(SECRET_BYTES).decode()}, "WEBHOOK_SECRET"),
            ({"WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"short").decode()},
             "WEBHOOK_SECRET"),
            ({"WEBHOOK_SECRET": "whsec_not*base64"}, "WEBHOOK_SECRET"),
            ({"WEBHOOK_SECRET": ""}, "WEBHOOK_SECRET is missing"),
            ({"WEBHOOK_URL": f"http://hooks.example.com/{TOKEN_IN_PATH}"}, "WEBHOOK_URL"),
            ({"WEBHOOK_URL": f"ftp://hooks.example.com/{TOKEN_IN_PATH}"}, "WEBHOOK_URL"),
            ({"WEBHOOK_TIMEOUT_SECONDS": "0"}, "WEBHOOK_TIMEOUT_SECONDS")):
        with pytest.raises(ConfigError, match=variable) as refused:
            Settings.from_env({**env, **changes})
        assert TOKEN_IN_PATH not in str(refused.value)
        assert "not*base64" not in str(refused.value)


# --- delivery ------------------------------------------------------------------------------

async def test_events_are_delivered_signed_once(db: asyncpg.Connection, store: Store,
                                                receiver: Receiver) -> None:
    """Each event reaches the endpoint once, webhook-id = its id, signed; then it is
    marked delivered and not sent again."""
    await published_events(db, store, 3)
    async with webhook_client(hooks(receiver.url)) as client:
        deliverer = Deliverer(hooks(receiver.url), store, "d", client)
        done = await deliverer.deliver(10)
        assert (done.claimed, done.delivered) == (3, 3)
        assert (await deliverer.deliver(10)).claimed == 0
    ids = await webhook_ids(db)
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(ids)
    for request in receiver.received:
        payload = verified(request)
        assert payload["type"] == "post.published"
        assert payload["data"]["platform_post_id"] == f"fb_{payload['data']['post_id']}"
    assert await db.fetchval("select count(*) from publisher_events "
                             "where delivered_at is not null and attempts = 1") == 3


async def test_a_failing_endpoint_gets_the_same_event_again_later(
        db: asyncpg.Connection, store: Store, receiver: Receiver) -> None:
    """A 500, then the endpoint unreachable: the event is due again after a backoff each
    time, its post untouched, no URL in the stored error; once the endpoint answers 2xx
    it gets the same id and body, freshly signed."""
    await published_events(db, store, 1)
    post = await db.fetchval("select post_id from publisher_events")
    receiver.answers = [500]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nobody listens on
    unreachable = hooks(f"http://127.0.0.1:{closed.getsockname()[1]}/hooks/{TOKEN_IN_PATH}")
    errors = []
    for settings in (hooks(receiver.url), unreachable):
        async with webhook_client(settings) as client:
            done = await Deliverer(settings, store, "d", client).deliver(10)
        assert (done.claimed, done.retrying) == (1, 1)
        row = await db.fetchrow("select *, next_attempt_at > now() + interval '20 s' as later "
                                "from publisher_events")
        assert row["later"]
        assert row["delivered_at"] is None
        errors.append(row["last_error"])
        await db.execute("update publisher_events set next_attempt_at = now()")
    closed.close()
    assert errors[0] == "HTTP 500"
    assert errors[1].startswith("could not reach the endpoint")
    assert all(TOKEN_IN_PATH not in e and "127.0.0.1" not in e for e in errors)
    async with webhook_client(hooks(receiver.url)) as client:
        assert (await Deliverer(hooks(receiver.url), store, "d", client).deliver(10)
                ).delivered == 1
    assert len(receiver.received) == 2  # the unreachable endpoint got nothing, of course
    first, last = receiver.received
    assert first.headers["webhook-id"] == last.headers["webhook-id"] == (
        await webhook_ids(db))[0]
    assert first.body == last.body
    verified(first)
    verified(last)
    assert await db.fetchval("select attempts from publisher_events") == 3
    assert await db.fetchval("select status from created_content where id = $1",
                             post) == "published"


async def test_a_throttling_endpoint_ends_the_round_and_sets_the_next_time(
        db: asyncpg.Connection, store: Store, receiver: Receiver) -> None:
    """One 429 with Retry-After in a batch: the rest of the batch is delivered, no more is
    claimed this round, and that event waits at least Retry-After."""
    await published_events(db, store, 25)
    receiver.answers = [429]
    receiver.reply_headers = {"Retry-After": "120"}
    async with webhook_client(hooks(receiver.url)) as client:
        done = await Deliverer(hooks(receiver.url), store, "d", client).deliver(10)
    assert (done.claimed, done.delivered, done.retrying, done.stalled) == (20, 19, 1, True)
    assert await db.fetchval("select count(*) from publisher_events where attempts = 0") == 5
    assert await db.fetchval("select next_attempt_at >= now() + interval '119 s' "
                             "from publisher_events where last_error = 'HTTP 429'") is True


async def test_an_endpoint_that_takes_nothing_ends_the_round(
        db: asyncpg.Connection, store: Store, receiver: Receiver) -> None:
    """A whole batch refused (the endpoint is down): the rest waits for a later round
    instead of each being tried into the wall."""
    await published_events(db, store, 25)
    receiver.answers = [500] * 20
    async with webhook_client(hooks(receiver.url)) as client:
        done = await Deliverer(hooks(receiver.url), store, "d", client).deliver(10)
    assert (done.claimed, done.retrying, done.stalled) == (20, 20, True)
    assert await db.fetchval("select count(*) from publisher_events where attempts = 0") == 5


async def test_two_deliverers_never_send_an_event_twice(
        database_url: str, db: asyncpg.Connection, store: Store,
        receiver: Receiver) -> None:
    """Two deliverers on their own connections, at once: every event reaches the endpoint
    exactly once (claims are leased, skip locked)."""
    await published_events(db, store, 45)

    async def yield_once() -> None:
        await asyncio.sleep(0)  # let the other deliverer claim meanwhile

    receiver.on_request = yield_once
    other = Store(await PostgresTransport.connect(database_url, max_size=2))
    try:
        async with webhook_client(hooks(receiver.url)) as client:
            one = Deliverer(hooks(receiver.url), store, "d1", client)
            two = Deliverer(hooks(receiver.url), other, "d2", client)
            done = await asyncio.gather(one.deliver(20), two.deliver(20))
    finally:
        await other.close()
    sent = [r.headers["webhook-id"] for r in receiver.received]
    assert sorted(sent) == sorted(await webhook_ids(db))  # each once, none missing
    assert sum(d.delivered for d in done) == 45


async def test_without_webhook_url_events_stay_for_realtime(db: asyncpg.Connection,
                                                            store: Store) -> None:
    """No WEBHOOK_URL: after a run nothing is claimed or sent, and no statement is made;
    the events stay in the table (the product's Realtime subscribers have them)."""
    await published_events(db, store, 2)
    before = store.statements
    done = await deliver_after_run(Settings(), store, RunSummary(worker_id="w"))
    assert (done.claimed, store.statements - before) == (0, 0)
    assert await db.fetchval("select count(*) from publisher_events "
                             "where attempts = 0 and delivered_at is null") == 2


# --- a run, and the worker -----------------------------------------------------------------

@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    async with run_in_process(SimConfig(latency=0.0, seed=1)) as url:
        yield url


async def posts_to_publish(db: asyncpg.Connection, count: int) -> list[Any]:
    account = await insert_account(db, access_token_encrypted=CIPHER.encrypt("tok"))
    return await insert_posts(db, count, account_id=account, content=sql("'w ' || random()"))


def run_settings(database_url: str, simulator: str, receiver: Receiver,
                 **changes: Any) -> Settings:
    base = Settings(database_url=database_url, simulator_url=simulator, encryption_key=KEY,
                    endpoints=simulator_endpoints(simulator), worker_id="hooks",
                    webhooks=hooks(receiver.url))
    return replace(base, **changes)


async def test_a_run_sends_its_events_after_its_posts(
        database_url: str, db: asyncpg.Connection, simulator: str,
        receiver: Receiver) -> None:
    """`publisher run` with WEBHOOK_URL: when the first webhook arrives, every post is
    already published and the run recorded; each post's event arrives signed."""
    posts = await posts_to_publish(db, 5)
    seen: list[tuple[int, int]] = []

    async def state_on_arrival() -> None:
        if not seen:
            seen.append((await db.fetchval("select count(*) from created_content "
                                           "where status = 'published'"),
                         await db.fetchval("select count(*) from publisher_runs")))

    receiver.on_request = state_on_arrival
    summary = await run_once(run_settings(database_url, simulator, receiver))
    assert summary.claimed == 5
    assert seen == [(5, 1)]
    payloads = [verified(r) for r in receiver.received]
    assert sorted(p["data"]["post_id"] for p in payloads) == sorted(posts)
    assert {p["type"] for p in payloads} == {"post.published"}


# In this process the worker's store closes its pool with the LISTEN connection still
# listening, which asyncpg warns about (a worker exits right after, so it never shows).
@pytest.mark.filterwarnings("ignore:.*active notification listener")
async def test_a_hanging_endpoint_never_holds_up_the_workers_posts(
        database_url: str, db: asyncpg.Connection, simulator: str,
        receiver: Receiver) -> None:
    """`publisher worker`: while the endpoint holds the first webhook unanswered, new posts
    are still published; once it answers, every event is delivered, each once."""
    receiver.gate = asyncio.Event()
    await posts_to_publish(db, 3)
    stop = asyncio.Event()
    settings = run_settings(database_url, simulator, receiver, worker_poll_seconds=0.2,
                            webhooks=hooks(receiver.url, timeout=60))
    worker = asyncio.create_task(work_forever(settings, stop))
    try:
        await asyncio.wait_for(receiver.arrived.wait(), 30)
        await posts_to_publish(db, 3)
        await wait_until(db, "select count(*) from created_content "
                             "where status = 'published'", 6)
        assert not receiver.gate.is_set()
        assert await db.fetchval("select count(*) from publisher_events "
                                 "where delivered_at is not null") == 0
        receiver.gate.set()
        await wait_until(db, "select count(*) from publisher_events "
                             "where delivered_at is not null", 6)
    finally:
        stop.set()
        receiver.gate.set()
        await asyncio.wait_for(worker, 30)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 6
    for request in receiver.received:
        verified(request)


async def test_a_run_with_a_dead_endpoint_still_ends_well(
        database_url: str, db: asyncpg.Connection, simulator: str,
        receiver: Receiver) -> None:
    """The endpoint answers 503 to everything: the run publishes and records its posts as
    always, and the events wait for a later run."""
    await posts_to_publish(db, 4)
    receiver.answers = [503] * 10
    summary = await run_once(run_settings(database_url, simulator, receiver))
    assert summary.claimed == 4
    assert not summary.database_failed
    assert len(receiver.received) == 4
    assert await db.fetchval("select count(*) from created_content "
                             "where status = 'published'") == 4
    assert await db.fetchval("select count(*) from publisher_runs") == 1
    assert await db.fetchval("select count(*) from publisher_events where attempts = 1 "
                             "and last_error = 'HTTP 503' and delivered_at is null") == 4

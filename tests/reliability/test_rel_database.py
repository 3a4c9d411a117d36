"""The database connection dropped mid-run: runs finish or stop cleanly, nothing twice or lost."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from pathlib import Path

import asyncpg
import relkit

from helpers import insert_account, insert_posts, sql
from publisher.errors import StoreError
from publisher.store import Store
from publisher.store.postgres import PostgresTransport

KNOWN_TRANSPORT_BUG = "InternalClientError: cannot switch to state"


async def test_connections_terminated_mid_run_lose_and_duplicate_nothing(
        database_url: str) -> None:
    """pg_terminate_backend on every runner connection, 8 times while 2 runners work."""
    result = await relkit.database_drops(database_url, runners=2, posts=1000, accounts=50,
                                         drops=8, latency=0.02, lease=10)
    why = result.explain()
    notes, audit = result.notes, result.audit
    assert notes["drops"] == 8, why
    assert notes["connections_terminated"] >= 8, why
    assert notes["published_before_clean_run"] > 0, why  # work went on between the drops
    # Each run finished (0) or stopped and said why (1: claiming failed, 2: the start-of-run
    # housekeeping failed); none hung (a hang fails inside the scenario).
    assert set(notes["exit_codes"]) <= {0, 1, 2}, why
    for worker, log in notes["failed_logs"].items():
        assert "database" in log, (worker, log)
    # The only crash allowed is the transport bug test_store_errors_are_store_errors shows.
    for worker, trace in notes["tracebacks"].items():
        assert KNOWN_TRANSPORT_BUG in trace.rstrip().splitlines()[-1], (worker, trace)
    assert audit.violations == [], why
    assert audit.duplicates == 0, why
    assert audit.lost == 0, why
    assert set(audit.by_status) <= {"published", "needs_review"}, why
    # needs_review only where "sending" was stamped and the answer could not be written.
    assert audit.sim_accepted == audit.published + audit.needs_review_live, why
    # Every post was sent at most once, so at most one attempt was used: an attempt that
    # could not stamp "sending" (the database was gone) sent nothing and was given back.
    used = [row["attempts"] for row in audit.rows if row["status"] == "published"]
    assert max(used) == 1, (why, sorted(used)[-10:])


async def test_unreachable_database_exits_non_zero_and_claims_nothing(
        database_url: str, db: asyncpg.Connection) -> None:
    """A run whose database cannot be reached exits 1 with a clear message, touching no post.
    (A database name the server does not know is a settings error: exit 2, see
    tests/test_cli_settings.py.)"""
    account = await insert_account(db, access_token_encrypted=relkit.CIPHER.encrypt("t"))
    await insert_posts(db, 3, account_id=account, content=sql("'u ' || random()"))
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    missing = f"postgresql://postgres@127.0.0.1:{port}/publisher"
    with tempfile.TemporaryDirectory() as tmp:
        async with relkit.simulator(relkit.SimConfig()) as sim:
            runner = relkit.Runner(relkit.runner_env(missing, sim, "no-db"), Path(tmp))
            code = await (await runner.start()).wait(60)
            log = runner.log()
    assert code == 1, log  # the run could not work; 2 is kept for bad settings
    assert "Postgres" in log, log
    assert "Traceback" not in log, log
    assert await relkit.count(db, "status = 'scheduled'") == 3


async def test_store_errors_are_store_errors(database_url: str) -> None:
    """Connections terminated under concurrent calls: every failure is a StoreError."""
    admin = await asyncpg.connect(database_url)
    store = Store(await PostgresTransport.connect(database_url, max_size=4))
    escaped: list[str] = []

    async def calls() -> None:
        for _ in range(150):
            try:
                await store.claim("rel-store", {"facebook": 5}, 30)
            except StoreError:
                pass
            except Exception as exc:  # what the run does not expect
                escaped.append(f"{type(exc).__name__}: {exc}")

    async def terminations() -> None:
        for _ in range(10):
            await asyncio.sleep(0.05)
            await admin.fetchval(relkit.TERMINATE)

    try:
        await asyncio.gather(calls(), calls(), calls(), terminations())
        # Afterwards it recovers: a dead pooled connection may fail one more call at most.
        recovered = False
        for _ in range(3):
            try:
                await store.claim("rel-store", {"facebook": 5}, 30)
                recovered = True
                break
            except StoreError:
                continue
            except Exception as exc:
                escaped.append(f"{type(exc).__name__}: {exc}")
    finally:
        await store.close()
        await admin.close()
    assert escaped == []
    assert recovered

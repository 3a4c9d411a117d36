"""Shared fixtures: a real Postgres, a migrated template database, one clone per test.

Postgres is the embedded server from the pgserver wheel (started once per session in a
temporary directory, deleted afterwards), or the server named by TEST_DATABASE_URL. The
migrations are applied once, to a template database; each test gets its own
`CREATE DATABASE ... TEMPLATE` clone, so tests are isolated and the clone costs ~50 ms.

    pg_server        session: the server's maintenance URL (connect here to create databases)
    template_db      session: the name of the migrated template database
    admin_db         session: asyncpg connection to the maintenance database
    make_database    session: async factory, one more migrated (or empty) database -> URL
    database_url     per test: URL of a fresh migrated database (dropped afterwards)
    db               per test: an asyncpg connection to it, for seeding and assertions
    store            per test: publisher.store.Store over PostgresTransport on it
    id_type_database_url  per test, twice: a migrated database whose post ids are bigint
                     (created_content made by our migrations) or uuid (the product's own
                     created_content from tests/product_db.py, made first, then migrated)
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest

from helpers import url_for
from publisher.store import Store
from publisher.store.migrations import apply_migrations
from publisher.store.postgres import PostgresTransport

_SESSION = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Maintenance URL of the Postgres the tests use (embedded unless TEST_DATABASE_URL)."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    import pgserver

    folder = tempfile.mkdtemp(prefix="publisher-tests-")
    pgdata = os.path.join(folder, "pg")
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")  # unix socket; pgserver picks its directory
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
async def admin_db(pg_server: str) -> AsyncIterator[asyncpg.Connection]:
    """Session: a connection to the maintenance database, for CREATE/DROP DATABASE."""
    conn = await asyncpg.connect(pg_server, statement_cache_size=0)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_db(pg_server: str, admin_db: asyncpg.Connection) -> AsyncIterator[str]:
    """Session: name of a database with every migration applied, cloned by each test."""
    name = f"publisher_tmpl_{_SESSION}"
    await admin_db.execute(f'create database "{name}"')
    try:
        await apply_migrations(url_for(pg_server, name))
        yield name
    finally:
        await admin_db.execute(f'drop database if exists "{name}" with (force)')


async def _create(admin_db: asyncpg.Connection, template: str | None) -> str:
    name = f"publisher_t_{_SESSION}_{next(_counter)}"
    source = f' template "{template}"' if template else ""
    await admin_db.execute(f'create database "{name}"{source}')
    return name


@pytest.fixture(scope="session")
async def make_database(
    pg_server: str, admin_db: asyncpg.Connection, template_db: str
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Session: factory `await make_database(empty=False)` -> URL of one more database,
    migrated (a template clone) or empty; all are dropped at the end of the session."""
    created: list[str] = []

    async def make(*, empty: bool = False) -> str:
        name = await _create(admin_db, None if empty else template_db)
        created.append(name)
        return url_for(pg_server, name)

    try:
        yield make
    finally:
        for name in created:
            await admin_db.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
async def database_url(
    pg_server: str, admin_db: asyncpg.Connection, template_db: str
) -> AsyncIterator[str]:
    """URL of a fresh database with the migrations applied, dropped after the test."""
    name = await _create(admin_db, template_db)
    try:
        yield url_for(pg_server, name)
    finally:
        await admin_db.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection to the test's database (superuser), for seeding and checks."""
    conn = await asyncpg.connect(database_url, statement_cache_size=0)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A Store over the direct Postgres transport on the test's database."""
    s = Store(await PostgresTransport.connect(database_url, max_size=2))
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(scope="session")
async def uuid_template(pg_server: str, admin_db: asyncpg.Connection
                        ) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Session: `await uuid_template()` -> name of a database holding the product's own
    schema (uuid post ids, tests/product_db.py), migrated, without the product's rows.
    Built on first use only."""
    built: list[str] = []

    async def get() -> str:
        if not built:
            from product_db import create_product_database

            name = f"publisher_uuid_{_SESSION}"
            await admin_db.execute(f'create database "{name}"')
            built.append(name)
            url = url_for(pg_server, name)
            conn = await asyncpg.connect(url, statement_cache_size=0)
            try:
                await create_product_database(conn)
                await apply_migrations(url)
                await conn.execute("delete from public.created_content")
            finally:
                await conn.close()
        return built[0]

    try:
        yield get
    finally:
        for name in built:
            await admin_db.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(params=["bigint", "uuid"])
async def id_type_database_url(request: pytest.FixtureRequest, pg_server: str,
                               admin_db: asyncpg.Connection, template_db: str,
                               uuid_template: Callable[[], Awaitable[str]]) -> AsyncIterator[str]:
    """URL of a fresh migrated database, once with bigint post ids and once with uuid."""
    template = template_db if request.param == "bigint" else await uuid_template()
    name = await _create(admin_db, template)
    try:
        yield url_for(pg_server, name)
    finally:
        await admin_db.execute(f'drop database if exists "{name}" with (force)')

"""Direct Postgres transport (asyncpg), also used for the embedded database.

The statement cache is off so it works through Supabase's pooler in transaction mode,
which refuses prepared statements.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote, unquote_plus

import asyncpg

from publisher.errors import ConfigError, StoreError
from publisher.store.contract import FUNCTIONS

# The connection, not the statement, failed: a dropped backend (pg_terminate_backend,
# a restart, a pooler hiccup) or a protocol state asyncpg cannot go on from.
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresConnectionError,
                      asyncpg.exceptions.InterfaceError, asyncpg.CannotConnectNowError,
                      asyncpg.exceptions.InternalClientError,
                      asyncpg.exceptions.OperatorInterventionError)


# What asyncpg raises for a URL it cannot use (a port out of range, an unknown sslmode)
# or credentials the server refuses (wrong password, unknown role or database): a setting
# to fix, not an outage to wait out. (A missing socket or certificate file is an OSError
# like any unreachable server: exit 1.)
_SETTING_ERRORS = (ValueError, OverflowError,
                   asyncpg.exceptions.ClientConfigurationError,
                   asyncpg.InvalidAuthorizationSpecificationError,
                   asyncpg.InvalidCatalogNameError)


def _statement(function: str) -> str:
    spec = FUNCTIONS[function]
    args = ", ".join(f"{name} => ${i}::{sql_type}"
                     for i, (name, sql_type) in enumerate(spec.params, start=1))
    return f"select public.{spec.name}({args})"


_STATEMENTS = {name: _statement(name) for name in FUNCTIONS}


def _encode(sql_type: str, value: Any) -> Any:
    if value is None:
        return None
    if sql_type == "jsonb":
        return json.dumps(value, separators=(",", ":"), default=str)
    if sql_type == "uuid":
        return str(value)
    if sql_type.startswith("timestamp") and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


class PostgresTransport:
    """Calls the contract functions over a small asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._listener: Any = None

    @classmethod
    async def connect(cls, url: str, *, max_size: int = 4,
                      setting: str = "DATABASE_URL") -> PostgresTransport:
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=max_size,
                                             statement_cache_size=0, command_timeout=60)
        except _SETTING_ERRORS as exc:
            # The URL or its credentials, not the network: retrying cannot help (exit 2).
            raise ConfigError(f"{setting} was refused: {type(exc).__name__}: "
                              f"{_without_secrets(str(exc), url)}") from None
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to Postgres: {type(exc).__name__}: "
                             f"{_without_secrets(str(exc), url)}") from None
        return cls(pool)

    async def call(self, function: str, params: Mapping[str, Any]) -> Any:
        spec = FUNCTIONS[function]
        args = [_encode(sql_type, params[name]) for name, sql_type in spec.params]
        # One retry on a fresh connection when the connection broke. Safe for every contract
        # function: writes are fenced or idempotent, and a claim whose answer was lost only
        # holds its posts until their lease runs out (nothing was sent for them).
        for attempt in (1, 2):
            try:
                value = await self._fetch(_STATEMENTS[function], args)
                break
            except _CONNECTION_ERRORS as exc:
                if attempt == 2:
                    raise StoreError(f"database connection lost during {function}: "
                                     f"{type(exc).__name__}") from exc
            except asyncpg.PostgresError as exc:
                raise StoreError(f"{function} failed in the database: {exc}") from exc
        if spec.returns == "jsonb" and isinstance(value, str):
            return json.loads(value)
        return value

    async def _fetch(self, statement: str, args: list[Any]) -> Any:
        """fetchval on a pooled connection; a connection that broke is thrown away, never
        handed back to the pool for the next call to trip over."""
        conn = await self._pool.acquire()
        try:
            return await conn.fetchval(statement, *args)
        except _CONNECTION_ERRORS:
            conn.terminate()
            raise
        finally:
            await self._pool.release(conn)

    async def listen(self, channel: str, callback: Callable[[], None]) -> bool:
        """Calls back on each NOTIFY on channel; False where a session cannot be held
        (Supabase's pooler in transaction mode refuses LISTEN): then callers poll."""
        try:
            conn = await self._pool.acquire()
            await conn.add_listener(channel, lambda *_: callback())
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError):
            return False
        self._listener = conn
        return True

    async def close(self) -> None:
        if self._listener is not None:
            await self._pool.release(self._listener)
            self._listener = None
        await self._pool.close()


def _without_secrets(message: str, url: str) -> str:
    """asyncpg messages can echo the DSN or a part of it; never let its password through,
    raw or percent-decoded. One line, so the CLI prints one line."""
    message = message.replace(url, "<DATABASE_URL>")
    for secret in _passwords(url):
        message = message.replace(secret, "***")
    return " ".join(message.split())


def _passwords(url: str) -> set[str]:
    netloc = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    userinfo = netloc.rpartition("@")[0]
    found = {userinfo.partition(":")[2]} if ":" in userinfo else set()
    found |= set(re.findall(r"[?&]password=([^&#]*)", url))
    return {variant for raw in found if raw
            for variant in (raw, unquote(raw), unquote_plus(raw)) if variant}

"""The embedded local database: a Postgres 16 server from the pgserver wheel.

Used when neither SUPABASE_URL nor DATABASE_URL is set (never on a deployment). The data
lives under PUBLISHER_DATA_DIR and the server keeps running between commands, so the next
`publisher run` starts in milliseconds.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

DATABASE = "publisher"


def _start(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, cron): harmless.
        warnings.simplefilter("ignore")
        import pgserver  # heavy import: only when the embedded database is used

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(str(pgdata), cleanup_mode=None)  # type: ignore[attr-defined]


def server_url(pgdata: Path, database: str) -> str:
    return f"postgresql://postgres@/{database}?host={quote(str(pgdata))}"


async def embedded_url(data_dir: Path, database: str = DATABASE) -> str:
    """Starts the server if needed, creates the database if needed, returns its URL."""
    pgdata = (data_dir / "pgdata").resolve()
    await asyncio.to_thread(_start, pgdata)
    conn = await asyncpg.connect(server_url(pgdata, "postgres"))
    try:
        if not await conn.fetchval("select 1 from pg_database where datname = $1", database):
            quoted = await conn.fetchval("select quote_ident($1)", database)
            await conn.execute(f"create database {quoted}")
    finally:
        await conn.close()
    return server_url(pgdata, database)

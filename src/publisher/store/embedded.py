"""The embedded local database: a Postgres 16 server from the pgserver wheel.

Used when neither SUPABASE_URL nor DATABASE_URL is set (never on a deployment). The data
lives under PUBLISHER_DATA_DIR and the server keeps running between commands, so the second
`publisher run` starts in milliseconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE = "publisher"


def _start(data_dir: Path) -> Any:
    import pgserver  # heavy import: only when the embedded database is used

    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(str((data_dir / "pgdata").resolve()), cleanup_mode=None)


async def embedded_url(data_dir: Path, database: str = DATABASE) -> str:
    """Starts the server if needed, creates the database if needed, returns its URL."""
    server = await asyncio.to_thread(_start, data_dir)
    exists = await asyncio.to_thread(
        server.psql, f"select 1 from pg_database where datname = '{database}';")
    if "(1 row)" not in exists:
        await asyncio.to_thread(server.psql, f'create database "{database}";')
    socket_dir = str((data_dir / "pgdata").resolve())
    return f"postgresql://postgres@/{database}?host={quote(socket_dir)}"

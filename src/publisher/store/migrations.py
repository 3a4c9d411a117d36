"""Applies supabase/migrations/*.sql to any Postgres URL, each file once.

The files themselves are idempotent; the ledger table only saves re-running them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import asyncpg

from publisher.errors import ConfigError, StoreError

_LEDGER = """
create table if not exists public.publisher_schema_migrations (
  name text primary key,
  checksum text not null,
  applied_at timestamptz not null default now()
);
-- Not for end users: Supabase's default grants would otherwise expose it through PostgREST.
alter table public.publisher_schema_migrations enable row level security;
revoke all on public.publisher_schema_migrations from public;
do $$
declare r text;
begin
  foreach r in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('revoke all on public.publisher_schema_migrations from %I', r);
    end if;
  end loop;
end
$$;
"""


def migrations_dir() -> Path:
    configured = os.environ.get("PUBLISHER_MIGRATIONS_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[3] / "supabase" / "migrations")
    candidates.append(Path.cwd() / "supabase" / "migrations")
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise ConfigError("cannot find supabase/migrations: run from the repository or set "
                      "PUBLISHER_MIGRATIONS_DIR")


async def apply_migrations(url: str, folder: Path | None = None) -> list[str]:
    """Applies the files not yet applied (or changed since); returns their names."""
    folder = folder or migrations_dir()
    try:
        conn = await asyncpg.connect(url, statement_cache_size=0)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"cannot connect to Postgres to migrate: {type(exc).__name__}") from None
    applied: list[str] = []
    try:
        # One migrator at a time; transaction-scoped so it works through a pooler.
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock(7243001)")
            await conn.execute(_LEDGER)
            done = {r["name"]: r["checksum"] for r in
                    await conn.fetch("select name, checksum from publisher_schema_migrations")}
            for path in sorted(folder.glob("*.sql")):
                sql = path.read_text()
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if done.get(path.name) == checksum:
                    continue
                await conn.execute(sql)
                await conn.execute(
                    "insert into publisher_schema_migrations (name, checksum) values ($1, $2) "
                    "on conflict (name) do update set checksum = $2, applied_at = now()",
                    path.name, checksum)
                applied.append(path.name)
    except asyncpg.PostgresError as exc:
        raise StoreError(f"migration failed: {exc}") from exc
    finally:
        await conn.close()
    return applied

"""Applies supabase/migrations/*.sql to any Postgres URL, each file once.

One ledger with the Supabase CLI: supabase_migrations.schema_migrations (version, name,
statements), as `supabase db push` keeps it, so a database migrated by either tool is up
to date for the other and switching re-applies nothing. It is created where it does not
exist yet (plain Postgres, a project never pushed to), so a later `supabase db push` finds
our files applied.

A file already in the ledger whose text has changed since (compared without whitespace and
semicolons, so the CLI's statement splitting and ours compare equal) is applied again: the
files are idempotent. Databases migrated before the shared ledger keep their rows in
public.publisher_schema_migrations (name, sha256); they are read once and carried over.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from publisher.errors import ConfigError, StoreError

# As the Supabase CLI creates it (pkg/migration/history.go), so either may come first.
_LEDGER = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key
);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;
"""
_OLD_LEDGER = "public.publisher_schema_migrations"
_FILE_NAME = re.compile(r"^([0-9]+)_(.*)\.sql$")
_NOT_CONTENT = re.compile(r"[\s;]+")


@dataclass(frozen=True, kw_only=True, slots=True)
class MigrationFile:
    """One file of supabase/migrations, named <version>_<name>.sql as the CLI names them."""

    path: Path
    version: str
    name: str
    text: str

    @classmethod
    def read(cls, path: Path) -> MigrationFile:
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ConfigError(f"migration file {path.name} is not named <version>_<name>.sql")
        return cls(path=path, version=match[1], name=match[2], text=path.read_text())

    @property
    def checksum(self) -> str:
        """sha256 of the text: the key of the old publisher_schema_migrations ledger."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        return content_fingerprint([self.text])


@dataclass(frozen=True, kw_only=True, slots=True)
class FileState:
    """Where one file stands in a database: 'applied', 'changed' (applied, its text has
    changed since: applied again next time), 'recorded_in_old_ledger' (applied before the
    shared ledger, carried over next time) or 'pending'."""

    file: MigrationFile
    state: str


def content_fingerprint(statements: list[str]) -> str:
    """The text without whitespace and semicolons: the same for a file and for the
    statements any splitter (the CLI's or ours) made of it."""
    return hashlib.sha256(_NOT_CONTENT.sub("", "".join(statements)).encode()).hexdigest()


def split_statements(sql: str) -> list[str]:
    """The file's statements, as the CLI stores them: split at each semicolon outside
    quotes, dollar quotes and comments, trimmed, without the semicolon."""
    statements: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "'\"":
            end = sql.find(ch, i + 1)
            while end >= 0 and sql.startswith(ch * 2, end):  # '' inside a literal
                end = sql.find(ch, end + 2)
            i = n if end < 0 else end + 1
        elif ch == "$" and (tag := re.match(r"\$[A-Za-z_0-9]*\$", sql[i:])):
            end = sql.find(tag[0], i + len(tag[0]))
            i = n if end < 0 else end + len(tag[0])
        elif ch == ";":
            statements.append(sql[start:i].strip())
            start = i = i + 1
        else:
            i += 1
    statements.append(sql[start:].strip())
    return [s for s in statements if s]


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


def migration_files(folder: Path | None = None) -> list[MigrationFile]:
    return [MigrationFile.read(p) for p in sorted((folder or migrations_dir()).glob("*.sql"))]


async def file_states(conn: asyncpg.Connection,
                      files: list[MigrationFile]) -> list[FileState]:
    """Where each file stands, read from the ledgers (for `publisher doctor`); changes
    nothing. A database with neither ledger has every file pending."""
    ledger: dict[str, str] = {}
    if await conn.fetchval("select to_regclass('supabase_migrations.schema_migrations')"):
        ledger = {r["version"]: content_fingerprint(list(r["statements"] or []))
                  for r in await conn.fetch(
                      "select version, statements from supabase_migrations.schema_migrations "
                      "where version = any($1::text[])", [f.version for f in files])}
    old: dict[str, str] = {}
    if await conn.fetchval("select to_regclass($1)", _OLD_LEDGER):
        old = {r["name"]: r["checksum"] for r in
               await conn.fetch(f"select name, checksum from {_OLD_LEDGER}")}  # noqa: S608
    states = []
    for f in files:
        if f.version in ledger:
            state = "applied" if ledger[f.version] == f.fingerprint else "changed"
        elif f.path.name in old:
            state = "recorded_in_old_ledger" if old[f.path.name] == f.checksum else "changed"
        else:
            state = "pending"
        states.append(FileState(file=f, state=state))
    return states


async def apply_migrations(url: str, folder: Path | None = None) -> list[str]:
    """Applies the files not yet applied (or changed since); returns their names."""
    files = migration_files(folder)
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
            for entry in await file_states(conn, files):
                if entry.state in ("pending", "changed"):
                    await conn.execute(entry.file.text)
                    applied.append(entry.file.path.name)
                if entry.state != "applied":
                    await _record(conn, entry.file)
    except asyncpg.PostgresError as exc:
        raise StoreError(f"migration failed: {exc}") from exc
    finally:
        await conn.close()
    return applied


async def _record(conn: asyncpg.Connection, file: MigrationFile) -> None:
    await conn.execute(
        "insert into supabase_migrations.schema_migrations (version, name, statements) "
        "values ($1, $2, $3) on conflict (version) do update "
        "set name = excluded.name, statements = excluded.statements",
        file.version, file.name, split_statements(file.text))

"""Supabase fit: what its database advisors check, and one migration ledger with its CLI."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from supabase_advisor import NOTHING_FOUND, SUPABASE_DEFAULT_PRIVILEGES, advisor_findings

from publisher.store.migrations import (
    apply_migrations,
    content_fingerprint,
    migration_files,
    migrations_dir,
    split_statements,
)


@pytest.fixture
async def supabase_like(
        make_database: Callable[..., Awaitable[str]]) -> AsyncIterator[asyncpg.Connection]:
    """A migrated database that had Supabase's default privileges before the migrations."""
    url = await make_database(empty=True)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        await conn.execute(SUPABASE_DEFAULT_PRIVILEGES)
        await apply_migrations(url)
        yield conn
    finally:
        await conn.close()


async def test_the_advisor_finds_nothing(supabase_like: asyncpg.Connection) -> None:
    """No function without a fixed search_path, no sequence or trigger function open to
    anon/authenticated, no foreign key without an index (before: 17, 3, 1 and 1)."""
    assert await advisor_findings(supabase_like) == NOTHING_FOUND


async def test_every_function_has_an_empty_search_path(db: asyncpg.Connection) -> None:
    """search_path is '' (not just set): every name in the bodies is schema-qualified."""
    configs = {r["proname"]: r["proconfig"] for r in await db.fetch(
        "select proname::text, proconfig from pg_proc "
        "where pronamespace = 'public'::regnamespace")}
    assert configs
    assert {name: config for name, config in configs.items()
            if config != ['search_path=""']} == {}


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_end_users_cannot_take_ids_from_our_sequences(
        supabase_like: asyncpg.Connection, role: str) -> None:
    """Under Supabase's default privileges, anon cannot call nextval on our sequences."""
    sequences = [r[0] for r in await supabase_like.fetch(
        "select oid::regclass::text from pg_class "
        "where relkind = 'S' and relnamespace = 'public'::regnamespace")]
    assert "publish_attempts_id_seq" in sequences
    for sequence in sequences:
        async with supabase_like.transaction():
            await supabase_like.execute(f"set local role {role}")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await supabase_like.fetchval("select nextval($1::regclass)", sequence)


async def test_the_account_foreign_key_has_its_index(db: asyncpg.Connection) -> None:
    """Deleting an account finds its posts through an index, not a scan of every post."""
    await db.execute("set enable_seqscan = off")
    plan = "\n".join(r[0] for r in await db.fetch(
        "explain select 1 from created_content "
        "where account_id = '00000000-0000-0000-0000-000000000001'"))
    assert "created_content_account" in plan


# --- One ledger with the Supabase CLI -------------------------------------------------

CLI_LEDGER = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key
);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;
"""


async def _as_the_cli_would(url: str, folder: Path) -> None:
    """`supabase db push`: each file's statements, then its row in the CLI's ledger. The
    statements are cut the CLI's way, not ours (a comment line stays with the statement
    after it; here: the whole file as one, trailing semicolon trimmed)."""
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        await conn.execute(CLI_LEDGER)
        for file in migration_files(folder):
            async with conn.transaction():
                await conn.execute(file.text)
                await conn.execute(
                    "insert into supabase_migrations.schema_migrations "
                    "(version, name, statements) values ($1, $2, $3)",
                    file.version, file.name, [file.text.strip().rstrip(";")])
    finally:
        await conn.close()


async def test_publisher_migrate_keeps_the_cli_ledger(db: asyncpg.Connection) -> None:
    """Each file has its row as the CLI writes it: version, name, the statements."""
    rows = {r["version"]: r for r in await db.fetch(
        "select version, name, statements from supabase_migrations.schema_migrations")}
    files = migration_files()
    assert sorted(rows) == [f.version for f in files]
    for file in files:
        row = rows[file.version]
        assert row["name"] == file.name
        assert content_fingerprint(row["statements"]) == file.fingerprint
        assert not any(s.endswith(";") for s in row["statements"])


async def test_files_the_cli_applied_are_not_applied_again(
        make_database: Callable[..., Awaitable[str]]) -> None:
    """Switching from `supabase db push` to `publisher migrate` re-applies nothing."""
    url = await make_database(empty=True)
    await _as_the_cli_would(url, migrations_dir())
    assert await apply_migrations(url) == []


async def test_a_changed_file_is_applied_again(
        make_database: Callable[..., Awaitable[str]], tmp_path: Path) -> None:
    """A file whose text changed since it was applied is applied again (they are
    idempotent); whitespace alone is no change."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    url = await make_database(empty=True)
    assert len(await apply_migrations(url, folder)) == len(migration_files(folder))
    last = sorted(folder.glob("*.sql"))[-1]
    last.write_text(last.read_text() + "\n\n   \n")
    assert await apply_migrations(url, folder) == []
    last.write_text(last.read_text() + "\nselect 1;\n")
    assert await apply_migrations(url, folder) == [last.name]
    assert await apply_migrations(url, folder) == []


async def test_the_old_ledger_is_carried_over(
        make_database: Callable[..., Awaitable[str]]) -> None:
    """A database migrated before the shared ledger (publisher_schema_migrations) gets its
    rows in the CLI's ledger and nothing applied again."""
    url = await make_database(empty=True)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        await conn.execute("create table public.publisher_schema_migrations "
                           "(name text primary key, checksum text not null)")
        for file in migration_files():
            await conn.execute(file.text)
            await conn.execute("insert into public.publisher_schema_migrations values ($1, $2)",
                               file.path.name, file.checksum)
        assert await apply_migrations(url) == []
        assert await conn.fetchval(
            "select count(*) from supabase_migrations.schema_migrations") == len(
                migration_files())
    finally:
        await conn.close()


def test_split_statements_as_the_cli_does() -> None:
    """Semicolons in quotes, dollar quotes and comments do not end a statement."""
    sql = ("-- a; comment\ncreate function f() returns text language sql as $$ select ';' $$;\n"
           "select 'it''s; fine', \"odd;name\" /* c; */ from t;\n"
           "do $body$ begin perform 1; end $body$;\n\n")
    assert split_statements(sql) == [
        "-- a; comment\ncreate function f() returns text language sql as $$ select ';' $$",
        "select 'it''s; fine', \"odd;name\" /* c; */ from t",
        "do $body$ begin perform 1; end $body$"]

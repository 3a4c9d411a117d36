"""The current contract in one place: supabase/schemas/ builds what the migrations build.

Three databases compared catalog to catalog (scripts/schemadump/catalog.py: tables, columns,
constraints, indexes, functions, triggers, RLS, policies, privileges per role, domains,
publications, seeded rows): one from the migrations, one from the declarative files, one
upgraded from the migrations as they were last deployed by only the files added since (what
`supabase db push` runs there). Each failure prints the difference and the command to fix it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from supabase_advisor import SUPABASE_DEFAULT_PRIVILEGES

from publisher.store.migrations import apply_migrations

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from schemadump import build, contract
from schemadump.catalog import Catalog, diff, snapshot

MakeDatabase = Callable[..., Awaitable[str]]
REGENERATE = "supabase/schemas/ is not the current contract: run scripts/schema-dump"


async def _catalog(url: str) -> Catalog:
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        return await snapshot(conn)
    finally:
        await conn.close()


def _report(lines: list[str], fix: str) -> str:
    return "\n".join([fix, *lines[:400]])


@pytest.fixture(scope="module")
async def migrated(make_database: MakeDatabase) -> Catalog:
    """The catalog every migration builds (a clone of the session's migrated template)."""
    return await _catalog(await make_database())


@pytest.fixture
async def declarative_url(make_database: MakeDatabase) -> str:
    """An empty database with supabase/schemas/*.sql applied in file-name order."""
    url = await make_database(empty=True)
    await build.declarative(url)
    return url


async def test_the_declarative_files_build_what_the_migrations_build(
        migrated: Catalog, declarative_url: str) -> None:
    """supabase/schemas/*.sql on an empty database gives the migrations' catalog."""
    assert sorted(p.name for p in build.SCHEMAS.glob("*.sql"))[0] == "00_roles.sql"
    lines = diff(migrated, await _catalog(declarative_url), left_name="migrations",
                 right_name="supabase/schemas")
    assert not lines, _report(lines, REGENERATE)


async def test_the_files_also_agree_under_supabase_default_privileges(
        make_database: MakeDatabase) -> None:
    """Where new objects are granted to the API roles by default (a Supabase project),
    the declarative files revoke as the migrations do: same privileges either way."""
    by_migrations, by_files = await make_database(empty=True), await make_database(empty=True)
    for url in (by_migrations, by_files):
        conn = await asyncpg.connect(url, statement_cache_size=0)
        try:
            await conn.execute(SUPABASE_DEFAULT_PRIVILEGES)
        finally:
            await conn.close()
    await apply_migrations(by_migrations)
    await build.declarative(by_files)
    migrated, declared = await _catalog(by_migrations), await _catalog(by_files)
    assert "table public.created_content to anon" not in declared["privileges"]
    lines = diff(migrated, declared, left_name="migrations", right_name="supabase/schemas")
    assert not lines, _report(lines, REGENERATE)


async def test_the_comparison_sees_a_changed_function_grant_and_policy(
        migrated: Catalog, declarative_url: str) -> None:
    """The check is not vacuous: a setting, a grant and a policy changed are reported."""
    conn = await asyncpg.connect(declarative_url, statement_cache_size=0)
    try:
        await conn.execute(
            "alter function public.mark_sending(text, jsonb) set work_mem = '8MB';"
            "grant select on public.publisher_runs to anon;"
            "drop policy publisher_owner_select on public.social_accounts;")
    finally:
        await conn.close()
    report = "\n".join(diff(migrated, await _catalog(declarative_url),
                            left_name="migrations", right_name="changed"))
    assert "functions: public.mark_sending(text,jsonb): differs" in report
    assert "+ SET work_mem TO '8MB'" in report
    assert "privileges: table public.publisher_runs to anon: only in changed: select" in report
    assert "policies: public.social_accounts.publisher_owner_select: only in migrations" \
        in report


@pytest.fixture
def deployed_history() -> None:
    if (missing := build.deployed_history_missing()) is not None:
        pytest.skip(missing)


@pytest.mark.usefixtures("deployed_history")
async def test_a_deployed_database_upgrades_to_the_fresh_catalog(
        migrated: Catalog, make_database: MakeDatabase) -> None:
    """The migrations as deployed (commit build.DEPLOYED), then only the files added since,
    as `supabase db push` would: the same catalog as a fresh install, ledgers aside."""
    url = await make_database(empty=True)
    new = await build.upgraded(url)
    assert contract.NAME in new
    lines = diff(migrated, await _catalog(url), left_name="fresh",
                 right_name=f"upgraded from {build.DEPLOYED}")
    assert not lines, _report(
        lines, "a deployed database would not get these: run "
               "scripts/schema-dump --contract-migration (functions), or write a migration")


@pytest.mark.usefixtures("deployed_history")
async def test_the_contract_migration_is_what_the_generator_writes_now(pg_server: str) -> None:
    """20261207001300_current_contract.sql defines exactly the functions that an upgrade
    would otherwise miss, as they are in the files before it (not an older copy that would
    undo a later edit of theirs)."""
    text, found = await contract.generate(pg_server)
    assert contract.PATH.read_text() == text, _report(
        found, f"{contract.NAME} is out of date: run scripts/schema-dump --contract-migration")

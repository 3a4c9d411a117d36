"""The migrations: idempotent, and locked away from Supabase's end-user roles."""

from __future__ import annotations

import asyncpg
import pytest

from helpers import insert_account, insert_post
from publisher.store.contract import FUNCTIONS
from publisher.store.migrations import apply_migrations, migrations_dir

TABLES = ("social_accounts", "created_content", "publish_attempts", "publisher_runs")
# Read by their owners, rows limited by RLS (20261207000500_owner_access.sql).
OWNER_READABLE = ("created_content", "publish_attempts")


async def _schema_fingerprint(db: asyncpg.Connection) -> list[tuple[str, ...]]:
    rows = await db.fetch(
        """
        select 'column' as kind, table_name::text as name,
               column_name || ' ' || data_type || ' ' || is_nullable as detail
          from information_schema.columns where table_schema = 'public'
        union all
        select 'function', p.proname::text, pg_get_function_identity_arguments(p.oid)
          from pg_proc p where p.pronamespace = 'public'::regnamespace
        union all
        select 'index', indexname::text, indexdef from pg_indexes where schemaname = 'public'
        union all
        select 'grant', table_name::text, grantee || ' ' || privilege_type
          from information_schema.role_table_grants where table_schema = 'public'
        order by 1, 2, 3
        """)
    return [tuple(r) for r in rows]


async def test_apply_migrations_again_is_a_no_op(database_url: str,
                                                 db: asyncpg.Connection) -> None:
    """Applying the migrations to a migrated database changes nothing and applies nothing."""
    before = await _schema_fingerprint(db)
    assert await apply_migrations(database_url) == []
    assert await _schema_fingerprint(db) == before
    ledger = await db.fetch("select version || '_' || name || '.sql' as file "
                            "from supabase_migrations.schema_migrations order by version")
    assert [r["file"] for r in ledger] == sorted(p.name for p in migrations_dir().glob("*.sql"))


async def test_migration_files_are_idempotent(db: asyncpg.Connection) -> None:
    """Re-executing every migration file's text on a migrated database succeeds, keeps data."""
    account = await insert_account(db)
    post = await insert_post(db, account_id=account)
    before = await _schema_fingerprint(db)
    files = sorted(migrations_dir().glob("*.sql"))
    assert files, "no migration files found"
    for _ in range(2):
        for path in files:
            await db.execute(path.read_text())
    assert await _schema_fingerprint(db) == before
    assert await db.fetchval("select account_id from created_content where id = $1",
                             post) is not None


async def test_migrations_apply_to_an_empty_database_twice(make_database) -> None:
    """On an empty database the first apply runs every file, the second none."""
    url = await make_database(empty=True)
    assert await apply_migrations(url) == sorted(p.name for p in migrations_dir().glob("*.sql"))
    assert await apply_migrations(url) == []
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select count(*) from pg_proc "
                                   "where pronamespace = 'public'::regnamespace "
                                   "and prorettype <> 'trigger'::regtype") == len(FUNCTIONS)
    finally:
        await conn.close()


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_end_user_roles_cannot_read_tables(db: asyncpg.Connection, role: str) -> None:
    """anon and authenticated get permission denied on every table, tokens included
    (authenticated reads its own posts and attempts: tests/store/test_owner_access.py)."""
    await insert_account(db, access_token_encrypted="v1:abc:secret")
    for table in TABLES:
        if role == "authenticated" and table in OWNER_READABLE:
            continue
        async with db.transaction():
            await db.execute(f"set local role {role}")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await db.fetch(f"select * from public.{table}")  # noqa: S608 - fixed names


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_end_user_roles_cannot_write_tables(db: asyncpg.Connection, role: str) -> None:
    """anon and authenticated cannot insert posts or update accounts."""
    async with db.transaction():
        await db.execute(f"set local role {role}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute("insert into public.created_content (platform) values ('facebook')")
    async with db.transaction():
        await db.execute(f"set local role {role}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute("update public.social_accounts set status = 'active'")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_end_user_roles_cannot_claim(db: asyncpg.Connection, role: str) -> None:
    """anon and authenticated are denied execute on claim_due_posts; nothing is claimed."""
    post = await insert_post(db)
    async with db.transaction():
        await db.execute(f"set local role {role}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError,
                           match="permission denied for function claim_due_posts"):
            await db.fetchval("select claim_due_posts('intruder', '{\"facebook\": 10}', 60)")
    assert await db.fetchval("select status from created_content where id = $1",
                             post) == "scheduled"


@pytest.mark.parametrize("role", ["anon", "authenticated", "public"])
async def test_no_contract_function_is_executable_by_end_users(db: asyncpg.Connection,
                                                               role: str) -> None:
    """No contract function grants EXECUTE to anon, authenticated or PUBLIC."""
    rows = await db.fetch(
        """
        select p.proname::text as name, a.grantee
          from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
         where p.pronamespace = 'public'::regnamespace and p.proname = any($1::text[])
           and a.privilege_type = 'EXECUTE'
        """, list(FUNCTIONS))
    grantee = 0 if role == "public" else await db.fetchval(
        "select oid from pg_roles where rolname = $1", role)
    allowed = sorted(r["name"] for r in rows if r["grantee"] == grantee)
    assert allowed == []
    assert {r["name"] for r in rows} == set(FUNCTIONS)  # each is granted to someone


async def test_row_level_security_is_on_for_every_table(db: asyncpg.Connection) -> None:
    """RLS is enabled on the four tables (relrowsecurity)."""
    rows = await db.fetch(
        "select relname::text, relrowsecurity from pg_class "
        "where relnamespace = 'public'::regnamespace and relname = any($1::text[])",
        list(TABLES))
    assert {r["relname"]: r["relrowsecurity"] for r in rows} == dict.fromkeys(TABLES, True)


async def test_service_role_can_run_the_contract(db: asyncpg.Connection) -> None:
    """service_role executes claim_due_posts and record_outcomes and sees the posts."""
    account = await insert_account(db)
    post = await insert_post(db, account_id=account)
    async with db.transaction():
        await db.execute("set local role service_role")
        claimed = await db.fetchval(
            "select claim_due_posts('svc', '{\"facebook\": 10}', 60)::text")
        assert f'"id": {post}' in claimed
        await db.fetchval(
            "select record_outcomes('svc', $1::jsonb)",
            f'[{{"id": {post}, "attempt": 1, "status": "published", "outcome": "published"}}]')
        await db.fetchval("select record_run('svc', now(), '{}')")
        assert await db.fetchval("select count(*) from publish_attempts") == 1
    assert await db.fetchval("select status from created_content where id = $1",
                             post) == "published"


async def test_supabase_default_privileges_do_not_leak(make_database) -> None:
    """Under Supabase's default grants to the API roles, tables and functions stay locked."""
    url = await make_database(empty=True)
    conn = await asyncpg.connect(url)
    try:
        # A fresh Supabase project grants everything new in public to the API roles.
        await conn.execute(
            "alter default privileges in schema public grant all on tables "
            "to anon, authenticated, service_role; "
            "alter default privileges in schema public grant all on functions "
            "to anon, authenticated, service_role; "
            "alter default privileges in schema public grant all on sequences "
            "to anon, authenticated, service_role")
    finally:
        await conn.close()
    await apply_migrations(url)
    conn = await asyncpg.connect(url)
    try:
        for role in ("anon", "authenticated"):
            for table in TABLES:
                assert await conn.fetchval(
                    "select has_table_privilege($1, $2, 'select')", role, f"public.{table}"
                ) == (role == "authenticated" and table in OWNER_READABLE)
            for name in FUNCTIONS:
                assert not await conn.fetchval(
                    "select has_function_privilege($1, p.oid, 'execute') from pg_proc p "
                    "where p.proname = $2 and p.pronamespace = 'public'::regnamespace",
                    role, name), f"{role} may execute {name}"
    finally:
        await conn.close()


async def test_migration_ledger_is_not_exposed_to_end_users(make_database) -> None:
    """Under Supabase's default grants, anon and authenticated cannot reach the ledger."""
    url = await make_database(empty=True)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("alter default privileges in schema public grant all on tables "
                           "to anon, authenticated, service_role")
        await apply_migrations(url)
        for role in ("anon", "authenticated"):
            assert not await conn.fetchval(
                "select has_schema_privilege($1, 'supabase_migrations', 'usage')", role)
    finally:
        await conn.close()

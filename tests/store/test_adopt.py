"""Installing into the product's own database: add-only on the tables it already has."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from supabase_advisor import NOTHING_FOUND, SUPABASE_DEFAULT_PRIVILEGES, advisor_findings

from helpers import insert_account, insert_post, sql
from product_db import USER_A, USER_B, product_database_url  # noqa: F401 - the fixture
from publisher.settings import PLATFORMS
from publisher.store import Store
from publisher.store.migrations import apply_migrations, migration_files, migrations_dir
from publisher.store.postgres import PostgresTransport

# What the product had on created_content before the publisher came.
PRODUCT_COLUMNS = ("id", "user_id", "status", "platform", "content", "scheduled_time",
                   "timezone", "media_url", "god_mode_metadata", "created_at", "updated_at")
# The last commit whose migrations were released before adoption (0100-0400).
RELEASED = "1b2bc4d"


async def _catalog(conn: asyncpg.Connection) -> dict[str, Any]:
    """The product's side of created_content: its columns, constraints, indexes, grants,
    policies, row level security and rows."""
    return {
        "columns": [tuple(r) for r in await conn.fetch(
            "select column_name::text, data_type::text, is_nullable::text, column_default "
            "from information_schema.columns where table_schema = 'public' "
            "and table_name = 'created_content' and column_name = any($1::text[]) "
            "order by column_name", list(PRODUCT_COLUMNS))],
        "constraints": {tuple(r) for r in await conn.fetch(
            "select conname::text, pg_get_constraintdef(oid) from pg_constraint "
            "where conrelid = 'public.created_content'::regclass")},
        "indexes": {tuple(r) for r in await conn.fetch(
            "select indexname::text, indexdef from pg_indexes "
            "where schemaname = 'public' and tablename = 'created_content'")},
        "grants": {tuple(r) for r in await conn.fetch(
            "select grantee::text, privilege_type::text "
            "from information_schema.role_table_grants "
            "where table_schema = 'public' and table_name = 'created_content'")},
        "policies": sorted(tuple(r) for r in await conn.fetch(
            "select policyname::text, roles::text, cmd::text, qual, with_check from pg_policies "
            "where tablename = 'created_content'")),
        "rls": await conn.fetchval("select (relrowsecurity, relforcerowsecurity)::text "
                                   "from pg_class where oid = 'public.created_content'::regclass"),
        "rows": sorted(tuple(map(str, r)) for r in await conn.fetch(
            f"select {', '.join(PRODUCT_COLUMNS)} from public.created_content")),  # noqa: S608
    }


@pytest.fixture
async def product(product_database_url: str) -> AsyncIterator[asyncpg.Connection]:  # noqa: F811
    conn = await asyncpg.connect(product_database_url, statement_cache_size=0)
    try:
        yield conn
    finally:
        await conn.close()


async def test_migrate_installs_into_the_products_database(
        product_database_url: str, product: asyncpg.Connection,  # noqa: F811
        db: asyncpg.Connection) -> None:
    """Every file applies over the product's created_content (uuid ids, its own names and
    statuses) and it ends with every column of ours; before: "column priority does not
    exist"."""
    applied = await apply_migrations(product_database_url)
    assert applied == [f.path.name for f in migration_files()]
    ours = await _columns(db)
    theirs = await _columns(product)
    assert {name: kind for name, kind in ours.items() if theirs.get(name) != kind} == {
        "id": "bigint"}  # the id keeps the product's type
    assert theirs["id"] == "uuid"
    assert await product.fetchval("select format_type(typbasetype, null) from pg_type "
                                  "where oid = 'public.publisher_post_id'::regtype") == "uuid"
    assert await apply_migrations(product_database_url) == []


async def _columns(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch("select column_name::text, data_type::text "
                            "from information_schema.columns where table_schema = 'public' "
                            "and table_name = 'created_content'")
    return {r[0]: r[1] for r in rows}


async def test_the_products_table_is_kept_as_it_was(product_database_url: str,  # noqa: F811
                                                    product: asyncpg.Connection) -> None:
    """Its columns (types, nullability, defaults), constraints, indexes, grants, policies,
    row level security and rows are exactly as before."""
    before = await _catalog(product)
    await apply_migrations(product_database_url)
    after = await _catalog(product)
    for kept in ("columns", "policies", "rls", "rows"):
        assert after[kept] == before[kept], kept
    for added_to in ("constraints", "indexes", "grants"):  # ours come beside theirs
        assert before[added_to] <= after[added_to], added_to
    assert [r[0] for r in await product.fetch("select table_name from publisher_adopted_tables")
            ] == ["created_content"]


async def test_the_products_users_still_see_and_write_their_posts(
        product_database_url: str, product: asyncpg.Connection) -> None:  # noqa: F811
    """Through its own policy, a product user (authenticated, JWT sub) reads and writes
    their own posts after the migration, with a status of the product's own."""
    mine = await product.fetchval("select count(*) from created_content where user_id = $1",
                                  USER_A)
    await apply_migrations(product_database_url)
    async with product.transaction():
        await product.execute("set local role authenticated")
        await product.execute("select set_config('request.jwt.claims', $1, true)",
                              f'{{"sub": "{USER_A}", "role": "authenticated"}}')
        assert await product.fetchval("select count(*) from created_content") == mine
        await product.execute(
            "insert into created_content (user_id, status, platform, content) "
            "values ($1, 'archived', 'facebook', 'mine')", USER_A)
        assert await product.fetchval(
            "update created_content set status = 'pending_approval' where content = 'mine' "
            "returning status") == "pending_approval"


async def test_the_products_own_statuses_never_fail_a_write(
        product_database_url: str, product: asyncpg.Connection) -> None:  # noqa: F811
    """No check of ours on the product's status: 'archived' and any other value of its own
    still go in after the migration, and the migration itself did not mind them."""
    await apply_migrations(product_database_url)
    await product.execute("update created_content set content = content || '!' "
                          "where status = 'archived'")
    await product.execute("insert into created_content (user_id, status, platform) "
                          "values ($1, 'in_review', 'facebook')", USER_B)
    assert await product.fetchval(
        "select count(*) from created_content where status in ('archived', 'in_review')") == 3


async def test_a_run_leaves_posts_in_statuses_it_does_not_know_alone(
        product_database_url: str, product: asyncpg.Connection) -> None:  # noqa: F811
    """Posts in the product's own statuses, due, late, leased or under review by every
    column of ours, are left as they are by every contract function a run calls."""
    await apply_migrations(product_database_url)
    account = await insert_account(product)
    unknown = ("archived", "in_review", "pending_approval")
    shapes: list[dict[str, Any]] = [
        {},                                                              # due now
        {"scheduled_at": sql("now() - interval '3 days'")},               # would expire
        {"scheduled_at": None, "scheduled_local": "2026-01-01 10:00",     # would resolve
         "scheduled_timezone": "Europe/Berlin"},
        {"scheduled_at": None},                                           # unschedulable
        {"platform": "myspace"},                                          # unknown platform
        {"locked_by": "gone", "lease_expires_at": sql("now() - interval '1 hour'"),
         "sending_started_at": sql("now() - interval '2 hours'")},         # lapsed lease
        {"locked_by": None, "lease_expires_at": None},                    # stuck claim
        {"attempts": 9, "max_attempts": 5},                               # out of attempts
    ]
    for status in unknown:
        for shape in shapes:
            await insert_post(product, account_id=account, user_id=USER_A, status=status,
                              **{"scheduled_at": sql("now() - interval '1 minute'"), **shape})
    before = await _rows(product, unknown)
    store = Store(await PostgresTransport.connect(product_database_url, max_size=1))
    try:
        await store.prepare(24, PLATFORMS)
        assert [r for r in await store.list_unresolved_schedules(100)
                if r["id"] in before] == []
        assert await store.apply_resolved_schedules(
            [{"id": post_id, "error": "no"} for post_id in before]) == 0
        assert await store.claim("w", dict.fromkeys(PLATFORMS, 100), 60) == []
        assert await store.claim_for_review("w", PLATFORMS, limit=100, max_checks=9,
                                            every_seconds=0, lease_seconds=60) == []
        assert [p for p in await store.list_due(100) if p["id"] in before] == []
    finally:
        await store.close()
    assert await _rows(product, unknown) == before


async def _rows(conn: asyncpg.Connection, statuses: tuple[str, ...]) -> dict[str, str]:
    rows = await conn.fetch("select id::text, c::text from created_content c "
                            "where status = any($1::text[])", list(statuses))
    return {r[0]: r[1] for r in rows}


async def test_the_products_own_social_accounts_gets_our_columns(
        product_database_url: str, product: asyncpg.Connection) -> None:  # noqa: F811
    """A product table named social_accounts (its own columns, rows, grants) gets ours
    added, keeps its own, and connect_account upserts on it."""
    await product.execute(
        f"""
        create table public.social_accounts (
          id uuid primary key default gen_random_uuid(),
          owner uuid,
          provider text,
          token text
        );
        alter table public.social_accounts enable row level security;
        grant select on public.social_accounts to authenticated;
        insert into public.social_accounts (owner, provider, token)
        values ('{USER_A}', 'facebook', 'plain');
        """)  # noqa: S608 - a constant of this module
    await apply_migrations(product_database_url)
    row = await product.fetchrow("select owner, provider, token, status, platform, "
                                 "external_id from social_accounts")
    assert (str(row["owner"]), *tuple(row)[1:]) == (USER_A, "facebook", "plain", "active",
                                                    None, None)
    assert await product.fetchval(
        "select has_table_privilege('authenticated', 'public.social_accounts', 'select')")
    assert sorted(r[0] for r in await product.fetch(
        "select table_name from publisher_adopted_tables")) == [
            "created_content", "social_accounts"]
    store = Store(await PostgresTransport.connect(product_database_url, max_size=1))
    try:
        first = await store.connect_account(
            platform="facebook", external_id="42", display_name="Page", user_id=USER_A,
            access_token_encrypted="v1:sealed", refresh_token_encrypted=None,
            token_expires_at=None)
        again = await store.connect_account(
            platform="facebook", external_id="42", display_name=None, user_id=None,
            access_token_encrypted="v1:sealed2", refresh_token_encrypted=None,
            token_expires_at=None)
    finally:
        await store.close()
    assert first == again


async def test_an_index_of_the_products_named_like_one_of_ours_is_kept(
        product_database_url: str, product: asyncpg.Connection) -> None:  # noqa: F811
    """0300 drops our old created_content_status index; one the product made is not ours."""
    await product.execute("create index created_content_status on created_content (status)")
    await apply_migrations(product_database_url)
    assert await product.fetchval("select to_regclass('public.created_content_status')")


async def test_a_database_we_created_adopted_nothing(db: asyncpg.Connection) -> None:
    """On a fresh database both tables are ours: listed nowhere, anon locked out, end users
    held to our owner policies (tests/store/test_owner_access.py)."""
    assert await db.fetchval("select count(*) from publisher_adopted_tables") == 0
    assert not await db.fetchval(
        "select has_table_privilege('anon', 'public.created_content', 'select')")
    assert await db.fetchval("select count(*) from pg_policies where tablename = "
                             "'created_content' and policyname like 'publisher_owner_%'") == 4


# --- Upgrades: databases that applied the released migrations ----------------------------


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise OSError("git is not installed")
    root = migrations_dir().parents[1]
    return subprocess.run([git, "-C", str(root), *args],  # noqa: S603 - fixed arguments
                          check=True, capture_output=True, text=True).stdout


def _released_files(folder: Path) -> Path:
    """The migrations as released at RELEASED, read from git (skips without a checkout)."""
    try:
        names = _git("ls-tree", "--name-only", RELEASED, "supabase/migrations/").split()
        folder.mkdir()
        for name in names:
            (folder / Path(name).name).write_text(_git("show", f"{RELEASED}:{name}"))
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"git history with commit {RELEASED} is not available")
    return folder


async def _released_database(make_database: Callable[..., Awaitable[str]],
                             folder: Path) -> tuple[str, int]:
    """A database on the released migrations with a post in flight; (URL, post id)."""
    url = await make_database(empty=True)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        await conn.execute(SUPABASE_DEFAULT_PRIVILEGES)
        await apply_migrations(url, folder)
        account = await insert_account(conn)
        post = await insert_post(conn, account_id=account)
    finally:
        await conn.close()
    return url, post


async def _works(url: str, post: int) -> dict[str, list[str]]:
    """Claims and publishes the post through the contract; returns the advisor's findings."""
    store = Store(await PostgresTransport.connect(url, max_size=1))
    try:
        [claimed] = await store.claim("w", {"facebook": 10}, 60)
        assert claimed.id == post
        assert await store.mark_sending("w", [(post, claimed.attempt)]) == {post}
    finally:
        await store.close()
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        assert await conn.fetchval("select format_type(atttypid, null) from pg_attribute "
                                   "where attrelid = 'public.publish_attempts'::regclass "
                                   "and attname = 'post_id'") == "publisher_post_id"
        return await advisor_findings(conn)
    finally:
        await conn.close()


async def test_publisher_migrate_upgrades_a_released_database(
        make_database: Callable[..., Awaitable[str]], tmp_path: Path) -> None:
    """publisher migrate re-applies the files changed since (harmless: idempotent), applies
    the new ones, and the contract and the advisor are as on a fresh database."""
    released = _released_files(tmp_path / "released")
    url, post = await _released_database(make_database, released)
    applied = await apply_migrations(url)
    new = {f.path.name for f in migration_files()} - {p.name for p in released.glob("*.sql")}
    assert new <= set(applied)
    assert await _works(url, post) == NOTHING_FOUND


async def test_supabase_db_push_upgrades_a_released_database(
        make_database: Callable[..., Awaitable[str]], tmp_path: Path) -> None:
    """`supabase db push` runs only the files it has not seen (never a changed one): they
    alone bring a released database to the same contract and advisor findings."""
    released = _released_files(tmp_path / "released")
    url, post = await _released_database(make_database, released)
    folder = tmp_path / "pushed"
    folder.mkdir()
    for file in migrations_dir().glob("*.sql"):
        if not (released / file.name).exists():
            shutil.copy(file, folder / file.name)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for path in sorted(folder.glob("*.sql")):
            await conn.execute(path.read_text())
    finally:
        await conn.close()
    assert await _works(url, post) == NOTHING_FOUND


async def test_a_null_god_mode_metadata_still_gets_the_reason(
        product_database_url: str, product: asyncpg.Connection) -> None:  # noqa: F811
    """A product whose god_mode_metadata allows null: an expired post's publish_error is
    recorded all the same (null || jsonb would have dropped it)."""
    await product.execute("alter table created_content alter column god_mode_metadata "
                          "drop not null")
    await apply_migrations(product_database_url)
    await product.execute("delete from created_content")
    await insert_post(product, user_id=USER_A, status="scheduled", god_mode_metadata=None,
                      scheduled_at=sql("now() - interval '3 days'"))
    store = Store(await PostgresTransport.connect(product_database_url, max_size=1))
    try:
        assert (await store.prepare(24, PLATFORMS))["expired"] == 1
    finally:
        await store.close()
    meta = await product.fetchval("select god_mode_metadata ->> 'publish_error' "
                                  "from created_content")
    assert meta.startswith("expired")

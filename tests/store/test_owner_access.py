"""Owners see their own posts, and nothing else (issue 12; 20261207000500_owner_access.sql).

Every check runs as PostgREST runs a request: in a transaction, `set local role
authenticated` (or anon) and the JWT's claims in the transaction-local setting
request.jwt.claims. Each block is rolled back, so the seeded rows stay as they are.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from supabase_advisor import SUPABASE_DEFAULT_PRIVILEGES

from helpers import insert_account, insert_post
from product_db import USER_A, USER_B, product_database_url  # noqa: F401 - the fixture
from publisher.doctor import diagnose
from publisher.settings import Settings
from publisher.store.migrations import apply_migrations, migrations_dir

MIGRATION = "20261207000500_owner_access.sql"
# What an end user may write on a created_content we create (the migration's list).
OWNER_COLUMNS = {"user_id", "account_id", "platform", "post_type", "content", "title",
                 "link_url", "media_urls", "platform_options", "status", "scheduled_at",
                 "scheduled_local", "scheduled_timezone"}
# What an end user may read of their social_accounts rows.
ACCOUNT_COLUMNS = {"id", "user_id", "platform", "external_id", "display_name",
                   "token_expires_at", "status", "status_reason", "paused_until", "created_at",
                   "updated_at"}
SECRET_ACCOUNT_COLUMNS = ("access_token_encrypted", "refresh_token_encrypted",
                          "refresh_locked_by", "refresh_locked_until")
PRODUCT_STATES = ("draft", "scheduled", "canceled")
PUBLISHER_STATES = ("publishing", "retrying", "published", "failed", "needs_review",
                    "expired")
INTERNAL_TABLES = ("publisher_runs", "publish_quotas", "quota_reservations",
                   "platform_pauses", "publisher_adopted_tables")
# Supabase's auth.uid() as GoTrue first defined it: the single-claim setting only. The
# fallback of our policies reads request.jwt.claims, so a test can tell which one decided.
AUTH_SCHEMA = """
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;
create or replace function auth.uid() returns uuid language sql stable as $$
  select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid
$$;
grant execute on function auth.uid() to anon, authenticated, service_role;
"""
REALTIME = "create publication supabase_realtime"


@dataclass(frozen=True, kw_only=True)
class Seeded:
    """Two users' accounts, posts and attempts; ids as the database returned them."""

    account_a: str
    account_b: str
    posts_a: dict[str, Any]       # status -> id
    post_b: Any                   # B's scheduled post
    attempt_a: int                # on A's published post
    attempt_b: int                # on B's post


async def _seed(db: asyncpg.Connection) -> Seeded:
    account_a = await insert_account(db, user_id=USER_A, display_name="Ana's Page",
                                     access_token_encrypted="v1:00000000:sealed-a",
                                     refresh_token_encrypted="v1:00000000:sealed-ra")
    account_b = await insert_account(db, platform="linkedin", user_id=USER_B,
                                     display_name="Ben", access_token_encrypted="v1:0:b")
    posts_a = {status: await insert_post(db, user_id=USER_A, account_id=account_a,
                                         status=status)
               for status in ("draft", "scheduled", "publishing", "published")}
    post_b = await insert_post(db, platform="linkedin", user_id=USER_B, account_id=account_b,
                               status="scheduled")
    attempt = ("insert into publish_attempts (post_id, worker_id, attempt, outcome, status, "
               "applied) values ($1, 'w', 1, $2, $2, true) returning id")
    return Seeded(account_a=account_a, account_b=account_b, posts_a=posts_a, post_b=post_b,
                  attempt_a=await db.fetchval(attempt, posts_a["published"], "published"),
                  attempt_b=await db.fetchval(attempt, post_b, "failed"))


@pytest.fixture
async def seeded(db: asyncpg.Connection) -> Seeded:
    return await _seed(db)


@asynccontextmanager
async def as_role(conn: asyncpg.Connection, role: str,
                  claims: dict[str, str] | None = None) -> AsyncIterator[None]:
    """A request as PostgREST makes it, rolled back at the end."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(f"set local role {role}")
        if claims is not None:
            await conn.execute("select set_config('request.jwt.claims', $1, true)",
                               json.dumps(claims))
        yield
    finally:
        await transaction.rollback()


def as_user(conn: asyncpg.Connection, user: str) -> Any:
    return as_role(conn, "authenticated", {"sub": user, "role": "authenticated"})


async def _refused(conn: asyncpg.Connection, user: str, statement: str, *args: Any) -> str:
    """Runs the statement as the user; it must be refused. Returns the message."""
    async with as_user(conn, user):
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
            await conn.execute(statement, *args)
    return str(refused.value)


async def _changed(conn: asyncpg.Connection, user: str, statement: str, *args: Any) -> int:
    """Runs the statement as the user; returns how many rows it changed."""
    async with as_user(conn, user):
        return int((await conn.execute(statement, *args)).split()[-1])


# --- posts -------------------------------------------------------------------------------

async def test_owners_read_their_own_posts_only(db: asyncpg.Connection,
                                                seeded: Seeded) -> None:
    """Each user reads exactly their posts; a request without a user reads none."""
    select = "select id from created_content order by id"
    async with as_user(db, USER_A):
        assert [r[0] for r in await db.fetch(select)] == sorted(seeded.posts_a.values())
    async with as_user(db, USER_B):
        assert [r[0] for r in await db.fetch(select)] == [seeded.post_b]
    async with as_role(db, "authenticated", {"role": "authenticated"}):
        assert await db.fetch(select) == []


async def test_owners_read_the_attempts_of_their_own_posts_only(
        db: asyncpg.Connection, seeded: Seeded) -> None:
    """publish_attempts: the attempts of one's own posts, every column, nobody else's."""
    async with as_user(db, USER_A):
        rows = await db.fetch("select * from publish_attempts")
        assert [r["id"] for r in rows] == [seeded.attempt_a]
    async with as_user(db, USER_B):
        assert [r[0] for r in await db.fetch("select id from publish_attempts")] == [
            seeded.attempt_b]
    message = await _refused(db, USER_A, "insert into publish_attempts (post_id, worker_id, "
                             "attempt, outcome, status, applied) values ($1, 'me', 9, "
                             "'published', 'published', true)", seeded.posts_a["draft"])
    assert "permission denied" in message


@pytest.mark.parametrize("status", PRODUCT_STATES)
async def test_owners_create_posts_in_the_products_states(
        db: asyncpg.Connection, seeded: Seeded, status: str) -> None:
    """A draft, scheduled or canceled post of one's own, on one's own account; its id
    comes from the identity column without any privilege on the sequence."""
    assert not await db.fetchval(
        "select has_sequence_privilege('authenticated', "
        "pg_get_serial_sequence('public.created_content', 'id'), 'usage')")
    async with as_user(db, USER_A):
        row = await db.fetchrow(
            "insert into created_content (user_id, account_id, platform, content, status, "
            "scheduled_at) values ($1, $2, 'facebook', 'new', $3, now() + interval '1 day') "
            "returning id, status", USER_A, seeded.account_a, status)
        assert row is not None
        assert row["status"] == status
        assert row["id"] > max(seeded.posts_a.values())


async def test_no_post_for_another_user_or_on_their_account(db: asyncpg.Connection,
                                                            seeded: Seeded) -> None:
    """user_id must be one's own, and account_id (when given) an account of one's own:
    else a user could publish on another user's page by its id."""
    insert = ("insert into created_content (user_id, account_id, platform, status) "
              "values ($1, $2, 'facebook', 'scheduled')")
    for user_id, account in ((USER_B, None), (None, None), (USER_A, seeded.account_b),
                             (USER_B, seeded.account_b)):
        message = await _refused(db, USER_A, insert, user_id, account)
        assert "row-level security" in message
    assert await _changed(db, USER_A, "update created_content set account_id = $1 "
                          "where id = $2", seeded.account_a, seeded.posts_a["draft"]) == 1
    message = await _refused(db, USER_A, "update created_content set account_id = $1 "
                             "where id = $2", seeded.account_b, seeded.posts_a["draft"])
    assert "row-level security" in message
    message = await _refused(db, USER_A, "update created_content set user_id = $1 "
                             "where id = $2", USER_B, seeded.posts_a["draft"])
    assert "row-level security" in message


@pytest.mark.parametrize("status", PUBLISHER_STATES)
async def test_no_user_puts_a_post_in_a_publisher_state(db: asyncpg.Connection,
                                                        seeded: Seeded, status: str) -> None:
    """Neither a new post nor an edit can be 'published', 'publishing' or any state only
    the publisher writes."""
    message = await _refused(db, USER_A, "insert into created_content (user_id, platform, "
                             "status) values ($1, 'facebook', $2)", USER_A, status)
    assert "row-level security" in message
    message = await _refused(db, USER_A, "update created_content set status = $1 "
                             "where id = $2", status, seeded.posts_a["scheduled"])
    assert "row-level security" in message


async def test_owners_edit_and_delete_their_posts_in_the_products_states(
        db: asyncpg.Connection, seeded: Seeded) -> None:
    """Content, time and status of one's scheduled post; a draft scheduled; a post
    canceled; one deleted."""
    scheduled, draft = seeded.posts_a["scheduled"], seeded.posts_a["draft"]
    async with as_user(db, USER_A):
        assert await db.fetchval(
            "update created_content set content = 'edited', scheduled_local = '2027-01-01 "
            "09:00', scheduled_timezone = 'Europe/Berlin' where id = $1 returning content",
            scheduled) == "edited"
        assert await db.execute("update created_content set status = 'scheduled' "
                                "where id = $1", draft) == "UPDATE 1"
        assert await db.execute("update created_content set status = 'canceled' "
                                "where id = $1", scheduled) == "UPDATE 1"
        assert await db.execute("delete from created_content where id = $1",
                                scheduled) == "DELETE 1"


async def test_posts_the_publisher_holds_or_finished_do_not_change(
        db: asyncpg.Connection, seeded: Seeded) -> None:
    """Once publishing or published, one's own post is neither edited, canceled nor
    deleted (the publisher's outcome write must find it as it left it); another user's
    post never."""
    locked = (seeded.posts_a["publishing"], seeded.posts_a["published"])
    before = await db.fetch("select * from created_content order by id")
    for post in locked:
        for statement in ("update created_content set content = 'x' where id = $1",
                          "update created_content set status = 'canceled' where id = $1",
                          "delete from created_content where id = $1"):
            assert await _changed(db, USER_A, statement, post) == 0
    for statement in ("update created_content set content = 'x' where id = $1",
                      "delete from created_content where id = $1"):
        assert await _changed(db, USER_A, statement, seeded.post_b) == 0
    assert await db.fetch("select * from created_content order by id") == before


async def test_end_users_write_only_the_products_columns(db: asyncpg.Connection) -> None:
    """authenticated may insert and update exactly OWNER_COLUMNS; every other column
    (lease, attempts, sending stamp, platform ids, published_at, errors, ...) never."""
    for privilege in ("INSERT", "UPDATE"):
        writable = {r[0] for r in await db.fetch(
            "select attname::text from pg_attribute where attrelid = "
            "'public.created_content'::regclass and attnum > 0 and not attisdropped "
            "and has_column_privilege('authenticated', attrelid, attnum, $1)", privilege)}
        assert writable == OWNER_COLUMNS, privilege


async def test_every_publisher_column_is_refused(db: asyncpg.Connection,
                                                 seeded: Seeded) -> None:
    """Writing any column but the product's, on one's own draft or in a new post, is
    refused outright (permission denied), whatever the value."""
    columns = [r[0] for r in await db.fetch(
        "select attname::text from pg_attribute where attrelid = "
        "'public.created_content'::regclass and attnum > 0 and not attisdropped "
        "and attgenerated = '' order by attnum")]
    locked = [c for c in columns if c not in OWNER_COLUMNS]
    assert {"locked_by", "lease_expires_at", "attempts", "sending_started_at",
            "platform_post_id", "platform_url", "published_at", "last_error",
            "publish_state", "priority", "max_attempts", "not_before",
            "god_mode_metadata"} <= set(locked)
    for column in locked:
        message = await _refused(db, USER_A, f'update created_content set "{column}" = '  # noqa: S608 - catalog names
                                 f'"{column}" where id = $1', seeded.posts_a["draft"])
        assert "permission denied" in message, column
        message = await _refused(db, USER_A, f'insert into created_content (user_id, '  # noqa: S608
                                 f'platform, status, "{column}") values ($1, \'facebook\', '
                                 f"'draft', default)", USER_A)
        assert "permission denied" in message, column


# --- accounts ----------------------------------------------------------------------------

async def test_owners_read_their_accounts_but_no_token(db: asyncpg.Connection,
                                                       seeded: Seeded) -> None:
    """Every column but the tokens and the refresh lock, of one's own accounts only; a
    token column is refused outright (so `select *` is too: the UI names its columns)."""
    readable = ", ".join(sorted(ACCOUNT_COLUMNS))
    async with as_user(db, USER_A):
        rows = await db.fetch(f"select {readable} from social_accounts")  # noqa: S608
        assert [(str(r["id"]), r["display_name"]) for r in rows] == [
            (seeded.account_a, "Ana's Page")]
    for column in (*SECRET_ACCOUNT_COLUMNS, "*"):
        message = await _refused(db, USER_A,
                                 f"select {column} from social_accounts")  # noqa: S608 - fixed
        assert "permission denied" in message, column
    readable_now = {r[0] for r in await db.fetch(
        "select attname::text from pg_attribute where attrelid = "
        "'public.social_accounts'::regclass and attnum > 0 and not attisdropped "
        "and has_column_privilege('authenticated', attrelid, attnum, 'SELECT')")}
    assert readable_now == ACCOUNT_COLUMNS


async def test_accounts_are_changed_through_the_service_role_only(
        db: asyncpg.Connection, seeded: Seeded) -> None:
    """An end user neither connects, renames nor removes an account."""
    for statement, args in (
            ("update social_accounts set display_name = 'x' where id = $1",
             (seeded.account_a,)),
            ("insert into social_accounts (user_id, platform, external_id) "
             "values ($1, 'facebook', 'mine')", (USER_A,)),
            ("delete from social_accounts where id = $1", (seeded.account_a,))):
        assert "permission denied" in await _refused(db, USER_A, statement, *args)


async def test_internal_tables_are_closed_to_end_users(db: asyncpg.Connection) -> None:
    """Runs, quotas, reservations, pauses and the adoption record: service_role only,
    row level security on."""
    for table in INTERNAL_TABLES:
        statement = f"select 1 from {table}"  # noqa: S608 - fixed names
        assert "permission denied" in await _refused(db, USER_A, statement)
        assert await db.fetchval("select relrowsecurity from pg_class where oid = $1::regclass",
                                 f"public.{table}")
        assert await db.fetchval("select has_table_privilege('service_role', $1, 'select')",
                                 f"public.{table}")


# --- the owner: auth.uid(), or the fallback ---------------------------------------------

async def test_without_an_auth_schema_the_owner_is_the_jwt_sub_claim(
        db: asyncpg.Connection, seeded: Seeded) -> None:
    """Plain Postgres: no auth schema, the policies read request.jwt.claims themselves
    (and the older single-claim setting, as auth.uid() does)."""
    assert await db.fetchval("select to_regnamespace('auth')") is None
    quals = await _owner_quals(db)
    assert all("request.jwt.claims" in q and "auth.uid" not in q for q in quals)
    async with as_role(db, "authenticated"):
        await db.execute("select set_config('request.jwt.claim.sub', $1, true)", USER_B)
        assert [r[0] for r in await db.fetch("select id from created_content")] == [
            seeded.post_b]


async def _owner_quals(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("select coalesce(qual, with_check) from pg_policies "
                            "where policyname like 'publisher_owner_%'")
    # created_content x4, publish_attempts, social_accounts, publisher_events
    assert len(rows) == 7
    return [str(r[0]) for r in rows]


@pytest.fixture(scope="module")
async def supabase_db(make_database: Callable[..., Awaitable[str]]
                      ) -> AsyncIterator[tuple[str, asyncpg.Connection, Seeded]]:
    """Module: a database like a fresh Supabase project (default privileges that grant
    everything to anon and authenticated, auth.uid(), the supabase_realtime publication),
    then migrated and seeded."""
    url = await make_database(empty=True)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        await conn.execute(SUPABASE_DEFAULT_PRIVILEGES + AUTH_SCHEMA + REALTIME)
        await apply_migrations(url)
        yield url, conn, await _seed(conn)
    finally:
        await conn.close()


async def test_on_supabase_the_owner_is_auth_uid(
        supabase_db: tuple[str, asyncpg.Connection, Seeded]) -> None:
    """Where auth.uid() exists the policies call it (here it reads only the single-claim
    setting: set to A while request.jwt.claims names B, A's posts are what is seen)."""
    _, conn, seeded = supabase_db
    assert all("auth.uid()" in q for q in await _owner_quals(conn))
    async with as_role(conn, "authenticated", {"sub": USER_B, "role": "authenticated"}):
        await conn.execute("select set_config('request.jwt.claim.sub', $1, true)", USER_A)
        assert {r[0] for r in await conn.fetch("select id from created_content")} == set(
            seeded.posts_a.values())
        assert [r[0] for r in await conn.fetch("select id from publish_attempts")] == [
            seeded.attempt_a]
        assert [str(r[0]) for r in await conn.fetch("select id from social_accounts")] == [
            seeded.account_a]


async def test_anon_reaches_nothing(
        supabase_db: tuple[str, asyncpg.Connection, Seeded]) -> None:
    """Under Supabase's default privileges: every table, sequence and function in public
    refuses anon (select, nextval, a call with null arguments)."""
    _, conn, _ = supabase_db
    tables = [r[0] for r in await conn.fetch(
        "select oid::regclass::text from pg_class where relnamespace = 'public'::regnamespace "
        "and relkind in ('r', 'p', 'v', 'm')")]
    sequences = [r[0] for r in await conn.fetch(
        "select oid::regclass::text from pg_class where relnamespace = 'public'::regnamespace "
        "and relkind = 'S'")]
    functions = await conn.fetch(
        "select p.oid::regprocedure::text as signature, p.proname::text as name, "
        "array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t) as types, "
        "p.prorettype = 'trigger'::regtype as trigger "
        "from pg_proc p where p.pronamespace = 'public'::regnamespace")
    assert {"created_content", "social_accounts", "publish_attempts"} <= set(tables)
    assert sequences
    assert len(functions) > 10
    statements = [f"select 1 from {t} limit 1" for t in tables]  # noqa: S608 - catalog names
    statements += [f"select nextval('{s}')" for s in sequences]
    statements += [f"select public.{f['name']}({', '.join(f'null::{t}' for t in f['types'])})"
                   for f in functions if not f["trigger"]]
    for statement in statements:
        async with as_role(conn, "anon", {"role": "anon"}):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    triggers = [f["signature"] for f in functions if f["trigger"]]
    assert triggers
    assert not any([await conn.fetchval("select has_function_privilege('anon', $1, 'execute')",
                                        t) for t in triggers])


async def test_authenticated_reaches_only_the_owner_tables(
        supabase_db: tuple[str, asyncpg.Connection, Seeded]) -> None:
    """Under Supabase's default privileges, authenticated ends with exactly: select and
    delete on created_content (insert/update by column), select on publish_attempts,
    some columns of social_accounts; no function, no sequence."""
    _, conn, _ = supabase_db
    granted = {tuple(r) for r in await conn.fetch(
        "select c.relname::text, p from pg_class c, unnest(array['SELECT', 'INSERT', "
        "'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p "
        "where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v') "
        "and has_table_privilege('authenticated', c.oid, p)")}
    assert granted == {("created_content", "SELECT"), ("created_content", "DELETE"),
                       ("publish_attempts", "SELECT")}
    assert await conn.fetch(
        "select p.proname from pg_proc p where p.pronamespace = 'public'::regnamespace "
        "and has_function_privilege('authenticated', p.oid, 'execute')") == []
    assert await conn.fetch(
        "select relname from pg_class where relnamespace = 'public'::regnamespace and "
        "case when relkind = 'S' then has_sequence_privilege('authenticated', oid, "
        "'usage,select,update') end") == []
    async with as_user(conn, USER_A):  # the identity default, without the sequence
        await conn.execute("select set_config('request.jwt.claim.sub', $1, true)", USER_A)
        assert await conn.fetchval("insert into created_content (user_id, platform, status) "
                                   "values ($1, 'facebook', 'draft') returning id", USER_A)


async def test_realtime_publishes_created_content_once(
        supabase_db: tuple[str, asyncpg.Connection, Seeded]) -> None:
    """Where supabase_realtime exists, created_content is in it; applying the file again
    changes nothing (no error, still once, same policies and grants)."""
    _, conn, _ = supabase_db
    published = ("select count(*) from pg_publication_tables where pubname = "
                 "'supabase_realtime' and schemaname = 'public' and tablename = $1")
    assert await conn.fetchval(published, "created_content") == 1
    before = await _access_catalog(conn)
    async with conn.transaction():
        await conn.execute((migrations_dir() / MIGRATION).read_text())
        assert await conn.fetchval(published, "created_content") == 1
        assert await _access_catalog(conn) == before


async def _access_catalog(conn: asyncpg.Connection) -> dict[str, Any]:
    return {
        "policies": sorted(tuple(r) for r in await conn.fetch(
            "select tablename::text, policyname::text, cmd, roles::text, qual, with_check "
            "from pg_policies where schemaname = 'public'")),
        "acl": sorted(tuple(r) for r in await conn.fetch(
            "select c.relname::text, c.relacl::text, "
            "array(select a.attname || '=' || a.attacl::text from pg_attribute a "
            "where a.attrelid = c.oid and a.attacl is not null order by a.attnum)::text "
            "from pg_class c where c.relnamespace = 'public'::regnamespace")),
    }


# --- doctor ---------------------------------------------------------------------------

async def test_doctor_shows_the_owner_access(database_url: str) -> None:
    """On a fresh database doctor lists our owner policies and what authenticated holds,
    column grants included; none of it is a problem."""
    report = await diagnose(Settings(database_url=database_url), None)
    messages: dict[str, list[str]] = {}
    for f in report.findings:
        messages.setdefault(f.key, []).append(f.message)
    assert ("authenticated has select, delete, insert (some columns), update (some columns) "
            "on created_content (rows limited by the owner policies)") in messages["grants.owner"]
    assert ("authenticated has select (some columns) on social_accounts (rows limited by the "
            "owner policies)") in messages["grants.owner"]
    assert any("publisher_owner_update (update to authenticated)" in m
               for m in messages["policies"])
    assert not [f.message for f in report.findings
                if f.section == "access" and f.level == "problem"]


# --- the product's own created_content -------------------------------------------------

async def test_the_products_table_gets_no_policy_of_ours(
        product_database_url: str) -> None:  # noqa: F811
    """Adopted: the product's own_posts policy and grants stay exactly as they were, none
    of ours is added; its users still read the attempts of their own posts."""
    conn = await asyncpg.connect(product_database_url, statement_cache_size=0)
    try:
        before = await _access_catalog(conn)
        await apply_migrations(product_database_url)
        after = await _access_catalog(conn)
        for key in ("policies", "acl"):
            theirs = {r for r in before[key] if r[0] in ("created_content",
                                                         "connected_accounts")}
            assert {r for r in after[key] if r[0] in ("created_content",
                                                      "connected_accounts")} == theirs, key
        assert [r[1] for r in after["policies"] if r[0] == "created_content"] == ["own_posts"]
        post = await conn.fetchval("select id from created_content where user_id = $1 "
                                   "limit 1", USER_A)
        await conn.execute("insert into publish_attempts (post_id, worker_id, attempt, "
                           "outcome, status, applied) values ($1, 'w', 1, 'published', "
                           "'published', true)", post)
        for user, seen in ((USER_A, 1), (USER_B, 0)):
            async with as_user(conn, user):
                assert await conn.fetchval("select count(*) from publish_attempts") == seen
    finally:
        await conn.close()

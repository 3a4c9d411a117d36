"""Seeding and inspection helpers for tests that talk to the real database (asyncpg).

Column values are bound as parameters and cast to the column's own type (a str is parsed
by the column type, so '2026-03-08 02:30' or '{"a": 1}' work anywhere); a value wrapped
in `sql(...)` is inlined as an SQL expression instead, so times can be relative to the
database's clock: `insert_posts(db, 10, scheduled_at=sql("now() - interval '1 hour'"))`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

_external_ids = itertools.count(1)


@dataclass(frozen=True)
class sql:
    """An SQL expression to inline instead of a bound value (test code only)."""

    expression: str


DUE = sql("now() - interval '1 minute'")


async def _column_types(db: asyncpg.Connection, table: str) -> dict[str, str]:
    rows = await db.fetch(
        "select attname, format_type(atttypid, atttypmod) as type from pg_attribute "
        "where attrelid = $1::regclass and attnum > 0 and not attisdropped",
        f"public.{table}")
    return {r["attname"]: r["type"] for r in rows}


def _param(index: int, value: Any, sql_type: str) -> str:
    """A placeholder cast to the column's type; text goes through the type's own parser,
    so '2026-03-08 02:30' or '{"a": 1}' work for any column."""
    if isinstance(value, str) and sql_type != "text":
        return f"${index}::text::{sql_type}"
    return f"${index}::{sql_type}"


async def _insert(db: asyncpg.Connection, table: str, count: int,
                  columns: Mapping[str, Any]) -> list[Any]:
    types = await _column_types(db, table)
    unknown = set(columns) - set(types)
    if unknown:
        raise ValueError(f"{table} has no column(s) {sorted(unknown)}")
    names, exprs, args = [], [], []
    for name, value in columns.items():
        names.append(f'"{name}"')
        if isinstance(value, sql):
            exprs.append(value.expression)
        else:
            args.append(value)
            exprs.append(_param(len(args), value, types[name]))
    args.append(count)
    statement = (
        f"insert into public.{table} ({', '.join(names)}) "  # noqa: S608 - names checked above
        f"select {', '.join(exprs)} from generate_series(1, ${len(args)}::integer) "
        "returning id")
    rows = await db.fetch(statement, *args)
    return sorted(r["id"] for r in rows)


async def insert_account(db: asyncpg.Connection, *, platform: str = "facebook",
                         external_id: str | None = None, **columns: Any) -> str:
    """Inserts one social account; returns its id (uuid text)."""
    external_id = external_id or f"{platform}-acct-{next(_external_ids)}"
    ids = await _insert(db, "social_accounts", 1,
                        {"platform": platform, "external_id": external_id, **columns})
    return str(ids[0])


async def insert_posts(db: asyncpg.Connection, count: int, *, platform: str = "facebook",
                       account_id: str | None = None, scheduled_at: Any = DUE,
                       **columns: Any) -> list[Any]:
    """Inserts `count` identical posts in one statement, due a minute ago unless told;
    returns their ids, ascending: ints, or strs where post ids are uuid."""
    values: dict[str, Any] = {"platform": platform, "scheduled_at": scheduled_at,
                              "content": "hello", **columns}
    if account_id is not None:
        values["account_id"] = account_id
    ids = await _insert(db, "created_content", count, values)
    return [i if isinstance(i, int) else str(i) for i in ids]


async def insert_post(db: asyncpg.Connection, **columns: Any) -> int:
    """Inserts one post (see insert_posts for the defaults); returns its id."""
    return (await insert_posts(db, 1, **columns))[0]


async def fetch_post(db: asyncpg.Connection, post_id: int) -> asyncpg.Record:
    """The post's row from created_content."""
    row = await db.fetchrow("select * from public.created_content where id = $1", post_id)
    assert row is not None, f"post {post_id} does not exist"
    return row


async def post_statuses(db: asyncpg.Connection, ids: Sequence[int] | None = None
                        ) -> dict[int, str]:
    """id -> status, for the given posts or all of them."""
    if ids is None:
        rows = await db.fetch("select id, status from public.created_content")
    else:
        rows = await db.fetch("select id, status from public.created_content "
                              "where id = any($1::bigint[])", list(ids))
    return {int(r["id"]): str(r["status"]) for r in rows}


async def attempts_for(db: asyncpg.Connection, post_id: int) -> list[asyncpg.Record]:
    """The post's rows in publish_attempts, oldest first."""
    return list(await db.fetch(
        "select * from public.publish_attempts where post_id = $1 order by id", post_id))


async def set_post(db: asyncpg.Connection, post_id: int, **columns: Any) -> None:
    """Updates columns of one post (sql(...) values are inlined)."""
    types = await _column_types(db, "created_content")
    sets, args = [], [post_id]
    for name, value in columns.items():
        if name not in types:
            raise ValueError(f"created_content has no column {name!r}")
        if isinstance(value, sql):
            sets.append(f'"{name}" = {value.expression}')
        else:
            args.append(value)
            sets.append(f'"{name}" = {_param(len(args), value, types[name])}')
    await db.execute(f"update public.created_content set {', '.join(sets)} "  # noqa: S608
                     "where id = $1", *args)


__all__ = ["DUE", "attempts_for", "fetch_post", "insert_account", "insert_post",
           "insert_posts", "post_statuses", "set_post", "sql"]


def url_for(server_url: str, database: str) -> str:
    """The server URL with its database swapped for `database`."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + quote(database)))

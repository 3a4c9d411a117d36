"""contract.FUNCTIONS matches the functions the migrations create, exactly."""

from __future__ import annotations

import asyncpg
import pytest

from publisher.store.contract import FUNCTIONS, SqlFunction
from publisher.store.postgres import _STATEMENTS


async def _catalog(db: asyncpg.Connection, name: str) -> list[asyncpg.Record]:
    return list(await db.fetch(
        """
        select coalesce(p.proargnames[1:p.pronargs], '{}') as names,
               array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t) as types,
               format_type(p.prorettype, null) as returns, p.proretset, p.prokind::text,
               p.pronargdefaults
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace and p.proname = $1
        """, name))


@pytest.mark.parametrize("spec", list(FUNCTIONS.values()), ids=list(FUNCTIONS))
async def test_function_matches_the_catalog(db: asyncpg.Connection, spec: SqlFunction) -> None:
    """Exactly one public function of that name, same argument names, types and return."""
    rows = await _catalog(db, spec.name)
    assert len(rows) == 1, f"{spec.name}: {len(rows)} functions (PostgREST needs exactly one)"
    [row] = rows
    assert list(zip(row["names"], row["types"], strict=True)) == list(spec.params)
    assert row["returns"] == spec.returns
    assert not row["proretset"], "set-returning results are truncated by PostgREST max-rows"
    assert row["prokind"] == "f"
    assert row["pronargdefaults"] == 0


async def test_every_public_function_is_in_the_contract(db: asyncpg.Connection) -> None:
    """The migrations create no callable public function that the contract (and its grants)
    miss; trigger functions cannot be called and are not part of it."""
    names = {r["proname"] for r in await db.fetch(
        "select proname::text from pg_proc where pronamespace = 'public'::regnamespace "
        "and prorettype <> 'trigger'::regtype")}
    assert names == set(FUNCTIONS)


async def test_end_users_cannot_call_the_trigger_function(db: asyncpg.Connection) -> None:
    """The NOTIFY trigger function is not executable by the API roles."""
    for role in ("anon", "authenticated"):
        assert not await db.fetchval(
            "select has_function_privilege($1, 'public.notify_publisher_due()', 'execute')",
            role)


@pytest.mark.parametrize("name", list(FUNCTIONS))
async def test_direct_statement_names_every_parameter(name: str) -> None:
    """The direct transport's statement passes each parameter by name, cast to its type."""
    statement = _STATEMENTS[name]
    assert statement.startswith(f"select public.{name}(")
    for index, (param, sql_type) in enumerate(FUNCTIONS[name].params, start=1):
        assert f"{param} => ${index}::{sql_type}" in statement

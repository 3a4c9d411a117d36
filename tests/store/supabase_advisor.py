"""What Supabase's database advisors (supabase/splinter) would report, as plain queries,
and the default privileges a fresh Supabase project has (for databases that imitate one)."""

from __future__ import annotations

import asyncpg

# A fresh Supabase project grants everything new in public to its API roles.
SUPABASE_DEFAULT_PRIVILEGES = """
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;
alter default privileges in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public
  grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public
  grant all on sequences to anon, authenticated, service_role;
"""

# The advisor's findings, one query each (after supabase/splinter's lints).
FUNCTIONS_WITHOUT_SEARCH_PATH = """
select p.oid::regprocedure::text from pg_proc p
 where p.pronamespace = 'public'::regnamespace
   and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c
                    where c like 'search_path=%')
"""
SEQUENCES_OPEN_TO_END_USERS = """
select s.oid::regclass::text from pg_class s
 where s.relkind = 'S' and s.relnamespace = 'public'::regnamespace
   and exists (select 1 from unnest(array['anon', 'authenticated']) r
                where has_sequence_privilege(r, s.oid, 'usage,select,update'))
"""
FOREIGN_KEYS_WITHOUT_INDEX = """
select ct.conrelid::regclass::text || ' ' || ct.conname from pg_constraint ct
 where ct.contype = 'f' and ct.connamespace = 'public'::regnamespace
   and not exists (select 1 from pg_index i
                    where i.indrelid = ct.conrelid and i.indisvalid
                      and string_to_array(i.indkey::text, ' ')::smallint[] = ct.conkey)
"""
TRIGGER_FUNCTIONS_OPEN_TO_END_USERS = """
select p.oid::regprocedure::text from pg_proc p
 where p.pronamespace = 'public'::regnamespace and p.prorettype = 'trigger'::regtype
   and exists (select 1 from unnest(array['anon', 'authenticated']) r
                where has_function_privilege(r, p.oid, 'execute'))
"""
ADVISOR = {"function_search_path_mutable": FUNCTIONS_WITHOUT_SEARCH_PATH,
           "sequence_open_to_end_users": SEQUENCES_OPEN_TO_END_USERS,
           "unindexed_foreign_keys": FOREIGN_KEYS_WITHOUT_INDEX,
           "trigger_function_open_to_end_users": TRIGGER_FUNCTIONS_OPEN_TO_END_USERS}
NOTHING_FOUND: dict[str, list[str]] = {name: [] for name in ADVISOR}


async def advisor_findings(conn: asyncpg.Connection) -> dict[str, list[str]]:
    """Each advisor check with what it finds (empty when it finds nothing)."""
    return {name: sorted(r[0] for r in await conn.fetch(query))
            for name, query in ADVISOR.items()}

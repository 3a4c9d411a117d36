"""A database's catalog as comparable text, and a readable diff of two.

Everything of ours is compared, in every schema but Postgres's own and the migration
ledger's: tables (kind, options, row level security), columns (type, nullability, default,
generated, identity), constraints, indexes, functions (definition, settings, security),
triggers, policies, privileges per role (tables, columns, sequences, functions, types,
schemas), domains and other types, sequences, publications, extensions, comments, and the
rows the migrations seed (publish_quotas' defaults). Not the ledgers' rows: they record
history, which two ways of reaching the same schema do not share.
"""

from __future__ import annotations

import difflib

import asyncpg

Catalog = dict[str, dict[str, str]]

# The ledgers: supabase_migrations (the CLI's, kept by publisher migrate too) and the old one.
LEDGER_SCHEMAS = ("supabase_migrations",)
LEDGER_TABLES = ("public.publisher_schema_migrations",)

# One query per category, each returning (key, value) text rows. Run with search_path ''
# so every name in the values is schema-qualified, the same way in every database.
QUERIES: dict[str, str] = {
    "schemas": """
        select n.nspname, coalesce(obj_description(n.oid, 'pg_namespace'), '')
          from pg_namespace n where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
            """,
    "extensions": """
        select e.extname, e.extnamespace::regnamespace::text from pg_extension e""",
    "tables": """
        select c.oid::regclass::text,
               concat_ws(' | ', 'kind ' || c.relkind::text,
                         'persistence ' || c.relpersistence::text,
                         'rls ' || c.relrowsecurity, 'force rls ' || c.relforcerowsecurity,
                         'options ' || coalesce(c.reloptions::text, '{}'),
                         'comment ' || coalesce(obj_description(c.oid, 'pg_class'), ''))
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
           and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S', 'c')""",
    "views": """
        select c.oid::regclass::text, pg_get_viewdef(c.oid)
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
           and c.relkind in ('v', 'm')""",
    "columns": """
        select format('%s.%I', c.oid::regclass, a.attname),
               concat_ws(' | ', format_type(a.atttypid, a.atttypmod),
                         'position ' || row_number() over (partition by c.oid
                                                           order by a.attnum),
                         case when a.attnotnull then 'not null' else 'null' end,
                         'default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-'),
                         'generated ' || nullif(a.attgenerated::text, ''),
                         'identity ' || nullif(a.attidentity::text, ''),
                         'collation ' || nullif(a.attcollation, 0)::regcollation::text,
                         'comment ' || col_description(c.oid, a.attnum))
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
          left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
           and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c')""",
    "constraints": """
        select coalesce(co.conrelid::regclass::text, co.contypid::regtype::text)
                 || '.' || co.conname,
               pg_get_constraintdef(co.oid) || case when co.convalidated then ''
                                                    else ' (not validated)' end
          from pg_constraint co join pg_namespace n on n.oid = co.connamespace
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'""",
    "indexes": """
        select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                 || case when i.indisvalid then '' else ' (invalid)' end
          from pg_index i join pg_class c on c.oid = i.indrelid
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'""",
    "functions": """
        select p.oid::regprocedure::text,
               concat_ws(E'\\n', pg_get_functiondef(p.oid),
                         '-- security definer: ' || p.prosecdef,
                         '-- config: ' || coalesce(p.proconfig::text, '{}'),
                         '-- comment: ' || coalesce(obj_description(p.oid, 'pg_proc'), ''))
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
           and p.prokind in ('f', 'p')
           and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                             and d.objid = p.oid and d.deptype = 'e')""",
    "triggers": """
        select t.tgrelid::regclass::text || '.' || t.tgname,
               pg_get_triggerdef(t.oid) || ' (enabled ' || t.tgenabled::text || ')'
          from pg_trigger t join pg_class c on c.oid = t.tgrelid
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
           and not t.tgisinternal""",
    "policies": """
        select format('%I.%I.%I', schemaname, tablename, policyname),
               concat_ws(' | ', permissive, 'to ' || roles::text, 'for ' || cmd,
                         'using ' || qual, 'with check ' || with_check)
          from pg_policies where schemaname not in ('supabase_migrations')""",
    "types": """
        select t.oid::regtype::text,
               concat_ws(' | ', 'kind ' || t.typtype::text,
                         'base ' || nullif(t.typbasetype, 0)::regtype::text,
                         'typmod ' || nullif(t.typtypmod, -1),
                         case when t.typnotnull then 'not null' end,
                         'default ' || t.typdefault,
                         'labels ' || (select string_agg(e.enumlabel, ', '
                                                         order by e.enumsortorder)
                                         from pg_enum e where e.enumtypid = t.oid),
                         'comment ' || obj_description(t.oid, 'pg_type'))
          from pg_type t join pg_namespace n on n.oid = t.typnamespace
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
           and t.typtype in ('d', 'e', 'r', 'm')""",
    "sequences": """
        select s.seqrelid::regclass::text,
               concat_ws(' | ', s.seqtypid::regtype::text, 'start ' || s.seqstart,
                         'increment ' || s.seqincrement, 'min ' || s.seqmin,
                         'max ' || s.seqmax, 'cache ' || s.seqcache, 'cycle ' || s.seqcycle,
                         'owned by ' || (select format('%s.%I', d.refobjid::regclass, a.attname)
                                           from pg_depend d
                                           join pg_attribute a on a.attrelid = d.refobjid
                                                              and a.attnum = d.refobjsubid
                                          where d.classid = 'pg_class'::regclass
                                            and d.objid = s.seqrelid
                                            and d.refclassid = 'pg_class'::regclass
                                            and d.deptype in ('a', 'i')))
          from pg_sequence s join pg_class c on c.oid = s.seqrelid
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'""",
    "publications": """
        select p.pubname, concat_ws(' | ', 'all tables ' || p.puballtables,
                                    'insert ' || p.pubinsert, 'update ' || p.pubupdate,
                                    'delete ' || p.pubdelete, 'truncate ' || p.pubtruncate)
          from pg_publication p
        union all
        select pubname || ' ' || format('%I.%I', schemaname, tablename),
               'published' from pg_publication_tables
         where schemaname not in ('supabase_migrations')""",
    "privileges": """
        with acl(kind, name, owner, acl) as (
          select case c.relkind when 'S' then 'sequence' else 'table' end,
                 c.oid::regclass::text, c.relowner,
                 coalesce(c.relacl, acldefault(case c.relkind when 'S' then 's'
                                                              else 'r' end::"char",
                                               c.relowner))
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
             and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
          union all
          select 'column', format('%s.%I', c.oid::regclass, a.attname), c.relowner, a.attacl
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            join pg_attribute a on a.attrelid = c.oid and a.attnum > 0
                               and not a.attisdropped and a.attacl is not null
           where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
          union all
          select 'function', p.oid::regprocedure::text, p.proowner,
                 coalesce(p.proacl, acldefault('f', p.proowner))
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
             and p.prokind in ('f', 'p')
          union all
          select 'type', t.oid::regtype::text, t.typowner,
                 coalesce(t.typacl, acldefault('T', t.typowner))
            from pg_type t join pg_namespace n on n.oid = t.typnamespace
           where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
             and t.typtype in ('d', 'e', 'r', 'm')
          union all
          select 'schema', n.nspname, n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner))
            from pg_namespace n
           where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
        )
        select format('%s %s to %s', acl.kind, acl.name,
                      case x.grantee when 0 then 'public'
                                     else pg_get_userbyid(x.grantee) end),
               string_agg(lower(x.privilege_type)
                            || case when x.is_grantable then ' (grantable)' else '' end,
                          ', ' order by x.privilege_type)
          from acl, aclexplode(acl.acl) x
         group by 1""",
}

# Rows of every table of ours (but the ledgers), less the columns that differ by when and
# in what order they were written (default now(), sequences, random ids).
_TABLES_WITH_ROWS = """
    select c.oid::regclass::text as name,
           coalesce(array_agg(a.attname order by a.attnum)
                      filter (where d.adbin is not null
                                and (a.attidentity::text <> ''
                                     or pg_get_expr(d.adbin, d.adrelid)
                                        ~ '(now|nextval|gen_random_uuid|clock_timestamp)\\(')),
                    '{}') as volatile
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
     where n.nspname !~ '^(pg_|information_schema$|supabase_migrations$)'
       and c.relkind in ('r', 'p') and not (c.oid::regclass::text = any($1))
     group by c.oid"""


async def snapshot(conn: asyncpg.Connection) -> Catalog:
    """The catalog of the database behind `conn`, category -> key -> text."""
    catalog: Catalog = {}
    async with conn.transaction():
        await conn.execute("set local search_path = ''")
        for category, query in QUERIES.items():
            catalog[category] = {r[0]: r[1] for r in await conn.fetch(query)}
        catalog["rows"] = await _rows(conn)
    return catalog


async def _rows(conn: asyncpg.Connection) -> dict[str, str]:
    rows: dict[str, str] = {}
    for table in await conn.fetch(_TABLES_WITH_ROWS, list(LEDGER_TABLES)):
        # The table name comes from the catalog (regclass text, quoted as needed).
        values = await conn.fetch(
            f"select (to_jsonb(t) - $1::text[])::text from {table['name']} t",  # noqa: S608
            table["volatile"])
        for i, text in enumerate(sorted(r[0] for r in values)):
            rows[f"{table['name']} row {i + 1}"] = text
    return rows


def diff(left: Catalog, right: Catalog, *, left_name: str, right_name: str,
         ignore: tuple[str, ...] = ()) -> list[str]:
    """What differs, readably: one block per object, a unified diff for long texts.
    Empty when the catalogs are equal (categories in `ignore` are left out)."""
    lines: list[str] = []
    for category in sorted(set(left) | set(right)):
        if category in ignore:
            continue
        a, b = left.get(category, {}), right.get(category, {})
        for key in sorted(set(a) | set(b)):
            if key not in b:
                lines.append(f"{category}: {key}: only in {left_name}: {_short(a[key])}")
            elif key not in a:
                lines.append(f"{category}: {key}: only in {right_name}: {_short(b[key])}")
            elif a[key] != b[key]:
                lines.append(f"{category}: {key}: differs")
                lines.extend("    " + line.rstrip("\n") for line in difflib.unified_diff(
                    a[key].splitlines(), b[key].splitlines(), left_name, right_name,
                    n=2, lineterm=""))
    return lines


def _short(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= 160 else first[:157] + "..."

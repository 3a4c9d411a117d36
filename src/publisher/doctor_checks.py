"""Doctor's checks of a database's catalog and rows: migrations, tables, the first run.

Each check reads (the caller holds a READ ONLY transaction) and returns findings. Queries
that may be refused (a table the connected role cannot read) run in a savepoint, so one
refusal is reported and the other checks go on. Identifiers in the few statements built
here come from the catalog, quoted by Postgres (quote_ident), never from user input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from publisher.doctor_schema import (
    ADOPTABLE_TABLES,
    LOOKALIKES,
    POST_STATES,
    STATUS_SYNONYMS,
    Backfill,
    OurSchema,
    backfill,
    canonical_type,
)
from publisher.store.migrations import FileState, file_states, migration_files

Level = Literal["ok", "note", "problem"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One line of the report. `blocking`: fix it before the first run (exit 1)."""

    section: str
    key: str                       # stable name of the check, for --json readers and tests
    level: Level
    message: str
    blocking: bool = False
    sql: tuple[str, ...] = ()      # statements the operator may run, verbatim
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ColumnInfo:
    name: str
    ident: str                     # quote_ident(name)
    type: str                      # format_type without modifiers
    base_type: str                 # the domain's base type, else the type
    is_enum: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class TableInfo:
    name: str
    rls: bool
    columns: dict[str, ColumnInfo]


@dataclass(frozen=True, kw_only=True)
class Inspection:
    """What the checks share: the connection, our schema, the tables as they stand."""

    conn: asyncpg.Connection
    schema: OurSchema
    tables: dict[str, TableInfo]       # public tables: ours that exist, and the product's
    migrated: bool                     # every migration file is recorded as applied
    adopted: frozenset[str] | None     # publisher_adopted_tables, where it exists
    max_delay_hours: float
    store_kind: str

    def product_table(self, name: str) -> bool:
        """A table the product had before us: before the migrations, any of ours that
        exists; after, those the migrations recorded as adopted (or, with no record, those
        with columns our migrations do not define)."""
        table = self.tables.get(name)
        if table is None:
            return False
        if not self.migrated:
            return name in self.schema.tables
        if self.adopted is not None:
            return name in self.adopted
        return bool(set(table.columns) - set(self.schema.tables.get(name, {})))


async def load_tables(conn: asyncpg.Connection) -> dict[str, TableInfo]:
    rows = await conn.fetch(
        """
        select c.relname::text as table_name, c.relrowsecurity as rls,
               a.attname::text as name, quote_ident(a.attname) as ident,
               format_type(a.atttypid, null) as type,
               format_type(case when t.typtype = 'd' then t.typbasetype else a.atttypid end,
                           null) as base_type,
               t.typtype = 'e' as is_enum
          from pg_class c
          join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
          join pg_type t on t.oid = a.atttypid
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
         order by c.relname, a.attnum
        """)
    tables: dict[str, TableInfo] = {}
    for r in rows:
        table = tables.setdefault(r["table_name"], TableInfo(name=r["table_name"], rls=r["rls"],
                                                             columns={}))
        table.columns[r["name"]] = ColumnInfo(name=r["name"], ident=r["ident"], type=r["type"],
                                              base_type=r["base_type"], is_enum=r["is_enum"])
    return tables


async def adopted_tables(conn: asyncpg.Connection) -> frozenset[str] | None:
    """The tables the migrations found already made by the product (their own record)."""
    if not await conn.fetchval("select to_regclass('public.publisher_adopted_tables') "
                               "is not null"):
        return None
    rows = await fetch_or_none(conn, "select table_name from public.publisher_adopted_tables")
    return None if rows is None else frozenset(r["table_name"] for r in rows)


async def fetch_or_none(conn: asyncpg.Connection, query: str,
                        *args: Any) -> list[asyncpg.Record] | None:
    """Rows, or None when the database refuses (permissions, a bad cast): in a savepoint,
    so the read-only transaction goes on."""
    try:
        async with conn.transaction():
            return list(await conn.fetch(query, *args))
    except asyncpg.PostgresError:
        return None


# --- migrations -------------------------------------------------------------------------

_STATES = {
    "applied": ("ok", "{name} applied"),
    "recorded_in_old_ledger": ("ok", "{name} applied (recorded in the old ledger "
                               "publisher_schema_migrations; `publisher migrate` carries it "
                               "over to supabase_migrations.schema_migrations)"),
    "changed": ("note", "{name} changed since it was applied; `publisher migrate` applies it "
                "again (the files are idempotent)"),
}


async def migration_states(conn: asyncpg.Connection) -> list[FileState]:
    """Each file of supabase/migrations and where it stands in the ledgers (read-only)."""
    return await file_states(conn, migration_files())


def migration_findings(states: Iterable[FileState], store_kind: str) -> list[Finding]:
    findings = []
    for entry in states:
        name = entry.file.path.name
        if entry.state in _STATES:
            level, text = _STATES[entry.state]
            findings.append(finding("migrations", f"migration.{entry.state}",
                                    "ok" if level == "ok" else "note", text.format(name=name),
                                    file=name))
        elif store_kind == "embedded":
            findings.append(finding("migrations", "migration.pending", "note",
                                    f"{name} not applied yet; the embedded database applies it "
                                    "at the next run", file=name))
        else:
            findings.append(finding("migrations", "migration.pending", "problem",
                                    f"{name} is not applied: run `publisher migrate`",
                                    blocking=True, file=name))
    return findings


def is_migrated(states: Iterable[FileState]) -> bool:
    return all(entry.state != "pending" for entry in states)


# --- our tables and their columns ----------------------------------------------------------

def table_findings(ins: Inspection) -> list[Finding]:
    findings: list[Finding] = []
    absent = [name for name in ins.schema.tables if name not in ins.tables]
    if absent and ins.migrated:
        findings.append(finding("tables", "table.missing", "problem",
                                f"{listing(absent)} missing although the migrations are "
                                "recorded as applied: run `publisher migrate`", blocking=True,
                                tables=absent))
    elif absent:
        findings.append(finding("tables", "table.create", "note",
                                f"the migrations will create {listing(absent)}", tables=absent))
    for name, ours in ins.schema.tables.items():
        table = ins.tables.get(name)
        if table is None:
            continue
        missing = [c for c in ours if c not in table.columns]
        if name in ADOPTABLE_TABLES and ins.product_table(name):
            kept = [c for c in table.columns if c not in ours]
            findings.append(finding(
                "tables", "table.existing", "note",
                f"{name} is your table: the migrations add columns and indexes to it and never "
                f"drop, rename or retype yours ({len(kept)} of its columns are not ours: "
                f"{listing(kept)})", table=name, kept=kept))
        if missing:
            findings.append(_missing_columns(ins, name, missing))
        elif name in ADOPTABLE_TABLES:
            findings.append(finding("tables", "columns.present", "ok",
                                    f"{name} has all {len(ours)} columns the publisher uses",
                                    table=name))
        findings.extend(_type_findings(name, ours, table))
    return findings


def _missing_columns(ins: Inspection, name: str, missing: list[str]) -> Finding:
    definitions = {c: ins.schema.tables[name][c].definition for c in missing}
    if ins.migrated:
        return finding("tables", "columns.missing", "problem",
                  f"{name} lacks {len(missing)} column(s) the publisher's functions use: "
                  f"{listing(missing)}; run `publisher migrate`", blocking=True, table=name,
                  columns=definitions)
    return finding("tables", "columns.add", "note",
              f"{name}: the migrations will add {len(missing)} column(s): {listing(missing)}",
              table=name, columns=definitions)


def _type_findings(name: str, ours: Mapping[str, Any], table: TableInfo) -> list[Finding]:
    findings = []
    for column, spec in ours.items():
        have = table.columns.get(column)
        if have is None:
            continue
        want = canonical_type(spec.type.removeprefix("public."))
        if want in (have.type, have.base_type):
            continue
        refusal = _refused_type(name, column, have.type)
        if refusal is not None:
            findings.append(refusal)
        elif column in ("id", "post_id") and have.base_type in ("uuid", "bigint"):
            findings.append(finding("tables", "ids", "note",
                               f"{name}.{column} is {have.base_type}: supported (post ids may "
                               "be bigint or uuid)", table=name))
        elif {want, have.base_type} <= {"text", "character varying", "character"}:
            continue  # text and varchar behave alike for every function
        elif not (column == "status" and have.is_enum):  # enums: see status_findings
            findings.append(finding("tables", "column.type", "problem",
                               f"{name}.{column} is {have.type}, the publisher's functions "
                               f"expect {want}: check they work with it before the first run",
                               table=name, column=column))
    return findings


# Product columns of a type the migrations stop at (20261130000100_schema.sql says the same):
# (table, column) -> (what it must be, what to do).
_REQUIRED_TYPES = {
    ("social_accounts", "id"): (
        "uuid account ids", "rename your accounts table (the publisher then creates its own "
        "social_accounts and never reads yours)"),
    ("created_content", "account_id"): (
        "a uuid naming a row of social_accounts",
        "rename your column (e.g. to product_account_id)"),
}


def _refused_type(name: str, column: str, have: str) -> Finding | None:
    required = _REQUIRED_TYPES.get((name, column))
    if required is None or have == "uuid":
        return None
    need, fix = required
    return finding("tables", "column.refused", "problem",
                   f"{name}.{column} is {have}; the publisher needs {need}: {fix}, then "
                   "`publisher migrate` (it stops at this column until then)", blocking=True,
                   table=name, column=column)


def accounts_table_findings(ins: Inspection) -> list[Finding]:
    """The product's own accounts table (tokens in some other table than social_accounts)."""
    findings = []
    for table in ins.tables.values():
        if table.name in ins.schema.table_names:
            continue
        tokens = [c for c in table.columns if "token" in c]
        if tokens and "platform" in table.columns:
            findings.append(finding(
                "tables", "accounts.other", "note",
                f"{table.name} looks like your accounts table ({listing(tokens)}): the publisher "
                "reads accounts from social_accounts only, with tokens sealed with "
                "ENCRYPTION_KEY (`publisher connect-account`); it never reads yours",
                table=table.name))
    return findings


# --- product columns under other names -----------------------------------------------------

def backfills(ins: Inspection) -> list[Backfill]:
    table = ins.tables.get("created_content")
    if table is None:
        return []
    ours = ins.schema.tables.get("created_content", {})
    has_zone = "scheduled_timezone" in table.columns or any(
        n in table.columns for n in LOOKALIKES["scheduled_timezone"])
    found = []
    for target, names in LOOKALIKES.items():
        for source in names:
            column = table.columns.get(source)
            if column is None or source in ours:
                continue
            fill = backfill(target, source, column.ident, column.base_type, has_zone)
            found.append(fill if fill is not None else Backfill(
                target=target, source=source, statement="", source_set="", target_empty=""))
    return found


async def lookalike_findings(ins: Inspection, fills: Iterable[Backfill]) -> list[Finding]:
    table = ins.tables.get("created_content")
    findings = []
    for fill in fills:
        if table is None:
            break
        what = f"{fill.source} looks like our {fill.target}"
        if not fill.statement:
            findings.append(finding("tables", "lookalike", "note",
                               f"{what}, but its type needs a conversion you write",
                               source=fill.source, target=fill.target))
            continue
        added = fill.target in table.columns
        where = f"{fill.target_empty} and {fill.source_set}" if added else fill.source_set
        rows = await fetch_or_none(
            ins.conn, f"select count(*) as n from public.created_content where {where}")  # noqa: S608 - catalog identifiers
        count = None if rows is None else int(rows[0]["n"])
        caveat = f" ({fill.caveat})" if fill.caveat else ""
        if count == 0 and added:
            findings.append(finding("tables", "lookalike", "ok",
                               f"{what}: nothing left to fill", source=fill.source,
                               target=fill.target, rows=0, statement=fill.statement))
            continue
        rows_text = "rows not counted" if count is None else f"{count} row(s) to fill"
        when = "" if added else " once the migrations have added it"
        findings.append(finding("tables", "lookalike", "note",
                           f"{what}: {rows_text}{when} with{caveat}:", sql=(fill.statement,),
                           source=fill.source, target=fill.target, rows=count,
                           statement=fill.statement))
    return findings


# --- status values -------------------------------------------------------------------------

async def status_findings(ins: Inspection) -> list[Finding]:
    table = ins.tables.get("created_content")
    if table is None or "status" not in table.columns:
        return []
    findings = await _status_type_findings(ins, table.columns["status"])
    rows = await fetch_or_none(ins.conn, "select status::text as status, count(*) as n "
                                         "from public.created_content group by 1 order by 2 desc")
    for r in rows or []:
        status, n = r["status"], int(r["n"])
        if status in POST_STATES:
            continue
        synonym = STATUS_SYNONYMS.get(status or "")
        if synonym:
            findings.append(finding(
                "tables", "status.unknown", "note",
                f"status {status!r} on {n} row(s) is not one the publisher knows; if it means "
                f"{synonym!r}:", sql=(_map_status(status, synonym),),
                status=status, rows=n))
        else:
            findings.append(finding("tables", "status.unknown", "note",
                               f"status {status!r} on {n} row(s) is not one the publisher knows:"
                               " a run leaves those rows alone", status=status, rows=n))
    return findings


async def _status_type_findings(ins: Inspection, column: ColumnInfo) -> list[Finding]:
    """An enum or a check constraint on status that refuses states the run writes."""
    if column.is_enum:
        # The functions write text, which an enum column refuses even with every state among
        # its labels; the migrations stop here (20261130000100_schema.sql).
        return [finding(
            "tables", "status.enum", "problem",
            f"created_content.status is {column.type}, an enum type; the publisher writes "
            "its states as text, which an enum column refuses: make it text (every value and "
            "what your app writes stay as they are), then `publisher migrate`",
            blocking=True, sql=("alter table public.created_content alter column status "
                                "type text;",))]
    allowed: list[tuple[str, set[str]]] = []
    checks = await ins.conn.fetch(
        "select conname::text as name, pg_get_constraintdef(oid) as def from pg_constraint "
        "where conrelid = 'public.created_content'::regclass and contype = 'c' "
        "and pg_get_constraintdef(oid) ~ '\\mstatus\\M'")
    for r in checks:
        literals = set(r["def"].split("'")[1::2])
        allowed.append((f"the check constraint {r['name']}", literals))
    findings = []
    for what, values in allowed:
        refused = [s for s in POST_STATES if s not in values]
        if refused:
            findings.append(finding(
                "tables", "status.refused", "problem",
                f"created_content.status: {what} refuses {listing(refused)}, which the run "
                "writes: allow them before the first run", blocking=True, refused=refused))
    return findings


def _map_status(status: str, synonym: str) -> str:
    quoted = "'" + status.replace("'", "''") + "'"  # a value from the table, as a literal
    return f"update public.created_content set status = '{synonym}' where status = {quoted};"  # noqa: S608 - literals quoted above


def finding(section: str, key: str, level: Level, message: str, *, blocking: bool = False,
       sql: tuple[str, ...] = (), **data: object) -> Finding:
    return Finding(section=section, key=key, level=level, message=message, blocking=blocking,
                   sql=sql, data=data)


def listing(names: Iterable[str], limit: int = 40) -> str:
    listed = list(names)
    shown = ", ".join(listed[:limit])
    return shown + (f", ... ({len(listed)} in all)" if len(listed) > limit else "") or "none"


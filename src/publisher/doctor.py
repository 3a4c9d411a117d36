"""`publisher doctor`: what the publisher would change and do, before it touches anything.

Connects with the same settings as a run and reports, one line per finding marked ok /
note / PROBLEM: the settings and the encryption key; which migration files are applied
(publisher_schema_migrations, or Supabase's CLI ledger); for the product's existing tables
the columns the migrations add, product columns that look like ours under another name with
the statement that fills ours, and status values we don't know; how many posts the first
run would publish, expire or fail; roles, row level security, policies and grants; whether
the key opens the stored tokens.

It only reads: everything runs in one READ ONLY transaction. Exit 1 when something must be
fixed before the first run (a PROBLEM marked so), else 0.

    doctor_command(settings, database_url, as_json, out) -> exit code
    diagnose(settings, database_url) -> Report
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

import asyncpg

from publisher.crypto import TokenCipher, parse_key
from publisher.doctor_access import access_findings
from publisher.doctor_checks import (
    Finding,
    Inspection,
    accounts_table_findings,
    adopted_tables,
    backfills,
    finding,
    is_migrated,
    load_tables,
    lookalike_findings,
    migration_findings,
    migration_states,
    status_findings,
    table_findings,
)
from publisher.doctor_firstrun import first_run_findings
from publisher.doctor_schema import read_schema
from publisher.errors import ConfigError, PublisherError
from publisher.keycheck import SAMPLE_SIZE, assess, wrong_key_message
from publisher.settings import Settings
from publisher.store.migrations import migrations_dir

SECTIONS = ("settings", "database", "migrations", "tables", "first run", "access", "tokens")
_MARKS = {"ok": "ok", "note": "note", "problem": "PROBLEM"}
_NEEDS_URL = ("the catalog checks (migrations, columns, row counts, grants) need a direct "
              "connection: set DATABASE_URL or pass --database-url (Supabase: Project settings "
              "-> Database -> connection string)")


@dataclass(frozen=True, kw_only=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return 1 if any(f.blocking for f in self.findings) else 0

    def count(self, level: str, *, blocking: bool | None = None) -> int:
        return sum(1 for f in self.findings if f.level == level
                   and (blocking is None or f.blocking == blocking))


async def doctor_command(settings: Settings | None, database_url: str | None, as_json: bool,
                         out: TextIO) -> int:
    """Runs every check and writes the report. `settings` None: read them from the
    environment here, so a settings error is reported with everything else."""
    report = await diagnose(settings, database_url)
    out.write(render_json(report) if as_json else render_text(report))
    return report.exit_code


async def diagnose(settings: Settings | None, database_url: str | None, *,
                   env: Mapping[str, str] | None = None) -> Report:
    findings: list[Finding] = []
    if settings is None:
        try:
            settings = Settings.from_env(env)
        except ConfigError as exc:
            findings.append(finding("settings", "settings.invalid", "problem", str(exc),
                                    blocking=True))
    # An explicit --database-url is a real database, never the embedded one.
    kind = "postgres" if database_url or settings is None else settings.store_kind
    if settings is not None:
        findings.append(finding("settings", "settings.valid", "ok",
                                f"settings are valid (store: {_store_text(settings, kind)})"))
    cipher, found = _cipher(settings, kind)
    findings += found
    url, found = await _database(settings, database_url)
    findings += found
    if url is not None:
        findings += await _inspect_postgres(url, settings, kind, cipher)
    elif settings is not None and kind == "supabase":
        findings += await _inspect_supabase(settings, cipher)
    return Report(findings=tuple(findings))


def _store_text(settings: Settings, kind: str) -> str:
    if kind != settings.store_kind:
        return "Postgres via --database-url"
    return {"supabase": "Supabase via SUPABASE_URL", "postgres": "Postgres via DATABASE_URL",
            "embedded": f"the embedded database under {settings.data_dir}"}[kind]


def _cipher(settings: Settings | None,
            kind: str) -> tuple[TokenCipher | None, list[Finding]]:
    """The token cipher a run would build, without creating a key file."""
    if settings is None:
        return None, []
    key = settings.encryption_key
    if key is None:
        local = settings.data_dir / "encryption.key"
        if kind != "embedded":
            return None, [finding("settings", "key.missing", "problem",
                                  "ENCRYPTION_KEY is missing: tokens are stored encrypted with "
                                  "it; make one with `python -m publisher keygen`",
                                  blocking=True)]
        if not local.exists():
            return None, [finding("settings", "key.local", "note",
                                  f"no ENCRYPTION_KEY: the embedded database's first run "
                                  f"creates one in {local}")]
        key = local.read_text().strip()
    try:
        cipher = TokenCipher(parse_key(key),
                             [parse_key(k, "ENCRYPTION_KEYS_PREVIOUS")
                              for k in settings.encryption_keys_previous])
    except ConfigError as exc:
        return None, [finding("settings", "key.invalid", "problem", str(exc), blocking=True)]
    previous = len(cipher.previous_key_ids)
    return cipher, [finding("settings", "key.valid", "ok",
                            f"ENCRYPTION_KEY is a valid key (key id {cipher.current_key_id}; "
                            f"{previous} previous key(s))")]


async def _database(settings: Settings | None,
                    explicit: str | None) -> tuple[str | None, list[Finding]]:
    """The Postgres URL to inspect, or None (Supabase through rpc only, or nothing)."""
    if explicit:
        return explicit, []
    if settings is None:
        return None, [finding("database", "database.none", "note",
                              "with the settings invalid, pass --database-url to check the "
                              "database too")]
    if settings.database_url:
        return settings.database_url, []
    if settings.store_kind == "supabase":
        return None, [finding("database", "database.catalog", "note", _NEEDS_URL)]
    if not (settings.data_dir / "pgdata").exists():
        return None, [finding("database", "database.embedded", "note",
                              f"the embedded database under {settings.data_dir} does not exist "
                              "yet: `publisher run` or `publisher migrate` creates it")]
    from publisher.store.embedded import embedded_url  # starts the local server if needed

    return await embedded_url(settings.data_dir), []


async def _inspect_postgres(url: str, settings: Settings | None, kind: str,
                            cipher: TokenCipher | None) -> list[Finding]:
    try:
        conn = await asyncpg.connect(url, statement_cache_size=0, timeout=30)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # The type only: a message could quote the URL, and the URL may hold a password.
        return [finding("database", "database.unreachable", "problem",
                        f"cannot connect to the database: {type(exc).__name__}",
                        blocking=True)]
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute("set local statement_timeout = '60s'; "
                               "set local lock_timeout = '5s'")
            return await _catalog(conn, settings, kind, cipher)
    except asyncpg.PostgresError as exc:
        return [finding("database", "database.error", "problem",
                        f"the checks stopped: {type(exc).__name__}: {exc}", blocking=True)]
    finally:
        await conn.close()


async def _catalog(conn: asyncpg.Connection, settings: Settings | None, kind: str,
                   cipher: TokenCipher | None) -> list[Finding]:
    row = await conn.fetchrow("select current_database() as db, current_user as role, "
                              "current_setting('server_version') as version")
    assert row is not None
    findings = [finding("database", "database.connected", "ok",
                        f"connected to {row['db']} as {row['role']} "
                        f"(Postgres {row['version'].split()[0]}), read-only")]
    try:
        schema = read_schema(migrations_dir())
        states = await migration_states(conn)
    except ConfigError as exc:
        return [*findings, finding("migrations", "migrations.files", "problem", str(exc),
                                   blocking=True)]
    findings += migration_findings(states, kind)
    ins = Inspection(conn=conn, schema=schema, tables=await load_tables(conn),
                     migrated=is_migrated(states), adopted=await adopted_tables(conn),
                     max_delay_hours=settings.max_publish_delay_hours if settings else 24.0,
                     store_kind=kind)
    findings += table_findings(ins)
    fills = backfills(ins)
    findings += await lookalike_findings(ins, fills)
    findings += await status_findings(ins)
    findings += accounts_table_findings(ins)
    findings += await first_run_findings(ins, fills)
    findings += await access_findings(ins)
    if cipher is not None:
        findings += await _key_check_postgres(conn, cipher)
    return findings


async def _key_check_postgres(conn: asyncpg.Connection, cipher: TokenCipher) -> list[Finding]:
    if not await conn.fetchval("select to_regprocedure('public.sample_sealed_tokens(integer)') "
                               "is not null"):
        return [finding("tokens", "key_check.skipped", "note",
                        "the key is tried on stored tokens once the migrations are applied")]
    sample = await conn.fetchval("select public.sample_sealed_tokens($1)::text", SAMPLE_SIZE)
    return _key_findings(cipher, [str(t) for t in json.loads(sample)])


async def _inspect_supabase(settings: Settings, cipher: TokenCipher | None) -> list[Finding]:
    """Through PostgREST only the contract functions answer: two read-only ones."""
    from publisher.store import open_store

    try:
        store = await open_store(settings)
    except PublisherError as exc:
        return [finding("database", "database.unreachable", "problem", str(exc), blocking=True)]
    try:
        status = await store.status()
        findings = [finding("database", "database.supabase", "ok",
                            f"the publisher's functions answer through Supabase; "
                            f"{status.get('due_now', 0)} post(s) are due now")]
        if cipher is not None:
            findings += _key_findings(cipher, await store.sample_sealed_tokens(SAMPLE_SIZE))
    except PublisherError as exc:
        findings = [finding("database", "database.supabase", "problem",
                            f"{exc} (are the migrations applied? a new function needs "
                            "PostgREST's schema reload, which the migrations send)",
                            blocking=True)]
    finally:
        await store.close()
    return findings


def _key_findings(cipher: TokenCipher, tokens: list[str]) -> list[Finding]:
    """The run's own pre-claim key check (publisher.keycheck), reported instead of raised."""
    check = assess(cipher, tokens)
    if check.sampled == 0:
        return [finding("tokens", "key_check.empty", "ok",
                        "no sealed tokens of accounts with due posts to try the key on")]
    if check.wrong_key:
        return [finding("tokens", "key_check.wrong_key", "problem",
                        wrong_key_message(check, cipher), blocking=True)]
    findings = [finding("tokens", "key_check.opened", "ok",
                        f"the key opens {check.opened} of {check.sampled} sampled token(s)")]
    if check.unknown_ids or check.refused_ids:
        ids = sorted({*check.unknown_ids, *check.refused_ids})
        findings.append(finding("tokens", "key_check.some", "problem",
                                f"some tokens name key id(s) {', '.join(ids)} that do not open "
                                "with the configured keys: those accounts' posts fail"))
    if check.malformed:
        findings.append(finding("tokens", "key_check.malformed", "note",
                                f"{check.malformed} sampled token(s) are not in the sealed "
                                "format (plain text?): those accounts' posts fail until they "
                                "are re-sealed"))
    return findings


def render_text(report: Report) -> str:
    lines = ["publisher doctor (read-only)"]
    for section in SECTIONS:
        found = [f for f in report.findings if f.section == section]
        if not found:
            continue
        lines.append(f"\n{section}")
        for f in found:
            message = f.message
            if f.blocking:  # before a closing colon that introduces a statement
                colon = ":" if message.endswith(":") else ""
                message = f"{message.removesuffix(':')} (fix before the first run){colon}"
            lines.append(f"  {_MARKS[f.level]:<8} {message}")
            lines.extend(f"           {statement}" for statement in f.sql)
    blocking = report.count("problem", blocking=True)
    others = report.count("problem", blocking=False)
    verdict = (f"{blocking} problem(s) to fix before the first run (exit 1)" if blocking
               else "nothing stops the first run (exit 0)")
    lines.append(f"\n{verdict}; {others} other problem(s), {report.count('note')} note(s)")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps({
        "exit_code": report.exit_code,
        "blocking": report.count("problem", blocking=True),
        "problems": report.count("problem"),
        "notes": report.count("note"),
        "findings": [{"section": f.section, "key": f.key, "level": f.level,
                      "blocking": f.blocking, "message": f.message, "sql": list(f.sql),
                      "data": dict(f.data)} for f in report.findings],
    }, indent=2, default=str) + "\n"


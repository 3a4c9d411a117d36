"""Which file of supabase/schemas/ each object goes in: one concept a file.

Supabase's CLI applies the files in file-name order, so the numbers carry the dependencies:
roles and types first, then the tables (accounts before the posts that point at them),
then the functions, grouped by what they are for (a `language sql` body is checked when
it is created, so every table it names exists by then). A table's trigger functions go in
the table's file, ahead of it. A table or function this map does not know yet goes in a
file named after the migration that (last) creates it: 3N_<migration>.sql for tables,
46_outbox.sql / 47_preflight.sql / 48_<migration>.sql for functions.
"""

from __future__ import annotations

import re
from pathlib import Path

ROLES = "00_roles.sql"
SCHEMAS = "01_schemas.sql"
EXTENSIONS = "05_extensions.sql"
TYPES = "10_types.sql"
VIEWS = "50_views.sql"

TABLE_FILES: dict[str, str] = {
    "public.social_accounts": "20_social_accounts.sql",
    "public.created_content": "21_created_content.sql",
    "public.publish_attempts": "22_publish_attempts.sql",
    "public.publisher_adopted_tables": "30_internal_tables.sql",
    "public.publisher_runs": "30_internal_tables.sql",
    "public.publish_quotas": "30_internal_tables.sql",
    "public.quota_reservations": "30_internal_tables.sql",
    "public.platform_pauses": "30_internal_tables.sql",
}

_CLAIM, _RECORD, _HOUSEKEEPING = "40_claim.sql", "41_record.sql", "42_housekeeping.sql"
_ACCOUNTS, _STATUS, _RECOVERY = "43_accounts_tokens.sql", "44_status.sql", "45_recovery.sql"
FUNCTION_FILES: dict[str, str] = {
    "claim_due_posts": _CLAIM, "claim_for_review": _CLAIM, "list_due_posts": _CLAIM,
    "sync_posts": _RECORD, "mark_sending": _RECORD, "record_outcomes": _RECORD,
    "record_run": _RECORD, "pause_account": _RECORD, "pause_platform": _RECORD,
    "prepare_due_posts": _HOUSEKEEPING, "list_unresolved_schedules": _HOUSEKEEPING,
    "apply_resolved_schedules": _HOUSEKEEPING,
    "connect_account": _ACCOUNTS, "lock_account_refresh": _ACCOUNTS,
    "save_refreshed_tokens": _ACCOUNTS, "sample_sealed_tokens": _ACCOUNTS,
    "list_account_tokens": _ACCOUNTS, "reseal_account_tokens": _ACCOUNTS,
    "publisher_status": _STATUS, "publisher_kpis": _STATUS, "publisher_alarms": _STATUS,
    "list_review_posts": _RECOVERY, "requeue_posts": _RECOVERY, "cancel_posts": _RECOVERY,
    "mark_published": _RECOVERY, "retry_failed_posts": _RECOVERY,
}
# Functions of migrations written after this map: the file their migration's name gives.
MIGRATION_FUNCTION_FILES = {"outbox": "46_outbox.sql", "preflight": "47_preflight.sql"}

TITLES = {
    ROLES: "Roles the grants name (Supabase has them; plain Postgres gets them here).",
    SCHEMAS: "Schemas of ours besides public.",
    EXTENSIONS: "Extensions the functions use.",
    TYPES: "Types: publisher_post_id is created_content.id's type (bigint on a table we "
           "create, the product's own on its table).",
    "20_social_accounts.sql": "Connected accounts: sealed tokens, status, pauses; owners "
                              "read their own, never a token.",
    "21_created_content.sql": "Posts: the queue (status, due time, lease, sending stamp), "
                              "the trigger that wakes workers, owners' access. On a "
                              "product's own created_content the migrations add only the "
                              "columns, indexes and trigger: its grants and policies stay "
                              "the product's. Where Supabase's auth.uid() exists, the "
                              "policies call it in place of the request.jwt.claims "
                              "expression below (the same value).",
    "22_publish_attempts.sql": "The attempt log: one row per publish attempt; owners read "
                               "their posts' attempts.",
    "30_internal_tables.sql": "Internal tables, service_role only: runs, quotas and their "
                              "reservations, platform pauses, adopted tables.",
    _CLAIM: "Claiming: due posts (quotas reserved in the same transaction), posts to "
            "reconcile, the due list.",
    _RECORD: "Recording: sending stamps and outcomes (fenced by the claim), pauses, runs.",
    _HOUSEKEEPING: "Housekeeping before a claim: expire, release lapsed leases, resolve "
                   "local schedules.",
    _ACCOUNTS: "Accounts and tokens: connect, refresh under a lock, reseal, sample.",
    _STATUS: "Status: what the publisher is doing, KPIs, alarms.",
    _RECOVERY: "Recovery: operators' tools for posts in review, failed or stuck.",
    "46_outbox.sql": "The outbox: events for the product, claimed and delivered.",
    "47_preflight.sql": "Preflight: checks of posts and accounts before they are due.",
    VIEWS: "Views.",
}

_CREATE_TABLE = re.compile(r"create\s+table\s+(?:if\s+not\s+exists\s+)?public\.(\w+)", re.I)
_CREATE_FUNCTION = re.compile(r"create\s+(?:or\s+replace\s+)?function\s+public\.(\w+)", re.I)
_MIGRATION_NAME = re.compile(r"^[0-9]+_(.*)\.sql$")


def _defining_migration(pattern: re.Pattern[str], name: str,
                        migrations: list[Path]) -> str | None:
    """The name part of the last migration file that creates `name`."""
    found = None
    for path in migrations:
        if any(m[1] == name for m in pattern.finditer(path.read_text())):
            match = _MIGRATION_NAME.match(path.name)
            found = match[1] if match else path.stem
    return found


def table_files(tables: list[str], migrations: list[Path]) -> dict[str, str]:
    """File of each table (regclass text); unknown ones by their migration, 31_ onwards
    in migration order (a table's foreign keys point at tables of earlier migrations)."""
    files: dict[str, str] = {}
    later: dict[str, list[str]] = {}
    for table in tables:
        if table in TABLE_FILES:
            files[table] = TABLE_FILES[table]
        else:
            bare = table.removeprefix("public.")
            later.setdefault(_defining_migration(_CREATE_TABLE, bare, migrations)
                             or "tables", []).append(table)
    names = [m[1] for m in map(_MIGRATION_NAME.match, (p.name for p in migrations)) if m]

    def rank(migration: str) -> tuple[int, str]:
        return (names.index(migration) if migration in names else len(names), migration)

    for n, migration in enumerate(sorted(later, key=rank)):
        for table in later[migration]:
            files[table] = f"3{min(n + 1, 9)}_{migration}.sql"
    return files


def function_file(name: str, migrations: list[Path]) -> str:
    """File of a (non-trigger) function by its bare name."""
    if name in FUNCTION_FILES:
        return FUNCTION_FILES[name]
    migration = _defining_migration(_CREATE_FUNCTION, name, migrations)
    if migration is None:
        return "48_functions.sql"
    return MIGRATION_FUNCTION_FILES.get(migration, f"48_{migration}.sql")


def title(file: str) -> str:
    """One line on what the file holds."""
    if file in TITLES:
        return TITLES[file]
    match = re.match(r"^(\d)\d_(.*)\.sql$", file)
    kind = "Tables" if match and match[1] == "3" else "Functions"
    return f"{kind} of the migration {match[2] if match else file}."

"""The SQL contract: the functions in supabase/migrations, with their parameters.

Every transport calls the database only through these, by name and with these named
parameters, so Supabase rpc, a direct connection and the embedded database run the same
rules. tests/store/test_contract.py checks this table against the migrated database.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SqlFunction:
    name: str
    params: tuple[tuple[str, str], ...]   # (parameter name, SQL type), in order
    returns: str


FUNCTIONS: dict[str, SqlFunction] = {
    f.name: f
    for f in (
        SqlFunction("prepare_due_posts",
                    (("p_max_delay_hours", "double precision"), ("p_platforms", "text[]")),
                    "jsonb"),
        SqlFunction("list_unresolved_schedules", (("p_limit", "integer"),), "jsonb"),
        SqlFunction("apply_resolved_schedules", (("p_items", "jsonb"),), "integer"),
        SqlFunction("claim_due_posts",
                    (("p_worker", "text"), ("p_limits", "jsonb"),
                     ("p_lease_seconds", "double precision")),
                    "jsonb"),
        SqlFunction("mark_sending", (("p_worker", "text"), ("p_claims", "jsonb")), "jsonb"),
        SqlFunction("record_outcomes", (("p_worker", "text"), ("p_outcomes", "jsonb")), "jsonb"),
        SqlFunction("sync_posts",
                    (("p_worker", "text"), ("p_sending", "jsonb"), ("p_outcomes", "jsonb")),
                    "jsonb"),
        SqlFunction("pause_account",
                    (("p_account_id", "uuid"), ("p_seconds", "double precision"),
                     ("p_reason", "text")),
                    "void"),
        SqlFunction("pause_platform",
                    (("p_platform", "text"), ("p_seconds", "double precision"),
                     ("p_reason", "text")),
                    "void"),
        SqlFunction("record_run",
                    (("p_worker", "text"), ("p_started_at", "timestamp with time zone"),
                     ("p_summary", "jsonb")),
                    "bigint"),
        SqlFunction("publisher_status", (), "jsonb"),
        SqlFunction("list_due_posts", (("p_limit", "integer"),), "jsonb"),
        SqlFunction("claim_for_review",
                    (("p_worker", "text"), ("p_platforms", "text[]"), ("p_limit", "integer"),
                     ("p_max_checks", "integer"), ("p_every_seconds", "double precision"),
                     ("p_lease_seconds", "double precision")),
                    "jsonb"),
        SqlFunction("lock_account_refresh",
                    (("p_account_id", "uuid"), ("p_worker", "text"),
                     ("p_seconds", "double precision")),
                    "jsonb"),
        SqlFunction("save_refreshed_tokens",
                    (("p_account_id", "uuid"), ("p_worker", "text"),
                     ("p_access_token_encrypted", "text"), ("p_refresh_token_encrypted", "text"),
                     ("p_token_expires_at", "timestamp with time zone"), ("p_status", "text"),
                     ("p_reason", "text")),
                    "boolean"),
        SqlFunction("connect_account",
                    (("p_platform", "text"), ("p_external_id", "text"),
                     ("p_display_name", "text"), ("p_user_id", "uuid"),
                     ("p_access_token_encrypted", "text"),
                     ("p_refresh_token_encrypted", "text"),
                     ("p_token_expires_at", "timestamp with time zone")),
                    "uuid"),
    )
}

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
        # Monitoring (20261207000900_status.sql): `publisher status` and `status --check`.
        SqlFunction("publisher_kpis", (("p_hours", "double precision[]"),), "jsonb"),
        SqlFunction("publisher_alarms",
                    (("p_silent_minutes", "double precision"),
                     ("p_overdue_minutes", "double precision"),
                     ("p_review_hours", "double precision"),
                     ("p_failure_rate_percent", "double precision"),
                     ("p_failure_min_posts", "integer")),
                    "jsonb"),
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
                     ("p_token_expires_at", "timestamp with time zone"),
                     ("p_login_type", "text")),
                    "uuid"),
        SqlFunction("sample_sealed_tokens", (("p_limit", "integer"),), "jsonb"),
        SqlFunction("list_account_tokens",
                    (("p_after", "uuid"), ("p_limit", "integer"), ("p_access_column", "text"),
                     ("p_refresh_column", "text")),
                    "jsonb"),
        SqlFunction("reseal_account_tokens",
                    (("p_items", "jsonb"), ("p_access_column", "text"),
                     ("p_refresh_column", "text")),
                    "jsonb"),
        # Review and recovery (20261207001000_recovery.sql): post ids as text, cast in SQL.
        SqlFunction("list_review_posts",
                    (("p_ids", "text[]"), ("p_platform", "text"), ("p_limit", "integer")),
                    "jsonb"),
        SqlFunction("requeue_posts",
                    (("p_ids", "text[]"), ("p_from", "text[]"), ("p_operator", "text"),
                     ("p_note", "text")),
                    "jsonb"),
        SqlFunction("cancel_posts",
                    (("p_ids", "text[]"), ("p_operator", "text"), ("p_note", "text")),
                    "jsonb"),
        SqlFunction("mark_published",
                    (("p_id", "text"), ("p_platform_post_id", "text"), ("p_platform_url", "text"),
                     ("p_operator", "text"), ("p_note", "text")),
                    "jsonb"),
        SqlFunction("retry_failed_posts",
                    (("p_reason", "text"), ("p_since", "timestamp with time zone"),
                     ("p_platform", "text"), ("p_dry_run", "boolean"), ("p_operator", "text")),
                    "jsonb"),
        # Notifications (20261207001100_outbox.sql): webhook delivery of publisher_events.
        SqlFunction("claim_events",
                    (("p_worker", "text"), ("p_limit", "integer"),
                     ("p_lease_seconds", "double precision")),
                    "jsonb"),
        SqlFunction("finish_events", (("p_results", "jsonb"),), "jsonb"),
        # Problems found before they are due (20261207001200_preflight.sql).
        SqlFunction("preflight_candidates",
                    (("p_hours", "double precision"), ("p_limit", "integer"),
                     ("p_ids", "text[]"), ("p_changed_only", "boolean")),
                    "jsonb"),
        SqlFunction("preflight_accounts",
                    (("p_hours", "double precision"), ("p_limit", "integer"),
                     ("p_every_seconds", "double precision"), ("p_account_ids", "uuid[]")),
                    "jsonb"),
        SqlFunction("record_preflight",
                    (("p_posts", "jsonb"), ("p_accounts", "jsonb"),
                     ("p_hours", "double precision")),
                    "jsonb"),
    )
}

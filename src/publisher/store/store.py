"""Store: typed operations over the SQL contract, one database statement each."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.models import Account, ClaimedPost, PostId
from publisher.settings import Settings
from publisher.store.transport import Transport

# A "sending" stamp: (post id, attempt), or with the state to merge into publish_state.
Stamp = tuple[PostId, int] | tuple[PostId, int, Mapping[str, Any] | None]
ACCOUNT_CACHE_MAX = 20_000  # accounts whose Account is kept between claims

log = logging.getLogger("publisher.store")


@dataclass(frozen=True, kw_only=True, slots=True)
class OutcomeRow:
    """One post's outcome as record_outcomes takes it."""

    id: PostId
    attempt: int
    status: str
    outcome: str
    error: str | None = None
    platform_post_id: str | None = None
    platform_url: str | None = None
    delay_seconds: float | None = None
    refund_attempt: bool = False
    detail: Mapping[str, Any] | None = None
    account_id: str | None = None
    account_status: str | None = None
    state: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Only the keys that say something: record_outcomes reads a missing key as null
        (jsonb_to_recordset), and most outcomes leave most of them empty, so the batch is
        a third of the size to encode, send and parse."""
        row: dict[str, Any] = {"id": self.id, "attempt": self.attempt, "status": self.status,
                               "outcome": self.outcome}
        if self.error is not None:
            row["error"] = self.error
        if self.platform_post_id is not None:
            row["platform_post_id"] = self.platform_post_id
        if self.platform_url is not None:
            row["platform_url"] = self.platform_url
        if self.delay_seconds is not None:
            row["delay_seconds"] = self.delay_seconds
        if self.refund_attempt:
            row["refund_attempt"] = True
        if self.detail:
            row["detail"] = dict(self.detail)
        if self.account_id is not None:
            row["account_id"] = self.account_id
        if self.account_status is not None:
            row["account_status"] = self.account_status
        if self.state:
            row["state"] = dict(self.state)
        return row


def _stamp_json(stamp: Stamp) -> dict[str, Any]:
    """A stamp as mark_sending takes it; the state only when there is one (most have none)."""
    post_id, attempt, *rest = stamp
    item: dict[str, Any] = {"id": post_id, "attempt": attempt}
    if rest and rest[0]:
        item["state"] = dict(rest[0])
    return item


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncResult:
    marked: frozenset[PostId]   # posts now stamped "sending": these may be sent
    applied: int                # outcomes written
    lost: tuple[PostId, ...]    # outcomes fenced out: the claim was no longer ours


class Store:
    """The publisher's only way into the database. Counts its statements."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.statements = 0
        # Accounts of claimed posts, shared by the posts of one account across claims
        # (see ClaimedPost.from_row); bounded for a long-running worker.
        self._accounts: dict[Any, tuple[dict[str, Any], Account]] = {}

    async def _call(self, function: str, **params: Any) -> Any:
        self.statements += 1
        if not log.isEnabledFor(logging.DEBUG):
            return await self._transport.call(function, params)
        # DEBUG: one line per statement: the function, how long it took, the items sent in
        # lists and the rows that came back; for claims, the posts per platform. No values.
        started = time.perf_counter()
        result = await self._transport.call(function, params)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        sent = sum(len(v) for v in params.values() if isinstance(v, list))
        rows = len(result) if isinstance(result, list) else None
        claimed = (dict(Counter(str(row.get("platform")) for row in result
                                if isinstance(row, dict)))
                   if isinstance(result, list) and function.startswith("claim") else None)
        log.debug("store %s in %.1f ms: %d items sent%s%s", function, elapsed_ms, sent,
                  "" if rows is None else f", {rows} rows back",
                  f", claimed per platform {claimed}" if claimed else "",
                  extra={"fields": {"event": "store_call", "function": function,
                                    "ms": elapsed_ms, "items_sent": sent, "rows": rows,
                                    **({"claimed": claimed} if claimed is not None else {})}})
        return result

    async def prepare(self, max_delay_hours: float, platforms: Sequence[str]) -> dict[str, int]:
        counts = await self._call("prepare_due_posts", p_max_delay_hours=max_delay_hours,
                                  p_platforms=list(platforms))
        return {str(k): int(v) for k, v in counts.items()}

    async def list_unresolved_schedules(self, limit: int) -> list[dict[str, Any]]:
        rows = await self._call("list_unresolved_schedules", p_limit=limit)
        return list(rows)

    async def apply_resolved_schedules(self, items: Sequence[Mapping[str, Any]], *,
                                       max_delay_hours: float | None = None) -> int:
        """Writes {"id", "scheduled_at"} or {"id", "error"} items; with max_delay_hours, a
        post whose instant is already that far past is expired in the same statement."""
        if max_delay_hours is not None:
            items = [{**item, "max_delay_hours": max_delay_hours} if "scheduled_at" in item
                     else item for item in items]
        return int(await self._call("apply_resolved_schedules", p_items=list(items)))

    async def claim(self, worker: str, limits: Mapping[str, int],
                    lease_seconds: float) -> list[ClaimedPost]:
        rows = await self._call("claim_due_posts", p_worker=worker, p_limits=dict(limits),
                                p_lease_seconds=lease_seconds)
        if len(self._accounts) > ACCOUNT_CACHE_MAX:
            self._accounts.clear()
        accounts = self._accounts
        # from_row never raises: an odd row becomes a post that fails with its reason. Only
        # a row that is not an object (no id to fence a write with) is left to its lease.
        posts = [ClaimedPost.from_row(row, accounts) for row in rows if isinstance(row, dict)]
        if len(posts) != len(rows):
            log.error("claim_due_posts returned %d rows that are not objects; left to their "
                      "lease", len(rows) - len(posts))
        return posts

    async def claim_for_review(self, worker: str, platforms: Sequence[str], *, limit: int,
                               max_checks: int, every_seconds: float,
                               lease_seconds: float) -> list[ClaimedPost]:
        rows = await self._call("claim_for_review", p_worker=worker, p_platforms=list(platforms),
                                p_limit=limit, p_max_checks=max_checks,
                                p_every_seconds=every_seconds, p_lease_seconds=lease_seconds)
        posts = [ClaimedPost.from_row(row) for row in rows if isinstance(row, dict)]
        if len(posts) != len(rows):
            log.error("claim_for_review returned %d rows that are not objects; left to their "
                      "lease", len(rows) - len(posts))
        return posts

    async def sync(self, worker: str, sending: Sequence[Stamp],
                   outcomes: Sequence[OutcomeRow]) -> SyncResult:
        """One statement: writes the outcomes, then stamps "sending" on the (id, attempt)
        claims this worker still holds, merging each stamp's state (if any) into the post's
        publish_state. Ids come back as they went (int or str)."""
        result = await self._call("sync_posts", p_worker=worker,
                                  p_sending=[_stamp_json(stamp) for stamp in sending],
                                  p_outcomes=[o.to_json() for o in outcomes])
        recorded = result.get("outcomes") or {"applied": 0, "lost": []}
        return SyncResult(marked=frozenset(result["sending"]),
                          applied=int(recorded["applied"]), lost=tuple(recorded["lost"]))

    # The two halves of sync_posts on their own (the run uses sync).
    async def mark_sending(self, worker: str, claims: Sequence[Stamp]) -> set[PostId]:
        marked = await self._call("mark_sending", p_worker=worker,
                                  p_claims=[_stamp_json(claim) for claim in claims])
        return set(marked)

    async def record(self, worker: str, outcomes: Sequence[OutcomeRow]) -> SyncResult:
        result = await self._call("record_outcomes", p_worker=worker,
                                  p_outcomes=[o.to_json() for o in outcomes])
        return SyncResult(marked=frozenset(), applied=int(result["applied"]),
                          lost=tuple(result["lost"]))

    async def pause_account(self, account_id: str, seconds: float, reason: str) -> None:
        await self._call("pause_account", p_account_id=account_id, p_seconds=seconds,
                         p_reason=reason)

    async def pause_platform(self, platform: str, seconds: float, reason: str) -> None:
        await self._call("pause_platform", p_platform=platform, p_seconds=seconds,
                         p_reason=reason)

    async def record_run(self, worker: str, started_at: datetime,
                         summary: Mapping[str, Any]) -> int:
        return int(await self._call("record_run", p_worker=worker, p_started_at=started_at,
                                    p_summary=dict(summary)))

    async def list_due(self, limit: int) -> list[dict[str, Any]]:
        return list(await self._call("list_due_posts", p_limit=limit))

    async def status(self) -> dict[str, Any]:
        return dict(await self._call("publisher_status"))

    async def connect_account(self, *, platform: str, external_id: str,
                              display_name: str | None, user_id: str | None,
                              access_token_encrypted: str,
                              refresh_token_encrypted: str | None,
                              token_expires_at: datetime | None,
                              login_type: str | None = None) -> str:
        """login_type: Instagram's 'facebook' or 'instagram' (None keeps the stored one)."""
        return str(await self._call(
            "connect_account", p_platform=platform, p_external_id=external_id,
            p_display_name=display_name, p_user_id=user_id,
            p_access_token_encrypted=access_token_encrypted,
            p_refresh_token_encrypted=refresh_token_encrypted,
            p_token_expires_at=token_expires_at, p_login_type=login_type))

    async def lock_account_refresh(self, account_id: str, worker: str,
                                   seconds: float) -> tuple[bool, Account | None]:
        """(whether we hold the refresh lock, the account's current tokens)."""
        result = await self._call("lock_account_refresh", p_account_id=account_id,
                                  p_worker=worker, p_seconds=seconds)
        row = result.get("account")
        return bool(result["locked"]), Account.from_row(row) if isinstance(row, dict) else None

    async def save_refreshed_tokens(self, account_id: str, worker: str, *,
                                    access_token_encrypted: str | None,
                                    refresh_token_encrypted: str | None,
                                    token_expires_at: datetime | None,
                                    status: str | None = "active",
                                    reason: str | None = None) -> bool:
        return bool(await self._call(
            "save_refreshed_tokens", p_account_id=account_id, p_worker=worker,
            p_access_token_encrypted=access_token_encrypted,
            p_refresh_token_encrypted=refresh_token_encrypted,
            p_token_expires_at=token_expires_at, p_status=status, p_reason=reason))

    async def listen_for_due_posts(self, callback: Callable[[], None]) -> bool:
        """Calls back when posts become due; False when this transport cannot (poll)."""
        listen = getattr(self._transport, "listen", None)
        if listen is None:
            return False
        return bool(await listen("publisher_due", callback))

    async def close(self) -> None:
        await self._transport.close()

    async def sample_sealed_tokens(self, limit: int) -> list[str]:
        """Up to `limit` sealed access tokens of active accounts with due posts, spread
        over the key ids they name (for publisher.keycheck; read-only)."""
        return [str(t) for t in await self._call("sample_sealed_tokens", p_limit=limit)]

    # publisher.reseal: a page of stored tokens, and a fenced batch of re-sealed ones.
    async def list_account_tokens(self, after: str | None, limit: int, *,
                                  access_column: str | None,
                                  refresh_column: str | None) -> dict[str, Any]:
        return dict(await self._call("list_account_tokens", p_after=after, p_limit=limit,
                                     p_access_column=access_column,
                                     p_refresh_column=refresh_column))

    async def reseal_account_tokens(self, items: Sequence[Mapping[str, Any]], *,
                                    access_column: str | None,
                                    refresh_column: str | None) -> dict[str, Any]:
        return dict(await self._call("reseal_account_tokens", p_items=list(items),
                                     p_access_column=access_column,
                                     p_refresh_column=refresh_column))


    # Review and recovery (publisher.recovery): post ids as text, cast in SQL; each answers
    # {"changed", "unchanged", "refused"} (see 20261207001000_recovery.sql).
    async def list_review_posts(self, ids: Sequence[str] | None, *, platform: str | None,
                                limit: int) -> dict[str, Any]:
        return dict(await self._call("list_review_posts",
                                     p_ids=None if ids is None else list(ids),
                                     p_platform=platform, p_limit=limit))

    async def requeue_posts(self, ids: Sequence[str], *, from_states: Sequence[str] | None,
                            operator: str | None, note: str | None) -> dict[str, Any]:
        return dict(await self._call(
            "requeue_posts", p_ids=list(ids),
            p_from=None if from_states is None else list(from_states),
            p_operator=operator, p_note=note))

    async def cancel_posts(self, ids: Sequence[str], *, operator: str | None,
                           note: str | None) -> dict[str, Any]:
        return dict(await self._call("cancel_posts", p_ids=list(ids), p_operator=operator,
                                     p_note=note))

    async def mark_published(self, post_id: str, *, platform_post_id: str | None,
                             platform_url: str | None, operator: str | None,
                             note: str | None) -> dict[str, Any]:
        return dict(await self._call("mark_published", p_id=post_id,
                                     p_platform_post_id=platform_post_id,
                                     p_platform_url=platform_url, p_operator=operator,
                                     p_note=note))

    async def retry_failed_posts(self, *, reason: str, since: datetime, platform: str | None,
                                 dry_run: bool, operator: str | None) -> dict[str, Any]:
        return dict(await self._call("retry_failed_posts", p_reason=reason, p_since=since,
                                     p_platform=platform, p_dry_run=dry_run,
                                     p_operator=operator))

    # Monitoring (publisher.status): KPIs over windows of hours, and the alarms' facts.
    async def kpis(self, hours: Sequence[float]) -> dict[str, Any]:
        return dict(await self._call("publisher_kpis", p_hours=[float(h) for h in hours]))

    async def alarms(self, *, silent_minutes: float, overdue_minutes: float,
                     review_hours: float, failure_rate_percent: float,
                     failure_min_posts: int) -> dict[str, Any]:
        return dict(await self._call(
            "publisher_alarms", p_silent_minutes=silent_minutes,
            p_overdue_minutes=overdue_minutes, p_review_hours=review_hours,
            p_failure_rate_percent=failure_rate_percent,
            p_failure_min_posts=failure_min_posts))

    # Problems found before they are due (publisher.preflight, 20261207001200_preflight.sql).
    async def preflight_candidates(self, hours: float, limit: int, *,
                                   ids: Sequence[str] | None,
                                   changed_only: bool) -> list[dict[str, Any]]:
        """Posts to check, each with its account and the updated_at that fences the write."""
        rows = await self._call("preflight_candidates", p_hours=hours, p_limit=limit,
                                p_ids=None if ids is None else list(ids),
                                p_changed_only=changed_only)
        return [row for row in rows if isinstance(row, dict)]

    async def preflight_accounts(self, hours: float, limit: int, *, every_seconds: float,
                                 account_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """Accounts taken for a token check (stamped: not taken again for every_seconds)."""
        rows = await self._call("preflight_accounts", p_hours=hours, p_limit=limit,
                                p_every_seconds=every_seconds,
                                p_account_ids=None if account_ids is None
                                else list(account_ids))
        return [row for row in rows if isinstance(row, dict)]

    async def record_preflight(self, posts: Sequence[Mapping[str, Any]],
                               accounts: Sequence[Mapping[str, Any]], *,
                               hours: float) -> dict[str, Any]:
        return dict(await self._call("record_preflight", p_posts=list(posts),
                                     p_accounts=list(accounts), p_hours=hours))

    # Notifications (publisher.webhooks, 20261207001100_outbox.sql): publisher_events,
    # leased to one deliverer at a time, then delivered or scheduled again.
    async def claim_events(self, worker: str, limit: int,
                           lease_seconds: float) -> list[dict[str, Any]]:
        rows = await self._call("claim_events", p_worker=worker, p_limit=limit,
                                p_lease_seconds=lease_seconds)
        return [row for row in rows if isinstance(row, dict)]

    async def finish_events(self, results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """results: {"id", "attempt", "error" (None: delivered), "retry_after"}."""
        counts = await self._call("finish_events", p_results=list(results))
        return {str(k): int(v) for k, v in counts.items()}

async def database_url(settings: Settings) -> str:
    """The Postgres URL for the direct or embedded store (not for Supabase)."""
    if settings.database_url:
        return settings.database_url
    from publisher.store.embedded import embedded_url

    return await embedded_url(settings.data_dir)


async def open_store(settings: Settings, *, pool_size: int = 4) -> Store:
    """Opens the store the settings name: Supabase, a Postgres URL, or the embedded one."""
    if settings.store_kind == "supabase":
        from publisher.store.supabase import SupabaseTransport

        url, key = settings.supabase_url or "", settings.supabase_service_role_key or ""
        return Store(await SupabaseTransport.connect(url, key))
    from publisher.store.postgres import PostgresTransport

    url = await database_url(settings)
    if settings.store_kind == "embedded":
        from publisher.store.migrations import apply_migrations

        await apply_migrations(url)  # the local default is always ready to use
    return Store(await PostgresTransport.connect(url, max_size=pool_size))

"""Store: typed operations over the SQL contract, one database statement each."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.models import Account, ClaimedPost
from publisher.settings import Settings
from publisher.store.transport import Transport

ACCOUNT_CACHE_MAX = 20_000  # accounts whose Account is kept between claims


@dataclass(frozen=True, kw_only=True, slots=True)
class OutcomeRow:
    """One post's outcome as record_outcomes takes it."""

    id: int
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


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncResult:
    marked: frozenset[int]      # posts now stamped "sending": these may be sent
    applied: int                # outcomes written
    lost: tuple[int, ...]       # outcomes fenced out: the claim was no longer ours


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
        return await self._transport.call(function, params)

    async def prepare(self, max_delay_hours: float, platforms: Sequence[str]) -> dict[str, int]:
        counts = await self._call("prepare_due_posts", p_max_delay_hours=max_delay_hours,
                                  p_platforms=list(platforms))
        return {str(k): int(v) for k, v in counts.items()}

    async def list_unresolved_schedules(self, limit: int) -> list[dict[str, Any]]:
        rows = await self._call("list_unresolved_schedules", p_limit=limit)
        return list(rows)

    async def apply_resolved_schedules(self, items: Sequence[Mapping[str, Any]]) -> int:
        return int(await self._call("apply_resolved_schedules", p_items=list(items)))

    async def claim(self, worker: str, limits: Mapping[str, int],
                    lease_seconds: float) -> list[ClaimedPost]:
        rows = await self._call("claim_due_posts", p_worker=worker, p_limits=dict(limits),
                                p_lease_seconds=lease_seconds)
        if len(self._accounts) > ACCOUNT_CACHE_MAX:
            self._accounts.clear()
        accounts = self._accounts
        return [ClaimedPost.from_row(row, accounts) for row in rows]

    async def claim_for_review(self, worker: str, platforms: Sequence[str], *, limit: int,
                               max_checks: int, every_seconds: float,
                               lease_seconds: float) -> list[ClaimedPost]:
        rows = await self._call("claim_for_review", p_worker=worker, p_platforms=list(platforms),
                                p_limit=limit, p_max_checks=max_checks,
                                p_every_seconds=every_seconds, p_lease_seconds=lease_seconds)
        return [ClaimedPost.from_row(row) for row in rows]

    async def sync(self, worker: str, sending: Sequence[tuple[int, int]],
                   outcomes: Sequence[OutcomeRow]) -> SyncResult:
        """One statement: writes the outcomes, then stamps "sending" on the (id, attempt)
        claims this worker still holds."""
        result = await self._call("sync_posts", p_worker=worker,
                                  p_sending=[{"id": i, "attempt": a} for i, a in sending],
                                  p_outcomes=[o.to_json() for o in outcomes])
        recorded = result.get("outcomes") or {"applied": 0, "lost": []}
        return SyncResult(marked=frozenset(int(i) for i in result["sending"]),
                          applied=int(recorded["applied"]),
                          lost=tuple(int(i) for i in recorded["lost"]))

    # The two halves of sync_posts on their own (the run uses sync).
    async def mark_sending(self, worker: str, claims: Sequence[tuple[int, int]]) -> set[int]:
        marked = await self._call("mark_sending", p_worker=worker,
                                  p_claims=[{"id": i, "attempt": a} for i, a in claims])
        return {int(i) for i in marked}

    async def record(self, worker: str, outcomes: Sequence[OutcomeRow]) -> SyncResult:
        result = await self._call("record_outcomes", p_worker=worker,
                                  p_outcomes=[o.to_json() for o in outcomes])
        return SyncResult(marked=frozenset(), applied=int(result["applied"]),
                          lost=tuple(int(i) for i in result["lost"]))

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
                              token_expires_at: datetime | None) -> str:
        return str(await self._call(
            "connect_account", p_platform=platform, p_external_id=external_id,
            p_display_name=display_name, p_user_id=user_id,
            p_access_token_encrypted=access_token_encrypted,
            p_refresh_token_encrypted=refresh_token_encrypted,
            p_token_expires_at=token_expires_at))

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

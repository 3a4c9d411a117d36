"""Typed records that cross module boundaries: claimed posts, accounts, outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dateutil.parser import isoparse


def _optional_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)  # Postgres's JSON form; ten times isoparse's speed
    except ValueError:
        return isoparse(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class Account:
    """A connected social account, tokens still encrypted."""

    id: str
    platform: str
    external_id: str
    status: str
    status_reason: str | None
    access_token_encrypted: str | None
    refresh_token_encrypted: str | None
    token_expires_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Account:
        return cls(
            id=str(row["id"]),
            platform=str(row["platform"]),
            external_id=str(row["external_id"]),
            status=str(row["status"]),
            status_reason=row.get("status_reason"),
            access_token_encrypted=row.get("access_token_encrypted"),
            refresh_token_encrypted=row.get("refresh_token_encrypted"),
            token_expires_at=_optional_time(row.get("token_expires_at")),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ClaimedPost:
    """A post this worker holds a claim on (id + attempt fence every write)."""

    id: int
    attempt: int
    max_attempts: int
    platform: str
    post_type: str
    content: str | None
    title: str | None
    link_url: str | None
    media_urls: tuple[str, ...]
    options: dict[str, Any]
    priority: int
    scheduled_at: datetime | None
    account: Account | None
    publish_state: dict[str, Any] = field(default_factory=dict)  # resume/reconcile notes
    sending_started_at: datetime | None = None  # set: a previous attempt may have sent
    last_error: str | None = None               # filled for posts under review

    @classmethod
    def from_row(cls, row: dict[str, Any],
                 accounts: dict[Any, tuple[dict[str, Any], Account]] | None = None
                 ) -> ClaimedPost:
        """accounts: the Accounts already made (by id, with the row each was made from), to
        share one among the posts of an account (they are immutable) instead of making one
        per post."""
        account = row.get("account")
        options = row.get("options")
        state = row.get("publish_state")
        get = row.get
        return cls(
            id=int(row["id"]),
            attempt=int(row["attempt"]),
            max_attempts=int(row["max_attempts"]),
            platform=str(row["platform"]),
            post_type=str(get("post_type") or "text"),
            content=get("content"),
            title=get("title"),
            link_url=get("link_url"),
            media_urls=tuple(get("media_urls") or ()),
            options=options if isinstance(options, dict) else {},
            priority=int(get("priority") or 0),
            scheduled_at=_optional_time(get("scheduled_at")),
            account=(None if not isinstance(account, dict)
                     else Account.from_row(account) if accounts is None
                     else _shared_account(account, accounts)),
            publish_state=state if isinstance(state, dict) else {},
            sending_started_at=_optional_time(get("sending_started_at")),
            last_error=get("last_error"),
        )


def _shared_account(row: dict[str, Any],
                    accounts: dict[Any, tuple[dict[str, Any], Account]]) -> Account:
    """The Account for this row, made once per account id while its row stays the same
    (compared whole, so an account whose status or token changed is a new Account)."""
    known = accounts.get(row.get("id"))
    if known is not None and known[0] == row:
        return known[1]
    account = Account.from_row(row)
    accounts[row.get("id")] = (row, account)
    return account


class OutcomeKind(enum.Enum):
    """What a publish attempt came to; the run turns each into a post state."""

    PUBLISHED = "published"
    RETRY = "retry"          # transient: try again later, uses up an attempt
    DEFER = "defer"          # throttled or quota: wait, does not use up an attempt
    REAUTH = "reauth"        # the account's token is dead: the user must reconnect
    FAILED = "failed"        # permanent: will never work as it is
    UNKNOWN = "unknown"      # sent, no answer: may be live; never resent blindly
    LEASE_LOST = "lease_lost"  # our claim ran out before sending: nothing was sent
    PENDING = "pending"      # prepared, the platform is still processing (an Instagram video
                             # container): check again later without holding a slot


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """The result of one publish attempt, as an adapter reports it."""

    kind: OutcomeKind
    platform_post_id: str | None = None
    url: str | None = None
    reason: str | None = None
    retry_after: float | None = None      # seconds, for RETRY and DEFER
    pause_account: bool = False           # DEFER: the whole account is throttled
    pause_platform: bool = False          # DEFER: the app's budget on the platform is spent
    state: dict[str, Any] = field(default_factory=dict)  # merged into the post's publish_state
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def published(cls, post_id: str, url: str | None) -> Outcome:
        return cls(kind=OutcomeKind.PUBLISHED, platform_post_id=post_id, url=url)

    @classmethod
    def failed(cls, reason: str, **detail: Any) -> Outcome:
        return cls(kind=OutcomeKind.FAILED, reason=reason, detail=detail)

    @classmethod
    def retry(cls, reason: str, after: float | None = None, **detail: Any) -> Outcome:
        return cls(kind=OutcomeKind.RETRY, reason=reason, retry_after=after, detail=detail)

    @classmethod
    def defer(cls, reason: str, after: float, *, pause_account: bool = False,
              pause_platform: bool = False, **detail: Any) -> Outcome:
        return cls(kind=OutcomeKind.DEFER, reason=reason, retry_after=after,
                   pause_account=pause_account, pause_platform=pause_platform, detail=detail)

    @classmethod
    def pending(cls, reason: str, after: float, state: dict[str, Any]) -> Outcome:
        return cls(kind=OutcomeKind.PENDING, reason=reason, retry_after=after, state=state)

    @classmethod
    def reauth(cls, reason: str, **detail: Any) -> Outcome:
        return cls(kind=OutcomeKind.REAUTH, reason=reason, detail=detail)

    @classmethod
    def unknown(cls, reason: str, **detail: Any) -> Outcome:
        return cls(kind=OutcomeKind.UNKNOWN, reason=reason, detail=detail)

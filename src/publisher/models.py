"""Typed records that cross module boundaries: claimed posts, accounts, outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dateutil.parser import isoparse

# A post's id as the database holds it: int where created_content.id is bigint, str where it
# is uuid (the product's own table). Only compared, hashed and sent back, never computed on.
PostId = int | str


def _optional_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)  # Postgres's JSON form; ten times isoparse's speed
    except ValueError:
        pass
    try:
        return isoparse(value)
    except (ValueError, OverflowError):
        return None  # 'infinity' and the like: no usable time, not a crash


def _whole(value: Any, default: int) -> int:
    """An integer column's value, or the default for anything else (never raises)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value))
    except ValueError:
        return default


def _post_id(value: Any) -> PostId | None:
    """A post id from a claim's json: a number (bigint ids) or a string (uuid ids)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return value if isinstance(value, str) and value else None


def _text(value: Any, column: str, unread: dict[str, Any]) -> str | None:
    """A text column's value; anything but text or null is noted in unread, read as null."""
    if value is None or isinstance(value, str):
        return value
    unread[column] = value
    return None


# An Instagram account's login type (social_accounts.login_type): "Instagram API with
# Facebook Login" (graph.facebook.com, a Page token) or "Instagram API with Instagram
# Login" (graph.instagram.com, an Instagram User token).
# developers.facebook.com/docs/instagram-platform/reference ("one of two Meta host URLs")
INSTAGRAM_LOGINS = ("facebook", "instagram")


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
    # Instagram only: which API the account was connected through, INSTAGRAM_LOGINS. None
    # (never said, as on rows from before the column) means "facebook", where publishing
    # always went.
    login_type: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Account:
        login_type = row.get("login_type")
        return cls(
            id=str(row["id"]),
            platform=str(row["platform"]),
            external_id=str(row["external_id"]),
            status=str(row["status"]),
            status_reason=row.get("status_reason"),
            access_token_encrypted=row.get("access_token_encrypted"),
            refresh_token_encrypted=row.get("refresh_token_encrypted"),
            token_expires_at=_optional_time(row.get("token_expires_at")),
            login_type=login_type if isinstance(login_type, str) else None,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ClaimedPost:
    """A post this worker holds a claim on (id + attempt fence every write)."""

    id: PostId
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
    # Row values that did not fit their field's type, by column name (platform_options that
    # is not an object, media_urls with NULL or non-text entries, ...): the field holds a
    # safe empty value instead, and post_rules fails the post naming the column.
    unread: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict[str, Any],
                 accounts: dict[Any, tuple[dict[str, Any], Account]] | None = None
                 ) -> ClaimedPost:
        """accounts: the Accounts already made (by id, with the row each was made from), to
        share one among the posts of an account (they are immutable) instead of making one
        per post. Never raises: what cannot be read is noted in `unread` (see there)."""
        get = row.get
        unread: dict[str, Any] = {}
        options = get("options")
        if not isinstance(options, dict):
            if options is not None:  # SQL null: no options asked for
                unread["platform_options"] = options
            options = {}
        media = get("media_urls")
        if isinstance(media, list) and all(type(url) is str for url in media):
            urls = tuple(media)
        else:
            if media is not None:
                unread["media_urls"] = media
            urls = tuple(u for u in media if isinstance(u, str)) if isinstance(media, list) \
                else ()
        post_type = get("post_type")
        if not isinstance(post_type, str):
            if post_type is not None:
                unread["post_type"] = post_type
            post_type = ""  # missing: refused by the adapter, never taken for "text"
        platform = get("platform")
        if not isinstance(platform, str):
            unread["platform"] = platform
            platform = str(platform)
        account = get("account")
        state = get("publish_state")
        last_error = get("last_error")
        post_id, attempt = _post_id(get("id")), _whole(get("attempt"), -1)
        if post_id is None or attempt < 0:  # no write can be fenced: it will be logged as lost
            unread["id"] = get("id") if post_id is None else get("attempt")
        return cls(
            id=-1 if post_id is None else post_id,
            attempt=attempt,
            max_attempts=_whole(get("max_attempts"), 5),
            platform=platform,
            post_type=post_type,
            content=_text(get("content"), "content", unread),
            title=_text(get("title"), "title", unread),
            link_url=_text(get("link_url"), "link_url", unread),
            media_urls=urls,
            options=options,
            priority=_whole(get("priority") or 0, 0),
            scheduled_at=_optional_time(get("scheduled_at")),
            account=_account(account, accounts, unread),
            publish_state=state if isinstance(state, dict) else {},
            sending_started_at=_optional_time(get("sending_started_at")),
            last_error=last_error if isinstance(last_error, str) else None,
            unread=unread,
        )


def _account(row: Any, accounts: dict[Any, tuple[dict[str, Any], Account]] | None,
             unread: dict[str, Any]) -> Account | None:
    if not isinstance(row, dict):
        return None  # no account joined: the run fails the post for that
    try:
        return Account.from_row(row) if accounts is None else _shared_account(row, accounts)
    except (KeyError, TypeError, ValueError) as exc:
        unread["account"] = type(exc).__name__  # never the row: it holds the sealed tokens
        return None


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

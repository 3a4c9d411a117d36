"""The adapter interface every platform implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from publisher import redact
from publisher.models import Account, ClaimedPost, Outcome
from publisher.platforms.media import MediaFetcher
from publisher.settings import OAuthClient, PlatformEndpoints


class BeginSending(Protocol):
    """Stamps "sending" on the post; an adapter awaits it right before the call that makes
    the post public. False: the claim was lost, nothing may be sent. `state`: what a check
    after a crash needs to find the post (an Instagram container, a YouTube upload session),
    merged into the row's publish_state by the same statement as the stamp, so a worker
    killed during the call leaves that evidence behind, not only "sending started"."""

    def __call__(self, state: Mapping[str, Any] | None = None) -> Awaitable[bool]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishContext:
    """What an adapter gets for one post: the shared client, the decrypted token, and
    `begin_sending` (see BeginSending)."""

    client: httpx.AsyncClient
    access_token: str
    endpoints: PlatformEndpoints
    begin_sending: BeginSending
    media_hosts: frozenset[str] = frozenset()  # host:port allowed besides public https
    # A fresh access token after the platform refused this one (401) mid-publish, e.g. a
    # token that expired during a long upload: given the refused token, the new one or the
    # Outcome that stops the post. Ask at most once per publish; None: nothing can renew.
    renew_token: Callable[[str], Awaitable[str | Outcome]] | None = None

    def media(self) -> MediaFetcher:
        """The guarded fetcher for media this adapter must upload itself."""
        return MediaFetcher(self.client, self.media_hosts)


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenGrant:
    """What a token refresh returned. refresh_token is None when the platform kept it."""

    access_token: str
    refresh_token: str | None
    expires_in: float | None

    def __repr__(self) -> str:
        return f"TokenGrant(expires_in={self.expires_in!r})"


class PlatformAdapter(Protocol):
    """Knows one platform's endpoints, limits and errors; keeps no state between posts."""

    platform: str

    def validate(self, post: ClaimedPost) -> str | None:
        """Why this post can never be published as it is, or None if it can."""
        ...

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        """Publishes the post and reports what happened; never raises for platform errors."""
        ...


class TokenRefresher(Protocol):
    """Implemented by adapters whose tokens expire and can be refreshed."""

    async def refresh_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints, *,
                            access_token: str, refresh_token: str | None,
                            oauth: OAuthClient | None) -> TokenGrant | Outcome:
        """A new token, or REAUTH (refused: revoked, expired) / RETRY (try again later)."""
        ...


class TokenChecker(Protocol):
    """Implemented by adapters that can ask the platform, with one cheap read, whether it
    still takes an account's token (publisher.preflight, a day before its posts are due)."""

    async def check_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints,
                          account: Account, access_token: str) -> Outcome | None:
        """None when the platform takes the token; else the Outcome its answer maps to
        (REAUTH: revoked or expired; RETRY or DEFER: it could not tell now)."""
        ...


async def publish_masked(adapter: PlatformAdapter, post: ClaimedPost,
                         context: PublishContext) -> Outcome:
    """Publishes through the adapter and masks the token in what comes back: platforms echo
    it in some errors ("Malformed access token EAA..."), and a token must never reach a
    stored error or a log. Within the call, redact.clip masks it before any text is cut
    (see redact.py); afterwards every string of the outcome is masked once more."""
    with redact.guard(context.access_token) as secrets:
        outcome = await adapter.publish(post, context)
    return redact.mask_outcome(outcome, secrets)

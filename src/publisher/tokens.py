"""Access tokens for a run: decrypted in memory, refreshed when expired or close to it.

A refresh happens once per account however many posts need it: within a process one task
refreshes while the others wait for its result; across processes the account's refresh
lock in the database (lock_account_refresh) lets one worker refresh while the others wait
for the new token to appear. A refused refresh marks the account needs_reauth. Refreshed
tokens are stored encrypted, and a refresh never replaces a refresh token with nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import httpx

from publisher import redact
from publisher.crypto import TokenCipher
from publisher.errors import StoreError, TokenError
from publisher.models import Account, Outcome, OutcomeKind
from publisher.platforms.base import PlatformAdapter, TokenGrant, TokenRefresher
from publisher.settings import Settings
from publisher.store import Store

log = logging.getLogger("publisher.tokens")

REFRESH_MARGIN = timedelta(minutes=5)   # refresh tokens expiring sooner than this
LOCK_SECONDS = 60.0                     # how long one worker may hold a refresh lock
WAIT_SECONDS = 30.0                     # how long to wait for another worker's refresh
POLL_SECONDS = 0.25
PLAIN_CACHE_MAX = 50_000                # accounts whose decrypted token is kept for the run


class TokenManager:
    def __init__(self, settings: Settings, store: Store, client: httpx.AsyncClient,
                 cipher: TokenCipher, adapters: Mapping[str, PlatformAdapter]) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        self._cipher = cipher
        self._adapters = adapters
        self._fresh: dict[str, str | Outcome] = {}     # account id -> token or why not
        self._locks: dict[str, asyncio.Lock] = {}
        # account id -> (stored ciphertext, its plaintext): an account's posts share one
        # decryption (AES-GCM per post was a visible share of a run's CPU). Keyed by the
        # ciphertext too, so a token stored anew is decrypted anew. Never logged or shown.
        self._plain: dict[str, tuple[str, str]] = {}

    async def access_token(self, account: Account) -> str | Outcome:
        """The account's usable access token, or the Outcome that stops its posts."""
        if account.id in self._fresh:
            return self._fresh[account.id]
        refresher = self._refresher(account)
        if refresher is None or not _expiring(account.token_expires_at):
            return self._access(account)
        lock = self._locks.setdefault(account.id, asyncio.Lock())
        async with lock:
            if account.id not in self._fresh:
                self._fresh[account.id] = await self._refresh(account, refresher)
        return self._fresh[account.id]

    async def renew(self, account: Account, refused: str) -> str | Outcome:
        """A new access token after the platform refused `refused` in the middle of a
        publish (a token that expired during a long upload): the adapter asks once, through
        PublishContext.renew_token. Posts of the account that ask with a token already
        replaced get the new one; a refresh happens once per account, as above."""
        refresher = self._refresher(account)
        if refresher is None:
            return Outcome.reauth("the platform refused the access token and it cannot be "
                                  "refreshed: reconnect the account")
        lock = self._locks.setdefault(account.id, asyncio.Lock())
        async with lock:
            known = self._fresh.get(account.id)
            if isinstance(known, Outcome) or (known is not None and known != refused):
                return known  # refreshed (or refused) already for another post
            self._fresh[account.id] = await self._refresh(account, refresher, refused=refused)
        return self._fresh[account.id]

    def can_refresh(self, account: Account) -> bool:
        """Whether a refused token of this account can be renewed (renew) at all."""
        return self._refresher(account) is not None

    def _refresher(self, account: Account) -> TokenRefresher | None:
        adapter = self._adapters.get(account.platform)
        if not hasattr(adapter, "refresh_token"):
            return None
        # An adapter may refresh only some of its accounts' tokens (Instagram: those on
        # Instagram Login; a Facebook Login Page token is not refreshed): it says which.
        refreshes = getattr(adapter, "refreshes", None)
        if refreshes is not None and not refreshes(account):
            return None
        return adapter  # type: ignore[return-value]

    def _access(self, account: Account) -> str | Outcome:
        """The stored access token, decrypted once per account and ciphertext."""
        sealed = account.access_token_encrypted
        known = self._plain.get(account.id)
        if known is not None and sealed is not None and known[0] == sealed:
            return known[1]
        token = self._decrypt(sealed, "access")
        if isinstance(token, str) and sealed is not None:
            if len(self._plain) >= PLAIN_CACHE_MAX:
                self._plain.clear()  # a long-running worker: stay bounded
            self._plain[account.id] = (sealed, token)
        return token

    def _decrypt(self, sealed: str | None, which: str) -> str | Outcome:
        if not sealed:
            return Outcome.failed(f"the account has no {which} token stored")
        try:
            return self._cipher.decrypt(sealed)
        except TokenError as exc:
            return Outcome.failed(f"cannot use the account's {which} token: {exc}")

    async def _refresh(self, account: Account, refresher: TokenRefresher, *,
                       refused: str | None = None) -> str | Outcome:
        """refused: the platform refused this token, so it needs a refresh even when its
        stored expiry says it is fine (unless the stored token is already another one)."""
        worker = self._settings.worker_id
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                locked, current = await self._store.lock_account_refresh(account.id, worker,
                                                                         LOCK_SECONDS)
            except StoreError as exc:
                return Outcome.retry(f"cannot refresh the token: {exc}")
            current = current or account
            if current.status == "needs_reauth":
                return Outcome.reauth(current.status_reason or "the account needs reconnecting")
            stored = self._decrypt(current.access_token_encrypted, "access")
            if not _expiring(current.token_expires_at) and stored != refused:
                # Someone else refreshed it meanwhile: use theirs, release ours.
                if locked:
                    await self._release(account.id)
                return stored
            if locked:
                return await self._do_refresh(current, refresher)
            if time.monotonic() > deadline:
                return Outcome.retry("another worker is refreshing this account's token")
            await asyncio.sleep(POLL_SECONDS)

    async def _do_refresh(self, account: Account, refresher: TokenRefresher) -> str | Outcome:
        access = self._decrypt(account.access_token_encrypted, "access")
        refresh: str | Outcome | None = None
        if account.refresh_token_encrypted:
            refresh = self._decrypt(account.refresh_token_encrypted, "refresh")
        if isinstance(access, Outcome):
            access = ""
        if isinstance(refresh, Outcome):
            await self._release(account.id)
            return refresh
        oauth = self._settings.oauth_clients.get(account.platform)
        # The token endpoint may echo any of these: masked before any text of it is cut,
        # and once more in the outcome, which becomes the account's and its posts' reason.
        with redact.guard(access, refresh, oauth.client_secret if oauth else None) as secrets:
            grant = await refresher.refresh_token(
                self._client, self._settings.endpoints, access_token=access,
                refresh_token=refresh, oauth=oauth)
        if isinstance(grant, Outcome):
            grant = redact.mask_outcome(grant, secrets)
            if grant.kind is OutcomeKind.REAUTH:
                await self._save(account, None, status="needs_reauth", reason=grant.reason)
            else:
                await self._release(account.id)
            return grant
        await self._save(account, grant)
        log.info("refreshed the access token of account %s (%s)", account.id, account.platform)
        return grant.access_token

    async def _save(self, account: Account, grant: TokenGrant | None, *,
                    status: str = "active", reason: str | None = None) -> None:
        expires = None
        if grant is not None and grant.expires_in is not None:
            expires = datetime.now(UTC) + timedelta(seconds=grant.expires_in)
        await self._store.save_refreshed_tokens(
            account.id, self._settings.worker_id,
            access_token_encrypted=self._cipher.encrypt(grant.access_token) if grant else None,
            refresh_token_encrypted=self._cipher.encrypt(grant.refresh_token)
            if grant and grant.refresh_token else None,
            token_expires_at=expires, status=status, reason=reason)

    async def _release(self, account_id: str) -> None:
        await self._store.save_refreshed_tokens(
            account_id, self._settings.worker_id, access_token_encrypted=None,
            refresh_token_encrypted=None, token_expires_at=None, status=None)


def _expiring(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at - datetime.now(UTC) < REFRESH_MARGIN

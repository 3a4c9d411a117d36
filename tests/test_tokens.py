"""Token refresh: once per account across workers, stored encrypted, never loses a refresh token."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from helpers import insert_account
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.models import Account, Outcome
from publisher.platforms.base import TokenGrant
from publisher.settings import OAuthClient, PlatformEndpoints, Settings
from publisher.store import Store
from publisher.store.postgres import PostgresTransport
from publisher.tokens import TokenManager

CIPHER = TokenCipher(parse_key(generate_key()))


class FakeRefresher:
    """Counts refreshes; answers slowly so that concurrent callers overlap."""

    platform = "youtube"

    def __init__(self, answer: TokenGrant | Outcome, delay: float = 0.3) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self._answer = answer
        self._delay = delay

    def validate(self, post: object) -> str | None:
        return None

    async def publish(self, post: object, context: object) -> Outcome:
        raise AssertionError("not used")

    async def refresh_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints, *,
                            access_token: str, refresh_token: str | None,
                            oauth: OAuthClient | None) -> TokenGrant | Outcome:
        self.calls.append((access_token, refresh_token))
        await asyncio.sleep(self._delay)
        return self._answer


async def expired_account(db: asyncpg.Connection, *, refresh: str | None = "refresh-1") -> str:
    return await insert_account(
        db, platform="youtube", external_id="UC-test",
        access_token_encrypted=CIPHER.encrypt("old-access"),
        refresh_token_encrypted=CIPHER.encrypt(refresh) if refresh else None,
        token_expires_at=datetime.now(UTC) - timedelta(minutes=1))


async def account_row(db: asyncpg.Connection, account_id: str) -> Account:
    row = await db.fetchrow("select * from social_accounts where id = $1", account_id)
    return Account.from_row({**dict(row), "id": str(row["id"]),
                             "token_expires_at": row["token_expires_at"].isoformat()
                             if row["token_expires_at"] else None})


def manager(store: Store, refresher: FakeRefresher, worker: str) -> TokenManager:
    settings = replace(Settings(), worker_id=worker)
    return TokenManager(settings, store, httpx.AsyncClient(), CIPHER, {"youtube": refresher})


async def test_two_workers_refresh_an_expired_token_once(database_url: str,
                                                         db: asyncpg.Connection) -> None:
    """Two workers (separate connections) needing the same expired token refresh it once."""
    account_id = await expired_account(db)
    account = await account_row(db, account_id)
    refresher = FakeRefresher(TokenGrant(access_token="new-access", refresh_token=None,
                                         expires_in=3600))
    stores = [Store(await PostgresTransport.connect(database_url)) for _ in range(2)]
    managers = [manager(stores[i], refresher, f"worker-{i}") for i in range(2)]
    try:
        # Two workers, and several posts of the account in each: one refresh in all.
        tokens = await asyncio.gather(*(managers[i % 2].access_token(account)
                                        for i in range(6)))
    finally:
        for store in stores:
            await store.close()
    assert tokens == ["new-access"] * 6
    assert refresher.calls == [("old-access", "refresh-1")]
    stored = await account_row(db, account_id)
    assert CIPHER.decrypt(stored.access_token_encrypted or "") == "new-access"
    # the answer had no refresh token: the stored one is kept, not blanked
    assert CIPHER.decrypt(stored.refresh_token_encrypted or "") == "refresh-1"
    assert stored.token_expires_at is not None
    assert stored.token_expires_at > datetime.now(UTC) + timedelta(minutes=50)
    lock = await db.fetchval("select refresh_locked_by from social_accounts")
    assert lock is None


async def test_refused_refresh_marks_the_account_needs_reauth(store: Store,
                                                             db: asyncpg.Connection) -> None:
    """invalid_grant: REAUTH, and the account says needs_reauth with the reason."""
    account_id = await expired_account(db)
    refresher = FakeRefresher(Outcome.reauth("Token has been expired or revoked."), delay=0)
    token = await manager(store, refresher, "w").access_token(await account_row(db, account_id))
    assert isinstance(token, Outcome)
    row = await db.fetchrow("select status, status_reason, refresh_locked_by "
                            "from social_accounts")
    assert (row["status"], row["refresh_locked_by"]) == ("needs_reauth", None)
    assert "revoked" in row["status_reason"]


async def test_transient_refresh_failure_releases_the_lock(store: Store,
                                                           db: asyncpg.Connection) -> None:
    """A refresh that failed for now leaves the tokens and frees the lock for a later try."""
    account_id = await expired_account(db)
    refresher = FakeRefresher(Outcome.retry("token endpoint said 503"), delay=0)
    token = await manager(store, refresher, "w").access_token(await account_row(db, account_id))
    assert isinstance(token, Outcome)
    row = await db.fetchrow("select status, refresh_locked_by, access_token_encrypted "
                            "from social_accounts")
    assert (row["status"], row["refresh_locked_by"]) == ("active", None)
    assert CIPHER.decrypt(row["access_token_encrypted"]) == "old-access"


async def test_a_new_refresh_token_replaces_the_old(store: Store,
                                                    db: asyncpg.Connection) -> None:
    """When the platform rotates the refresh token, the new one is stored encrypted."""
    account_id = await expired_account(db)
    refresher = FakeRefresher(TokenGrant(access_token="a2", refresh_token="refresh-2",
                                         expires_in=60 * 60), delay=0)
    assert await manager(store, refresher, "w").access_token(
        await account_row(db, account_id)) == "a2"
    stored = await account_row(db, account_id)
    assert CIPHER.decrypt(stored.refresh_token_encrypted or "") == "refresh-2"
    assert "refresh-2" not in (stored.refresh_token_encrypted or "")


async def test_fresh_token_is_not_refreshed(store: Store, db: asyncpg.Connection) -> None:
    """A token valid for another hour is decrypted and used as is."""
    account_id = await insert_account(
        db, platform="youtube", external_id="UC-fresh",
        access_token_encrypted=CIPHER.encrypt("current"),
        token_expires_at=datetime.now(UTC) + timedelta(hours=1))
    refresher = FakeRefresher(TokenGrant(access_token="x", refresh_token=None, expires_in=1))
    token = await manager(store, refresher, "w").access_token(await account_row(db, account_id))
    assert token == "current"
    assert refresher.calls == []


async def test_undecryptable_token_is_a_clear_failure(store: Store,
                                                      db: asyncpg.Connection) -> None:
    """A token sealed with an unknown key fails with a reason, naming no secret."""
    account_id = await insert_account(db, platform="facebook", external_id="p",
                                      access_token_encrypted="v1:0badc0de:AAAA")
    token = await manager(store, FakeRefresher(Outcome.retry("x")), "w").access_token(
        await account_row(db, account_id))
    assert isinstance(token, Outcome)
    assert token.reason is not None
    assert "0badc0de" in token.reason
    assert "ENCRYPTION_KEY" in token.reason


# --- renew: a token the platform refused mid-publish (issue 11) --------------------------------


async def fresh_account(db: asyncpg.Connection) -> str:
    """An account whose stored token is valid for an hour by its expiry."""
    return await insert_account(
        db, platform="youtube", external_id="UC-long-upload",
        access_token_encrypted=CIPHER.encrypt("old-access"),
        refresh_token_encrypted=CIPHER.encrypt("refresh-1"),
        token_expires_at=datetime.now(UTC) + timedelta(hours=1))


async def test_renew_refreshes_a_refused_token_once_for_the_account(
        store: Store, db: asyncpg.Connection) -> None:
    """A token refused during an upload is refreshed although its expiry says it is fine;
    several posts of the account asking together share one refresh; later posts of the run
    get the new token; it is stored encrypted."""
    account_id = await fresh_account(db)
    account = await account_row(db, account_id)
    refresher = FakeRefresher(TokenGrant(access_token="new-access", refresh_token=None,
                                         expires_in=3600), delay=0.1)
    tokens = manager(store, refresher, "w")

    renewed = await asyncio.gather(*(tokens.renew(account, "old-access") for _ in range(3)))

    assert renewed == ["new-access"] * 3
    assert refresher.calls == [("old-access", "refresh-1")]
    assert await tokens.access_token(account) == "new-access"
    stored = await account_row(db, account_id)
    assert CIPHER.decrypt(stored.access_token_encrypted or "") == "new-access"


async def test_renew_with_a_token_already_replaced_gets_the_new_one(
        store: Store, db: asyncpg.Connection) -> None:
    """A post still holding the token another post had renewed gets the new one, with
    no second refresh; the new one refused in turn is refreshed again."""
    account = await account_row(db, await fresh_account(db))
    refresher = FakeRefresher(TokenGrant(access_token="new-access", refresh_token=None,
                                         expires_in=3600), delay=0)
    tokens = manager(store, refresher, "w")
    assert await tokens.renew(account, "old-access") == "new-access"

    assert await tokens.renew(account, "old-access") == "new-access"
    assert len(refresher.calls) == 1
    await tokens.renew(await account_row(db, account.id), "new-access")
    assert refresher.calls[-1] == ("new-access", "refresh-1")


async def test_renew_refused_marks_the_account_needs_reauth(
        store: Store, db: asyncpg.Connection) -> None:
    """invalid_grant on the renewal: REAUTH, the account needs reconnecting."""
    account = await account_row(db, await fresh_account(db))
    refresher = FakeRefresher(Outcome.reauth("Token has been expired or revoked."), delay=0)

    renewed = await manager(store, refresher, "w").renew(account, "old-access")

    assert isinstance(renewed, Outcome)
    assert await db.fetchval("select status from social_accounts") == "needs_reauth"


async def test_renew_without_a_refresher_is_reauth(store: Store,
                                                   db: asyncpg.Connection) -> None:
    """A platform whose tokens cannot be refreshed: the refusal stands (REAUTH)."""
    account_id = await insert_account(db, platform="facebook", external_id="page-1",
                                      access_token_encrypted=CIPHER.encrypt("page-token"))
    tokens = TokenManager(replace(Settings(), worker_id="w"), store, httpx.AsyncClient(),
                          CIPHER, {})

    renewed = await tokens.renew(await account_row(db, account_id), "page-token")

    assert isinstance(renewed, Outcome)
    assert renewed.kind.value == "reauth"

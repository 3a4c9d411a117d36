"""The client's per-post shortcuts: compact outcome rows, shared Accounts, one decryption
per account, the collector's threshold. Each must give what the long way gives."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from helpers import fetch_post, insert_account, insert_post
from publisher import eventloop
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.models import Account, ClaimedPost
from publisher.settings import Settings
from publisher.store import Store
from publisher.store.store import OutcomeRow
from publisher.tokens import TokenManager

CIPHER = TokenCipher(parse_key(generate_key()))


def account_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "3d5d8431-9626-4570-b4ab-96b14b123c66", "platform": "facebook",
        "external_id": "page-1", "status": "active", "status_reason": None,
        "access_token_encrypted": "v1:abc:sealed", "refresh_token_encrypted": None,
        "token_expires_at": None}
    return {**row, **changes}


def post_row(post_id: int, account: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": post_id, "attempt": 1, "max_attempts": 5, "platform": "facebook",
            "post_type": "text", "content": "hi", "title": None, "link_url": None,
            "media_urls": [], "options": {}, "priority": 0,
            "scheduled_at": "2026-11-30T12:00:00+00:00", "user_id": None,
            "publish_state": {}, "sending_started_at": None, "account": account}


def test_outcome_row_json_leaves_out_empty_keys() -> None:
    """Only the keys with something in them; the fence and the outcome always."""
    row = OutcomeRow(id=7, attempt=2, status="published", outcome="published",
                     platform_post_id="p-7")
    assert row.to_json() == {"id": 7, "attempt": 2, "status": "published",
                             "outcome": "published", "platform_post_id": "p-7"}
    full = OutcomeRow(id=7, attempt=2, status="scheduled", outcome="defer", error="later",
                      delay_seconds=30.0, refund_attempt=True, detail={"a": 1},
                      account_id="acct", account_status="needs_reauth", state={"s": 2})
    assert full.to_json() == {
        "id": 7, "attempt": 2, "status": "scheduled", "outcome": "defer", "error": "later",
        "delay_seconds": 30.0, "refund_attempt": True, "detail": {"a": 1},
        "account_id": "acct", "account_status": "needs_reauth", "state": {"s": 2}}


async def test_record_outcomes_reads_a_missing_key_as_null(store: Store,
                                                           db: asyncpg.Connection) -> None:
    """A compact row writes what the row with every key (nulls included) wrote: no refund,
    not_before kept, the error cleared, the attempt logged."""
    account = await insert_account(db)
    post = await insert_post(db, account_id=account)
    claimed = await store.claim("w", {"facebook": 1}, 60)
    assert [p.id for p in claimed] == [post]
    result = await store.record("w", [OutcomeRow(id=post, attempt=1, status="published",
                                                 outcome="published", platform_post_id="x")])
    assert (result.applied, result.lost) == (1, ())
    row = await fetch_post(db, post)
    assert (row["status"], row["attempts"], row["platform_post_id"]) == ("published", 1, "x")
    assert row["not_before"] is None
    assert row["last_error"] is None
    logged = await db.fetchrow("select applied, error, detail from publish_attempts "
                               "where post_id = $1", post)
    assert (logged["applied"], logged["error"], logged["detail"]) == (True, None, None)


def test_posts_of_one_account_share_its_account() -> None:
    """One Account per account while its row is unchanged; a changed row, a new Account."""
    accounts: dict[Any, tuple[dict[str, Any], Account]] = {}
    first = ClaimedPost.from_row(post_row(1, account_row()), accounts)
    second = ClaimedPost.from_row(post_row(2, account_row()), accounts)
    assert first.account is second.account
    assert first.account == Account.from_row(account_row())
    revoked = ClaimedPost.from_row(post_row(3, account_row(status="needs_reauth")), accounts)
    assert revoked.account is not first.account
    assert revoked.account is not None
    assert revoked.account.status == "needs_reauth"
    assert ClaimedPost.from_row(post_row(4, None), accounts).account is None


class CountingCipher(TokenCipher):
    def __init__(self) -> None:
        self._inner = CIPHER
        self.decrypted = 0

    def decrypt(self, stored: str) -> str:
        self.decrypted += 1
        return self._inner.decrypt(stored)


async def test_a_token_is_decrypted_once_per_account_and_ciphertext() -> None:
    """Posts of one account share a decryption; a token stored anew is decrypted anew."""
    cipher = CountingCipher()
    async with httpx.AsyncClient() as client:
        tokens = TokenManager(Settings(), None, client, cipher, {})  # type: ignore[arg-type]
        account = Account.from_row(account_row(access_token_encrypted=CIPHER.encrypt("one")))
        assert [await tokens.access_token(account) for _ in range(3)] == ["one"] * 3
        assert cipher.decrypted == 1
        renewed = Account.from_row(account_row(access_token_encrypted=CIPHER.encrypt("two")))
        assert await tokens.access_token(renewed) == "two"
        assert cipher.decrypted == 2
        assert "two" not in repr(tokens)


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_tune_gc_raises_the_young_threshold_only() -> None:
    """700 -> GC_YOUNG_THRESHOLD; a higher threshold or a disabled collector is kept."""
    gc.set_threshold(700, 10, 10)
    eventloop.tune_gc()
    assert gc.get_threshold() == (eventloop.GC_YOUNG_THRESHOLD, 10, 10)
    gc.set_threshold(50_000, 10, 10)
    eventloop.tune_gc()
    assert gc.get_threshold() == (50_000, 10, 10)
    gc.set_threshold(0, 10, 10)
    eventloop.tune_gc()
    assert gc.get_threshold() == (0, 10, 10)

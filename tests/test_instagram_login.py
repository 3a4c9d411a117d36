"""Instagram accounts on Facebook Login and on Instagram Login, end to end: the row says
which, the claims carry it, connect-account asks for it, only Instagram Login tokens are
refreshed, and each account publishes through its own host of the simulator (which refuses
the other kind of token, as the real hosts do)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from helpers import DUE, insert_account, insert_post, sql
from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import StoreError
from publisher.models import Account
from publisher.platforms.instagram.adapter import InstagramAdapter
from publisher.settings import PlatformEndpoints, Settings, simulator_endpoints
from publisher.simulator.meta.graph import INSTAGRAM_HOST
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig
from publisher.store import Store
from publisher.store.migrations import migrations_dir
from publisher.tokens import TokenManager

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))
PAGE_TOKEN = "EAAGpageToken0123456789SECRET"
IG_TOKEN = "IGAAuserToken0123456789SECRET"
ENDPOINTS = PlatformEndpoints(instagram="https://graph.fb.test",
                              instagram_graph="https://graph.igl.test")
CANNOT_PARSE = {"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                          "type": "OAuthException", "code": 190, "fbtrace_id": "Abc"}}
MIGRATION = "20261207000800_instagram_login.sql"


async def instagram_account(db: asyncpg.Connection, login_type: str | None, token: str, *,
                            expires_in: timedelta | None = None, external_id: str) -> str:
    expires = sql(f"now() + interval '{int(expires_in.total_seconds())} seconds'") \
        if expires_in is not None else None
    return await insert_account(db, platform="instagram", external_id=external_id,
                                login_type=login_type, access_token_encrypted=CIPHER.encrypt(token),
                                token_expires_at=expires)


async def account_of(db: asyncpg.Connection, account_id: str) -> Account:
    row = dict(await db.fetchrow("select * from social_accounts where id = $1", account_id))
    expires = row["token_expires_at"]
    return Account.from_row({**row, "id": str(row["id"]),
                             "token_expires_at": expires.isoformat() if expires else None})


# --- tokens: the regression -------------------------------------------------------------

@pytest.mark.parametrize("login_type", ["facebook", None])
async def test_facebook_login_token_is_never_sent_to_refresh_access_token(
        store: Store, db: asyncpg.Connection, login_type: str | None) -> None:
    """A Facebook Login account whose recorded expiry has passed is not refreshed at
    graph.instagram.com (which cannot parse a Page token and answers 190): its token is used
    as it is, and the account stays active instead of needs_reauth."""
    account_id = await instagram_account(db, login_type, PAGE_TOKEN, external_id="1784fb",
                                         expires_in=timedelta(minutes=-1))
    settings = Settings(endpoints=ENDPOINTS, worker_id="w")
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        refresh = router.get(f"{ENDPOINTS.instagram_graph}/refresh_access_token").respond(
            400, json=CANNOT_PARSE)
        async with httpx.AsyncClient() as client:
            manager = TokenManager(settings, store, client, CIPHER,
                                   {"instagram": InstagramAdapter()})
            token = await manager.access_token(await account_of(db, account_id))
    assert token == PAGE_TOKEN
    assert not refresh.called
    row = await db.fetchrow("select status, status_reason from social_accounts")
    assert (row["status"], row["status_reason"]) == ("active", None)


async def test_instagram_login_token_is_refreshed_at_graph_instagram_com(
        store: Store, db: asyncpg.Connection) -> None:
    """An Instagram Login token close to its expiry is refreshed there, once, and the new
    60-day token is stored encrypted."""
    account_id = await instagram_account(db, "instagram", IG_TOKEN, external_id="1784ig",
                                         expires_in=timedelta(minutes=1))
    settings = Settings(endpoints=ENDPOINTS, worker_id="w")
    with respx.mock(assert_all_mocked=True) as router:
        refresh = router.get(f"{ENDPOINTS.instagram_graph}/refresh_access_token").respond(
            200, json={"access_token": "IGAAnewToken", "token_type": "bearer",
                       "expires_in": 5183944})
        async with httpx.AsyncClient() as client:
            manager = TokenManager(settings, store, client, CIPHER,
                                   {"instagram": InstagramAdapter()})
            token = await manager.access_token(await account_of(db, account_id))
    assert token == "IGAAnewToken"
    assert refresh.call_count == 1
    assert refresh.calls.last.request.url.params["access_token"] == IG_TOKEN
    stored = await account_of(db, account_id)
    assert CIPHER.decrypt(stored.access_token_encrypted or "") == "IGAAnewToken"
    assert stored.token_expires_at is not None
    assert stored.token_expires_at > datetime.now(UTC) + timedelta(days=59)


# --- the row, the claims, connect_account --------------------------------------------------

async def test_claims_carry_the_login_type(store: Store, db: asyncpg.Connection) -> None:
    """claim_due_posts and claim_for_review give each post's account its login type."""
    await db.execute("update publish_quotas set max_posts = 1000")
    kinds = {"facebook": await instagram_account(db, "facebook", PAGE_TOKEN, external_id="f1"),
             "instagram": await instagram_account(db, "instagram", IG_TOKEN, external_id="i1")}
    for account in kinds.values():
        await insert_post(db, platform="instagram", account_id=account, post_type="image",
                          media_urls=["https://cdn.example.com/a.jpg"], scheduled_at=DUE)
    claimed = await store.claim("w", {"instagram": 10}, 300)
    assert {p.account.id: p.account.login_type for p in claimed if p.account} == {
        v: k for k, v in kinds.items()}
    await db.execute("update created_content set status = 'needs_review', locked_by = null, "
                     "sending_started_at = now()")
    held = await store.claim_for_review("w", ["instagram"], limit=10, max_checks=3,
                                        every_seconds=0, lease_seconds=60)
    assert {p.account.id: p.account.login_type for p in held if p.account} == {
        v: k for k, v in kinds.items()}


async def test_connect_account_stores_and_keeps_the_login_type(
        store: Store, db: asyncpg.Connection) -> None:
    """Stored on connect; a reconnect without one keeps it, with one changes it; only
    Instagram rows take one."""
    def connect(platform: str, login_type: str | None) -> Any:
        return store.connect_account(platform=platform, external_id="1784x", display_name=None,
                                     user_id=None, access_token_encrypted="sealed",
                                     refresh_token_encrypted=None, token_expires_at=None,
                                     login_type=login_type)

    account_id = await connect("instagram", "instagram")
    login = "select login_type from social_accounts where id = $1"
    assert await db.fetchval(login, account_id) == "instagram"
    assert await connect("instagram", None) == account_id
    assert await db.fetchval(login, account_id) == "instagram"
    await connect("instagram", "facebook")
    assert await db.fetchval(login, account_id) == "facebook"
    with pytest.raises(StoreError, match="social_accounts_login_type_check"):
        await connect("linkedin", "facebook")
    with pytest.raises(StoreError, match="social_accounts_login_type_check"):
        await connect("instagram", "threads")
    signatures = await db.fetchval("select count(*) from pg_proc "
                                   "where proname = 'connect_account'")
    assert signatures == 1  # PostgREST needs one


async def test_migration_marks_earlier_instagram_rows_facebook(db: asyncpg.Connection) -> None:
    """Instagram rows without a login type are Facebook Login (where publishing always went);
    other platforms keep none; applying the file again changes nothing more."""
    instagram = await insert_account(db, platform="instagram", external_id="old-ig")
    other = await insert_account(db, platform="youtube", external_id="old-yt")
    chosen = await insert_account(db, platform="instagram", external_id="new-ig",
                                  login_type="instagram")
    text = (migrations_dir() / MIGRATION).read_text()
    for _ in range(2):
        await db.execute(text)
    rows = {str(r["id"]): r["login_type"]
            for r in await db.fetch("select id, login_type from social_accounts")}
    assert rows == {instagram: "facebook", other: None, chosen: "instagram"}


def _connect_cli(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url,
           "ENCRYPTION_KEY": KEY, "PUBLISHER_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "publisher", "connect-account", *args]
    return subprocess.run(command, env=env, input=IG_TOKEN + "\n", capture_output=True,  # noqa: S603
                          text=True, timeout=60, check=False)


async def test_connect_account_cli_asks_for_the_instagram_login(
        database_url: str, db: asyncpg.Connection, tmp_path: Path) -> None:
    """--instagram-login is required for Instagram (exit 2 without it, nothing stored) and
    lands in the row; the token is never printed."""
    missing = _connect_cli(database_url, tmp_path, "--platform", "instagram",
                           "--external-id", "1784cli")
    assert missing.returncode == 2
    assert "--instagram-login" in missing.stderr
    assert await db.fetchval("select count(*) from social_accounts") == 0
    done = _connect_cli(database_url, tmp_path, "--platform", "instagram",
                        "--external-id", "1784cli", "--instagram-login", "instagram")
    assert done.returncode == 0, done.stderr
    row = await db.fetchrow("select id, login_type, access_token_encrypted from social_accounts")
    assert (str(row["id"]), row["login_type"]) == (done.stdout.strip(), "instagram")
    assert CIPHER.decrypt(row["access_token_encrypted"]) == IG_TOKEN
    assert IG_TOKEN not in done.stdout + done.stderr


# --- end to end through the simulator ---------------------------------------------------------

async def test_one_account_of_each_kind_publishes_through_its_host(
        database_url: str, db: asyncpg.Connection) -> None:
    """Both accounts' tokens are close to their recorded expiry: the Instagram Login one is
    refreshed at the simulator's graph.instagram.com and publishes there with the new token;
    the Facebook Login one is not refreshed and publishes at graph.facebook.com. Each host
    refuses the other's token, so a post sent to the wrong one would not be published.
    A post of the Instagram Login account under review is settled on its host too."""
    soon = timedelta(minutes=1)
    facebook = await instagram_account(db, "facebook", PAGE_TOKEN, external_id="1784001",
                                       expires_in=soon)
    instagram = await instagram_account(db, "instagram", IG_TOKEN, external_id="1784002",
                                        expires_in=soon)
    posts = []
    for account in (facebook, instagram):
        posts.append(await insert_post(db, platform="instagram", account_id=account,
                                       post_type="image", content=f"image of {account}",
                                       media_urls=["https://cdn.example.com/a.jpg"]))
        posts.append(await insert_post(db, platform="instagram", account_id=account,
                                       post_type="carousel", content=f"carousel of {account}",
                                       media_urls=["https://cdn.example.com/b.jpg",
                                                   "https://cdn.example.com/c.jpg"]))
    async with run_in_process(SimConfig(latency=0.0)) as sim, \
            httpx.AsyncClient(base_url=sim) as client:
        # A container made on graph.instagram.com whose publish answer was lost.
        made = await client.post(f"{INSTAGRAM_HOST}/v25.0/1784002/media",
                                 data={"image_url": "https://cdn.example.com/d.jpg",
                                       "caption": "under review"},
                                 headers={"Authorization": f"Bearer {IG_TOKEN}"})
        review = await insert_post(
            db, platform="instagram", account_id=instagram, post_type="image",
            content="under review", media_urls=["https://cdn.example.com/d.jpg"],
            status="needs_review", attempts=1, sending_started_at=sql("now()"),
            publish_state=json.dumps({"container_id": made.json()["id"]}))
        settings = Settings(database_url=database_url, simulator_url=sim,
                            encryption_key=KEY, endpoints=simulator_endpoints(sim))
        summary = await run_once(settings)
        stats = (await client.get("/_sim/stats")).json()
        accepted = (await client.get("/_sim/posts")).json()
    rows = {r["id"]: dict(r) for r in await db.fetch(
        "select id, status, last_error from created_content")}
    assert {i: r["status"] for i, r in rows.items()} == dict.fromkeys([*posts, review],
                                                                      "published"), rows
    assert summary.by_status == {"published": 5}
    assert (stats["accepted"], stats["duplicates"]) == (5, 0)
    assert sorted(p["account"] for p in accepted) == ["1784001"] * 2 + ["1784002"] * 3
    assert list(stats["token_refreshes"]) == [IG_TOKEN]  # never the Page token
    accounts = {str(r["id"]): r for r in await db.fetch(
        "select id, status, access_token_encrypted from social_accounts")}
    assert [a["status"] for a in accounts.values()] == ["active", "active"]
    assert CIPHER.decrypt(accounts[facebook]["access_token_encrypted"]) == PAGE_TOKEN
    assert CIPHER.decrypt(accounts[instagram]["access_token_encrypted"]).startswith("IGAAsim")


def test_simulator_endpoints_match_the_simulators_instagram_host() -> None:
    """Settings and simulator name the same prefix for graph.instagram.com."""
    endpoints = simulator_endpoints("http://127.0.0.1:1")
    assert endpoints.instagram == "http://127.0.0.1:1"
    assert endpoints.instagram_graph == "http://127.0.0.1:1" + INSTAGRAM_HOST

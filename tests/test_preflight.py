"""Problems found before they are due (publisher.preflight), against real Postgres and the
platform simulator (or respx where a test counts calls to a platform)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from helpers import fetch_post, insert_account, insert_post, insert_posts, set_post, sql
from product_db import USER_A
from publisher.app import run_once, runtime
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import ConfigError
from publisher.models import Account, OutcomeKind
from publisher.platforms import build_adapters
from publisher.platforms.base import TokenChecker
from publisher.preflight import Preflight, PreflightReport
from publisher.settings import PlatformEndpoints, Settings, simulator_endpoints
from publisher.settings_ops import PreflightSettings
from publisher.simulator.server import SimulatorProcess, run_in_process
from publisher.simulator.state import SimConfig
from publisher.store import Store
from publisher.store.postgres import PostgresTransport

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))
TOMORROW = sql("now() + interval '20 hours'")
INVISIBLE = "\u200b \u200b"  # zero-width spaces: no text a reader can see
ME = "https://graph.facebook.com/v25.0/me"
REVOKED_190 = {"error": {
    "message": "Error validating access token: The session has been invalidated because the "
               "user changed their password.", "type": "OAuthException", "code": 190,
    "error_subcode": 460, "fbtrace_id": "AbC"}}


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    async with run_in_process(SimConfig(latency=0.0, seed=1)) as url:
        yield url


def sim_settings(database_url: str, simulator_url: str, **changes: Any) -> Settings:
    base = Settings(database_url=database_url, simulator_url=simulator_url, encryption_key=KEY,
                    run_deadline_seconds=60, endpoints=simulator_endpoints(simulator_url))
    return replace(base, **changes)


async def look_ahead(settings: Settings, **kwargs: Any) -> PreflightReport:
    async with runtime(settings) as rt:
        return await rt.preflight().run(**kwargs)


async def account(db: asyncpg.Connection, token: str, *, platform: str = "facebook",
                  **columns: Any) -> str:
    return await insert_account(db, platform=platform,
                                access_token_encrypted=CIPHER.encrypt(token), **columns)


async def events(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await db.fetch("select post_id, account_id, reason, payload from publisher_events "
                               "where type = 'post.preflight_problem' order by created_at, id"))


async def preflight_of(db: asyncpg.Connection, post: Any) -> dict[str, Any] | None:
    row = await fetch_post(db, post)
    found = json.loads(row["god_mode_metadata"]).get("preflight")
    assert found is None or isinstance(found, dict)
    return found


# --- the post's own problems ----------------------------------------------------------------

async def test_invisible_text_is_found_a_day_ahead(database_url: str, db: asyncpg.Connection,
                                                   simulator: str) -> None:
    """A text post due tomorrow whose text is all zero-width spaces gets the publish-time
    reason written onto it and one event; it stays scheduled and its updated_at is kept."""
    page = await account(db, "page-token-ok")
    post = await insert_post(db, account_id=page, content=INVISIBLE, scheduled_at=TOMORROW)
    before = await fetch_post(db, post)

    report = await look_ahead(sim_settings(database_url, simulator))

    after = await fetch_post(db, post)
    found = await preflight_of(db, post)
    assert found is not None
    assert "needs text" in found["reason"]
    assert found["post"] == found["reason"]
    assert "checked_at" in found
    assert (after["status"], after["updated_at"]) == ("scheduled", before["updated_at"])
    [event] = await events(db)
    assert (event["post_id"], event["account_id"]) == (post, before["account_id"])
    assert event["reason"] == found["reason"]
    assert json.loads(event["payload"])["preflight"]["reason"] == found["reason"]
    assert [p.post_id for p in report.post_problems] == [post]
    assert report.accounts_checked == 1  # its token was asked about too, and is fine


async def test_unchanged_post_is_not_checked_again(database_url: str, db: asyncpg.Connection,
                                                   simulator: str) -> None:
    """A second run leaves a post that did not change alone; a post edited into the same
    problem is checked again but makes no second event."""
    page = await account(db, "page-token-ok")
    post = await insert_post(db, account_id=page, content=INVISIBLE, scheduled_at=TOMORROW)
    settings = sim_settings(database_url, simulator)
    assert (await look_ahead(settings)).posts_checked == 1

    again = await look_ahead(settings)
    assert again.posts_checked == 0
    await set_post(db, post, content="\u200b", updated_at=sql("now()"))
    edited = await look_ahead(settings)
    assert (edited.posts_checked, len(edited.post_problems)) == (1, 1)
    assert len(await events(db)) == 1


async def test_fixed_post_is_cleared(database_url: str, db: asyncpg.Connection,
                                     simulator: str) -> None:
    """Once the user fixes the post, the next run removes its preflight problem."""
    page = await account(db, "page-token-ok")
    post = await insert_post(db, account_id=page, content=INVISIBLE, scheduled_at=TOMORROW)
    settings = sim_settings(database_url, simulator)
    await look_ahead(settings)
    assert await preflight_of(db, post) is not None

    await set_post(db, post, content="Fresh bread at 7", updated_at=sql("now()"))
    report = await look_ahead(settings)
    assert (report.posts_checked, report.problems) == (1, 0)
    assert await preflight_of(db, post) is None
    assert len(await events(db)) == 1


async def test_a_post_edited_while_checked_is_left_for_the_next_run(
        store: Store, db: asyncpg.Connection) -> None:
    """record_preflight is fenced by the updated_at the check read: an edit in between is not
    stamped as checked with the old content's verdict."""
    post = await insert_post(db, content=INVISIBLE, scheduled_at=TOMORROW)
    [row] = await store.preflight_candidates(24, 10, ids=None, changed_only=True)
    await set_post(db, post, content="fixed meanwhile", updated_at=sql("now()"))
    written = await store.record_preflight(
        [{"id": post, "updated_at": row["updated_at"], "problem": "stale verdict"}], [],
        hours=24)
    assert written["stale"] == [post]
    assert await preflight_of(db, post) is None
    [again] = await store.preflight_candidates(24, 10, ids=None, changed_only=True)
    assert again["id"] == post


async def test_only_posts_due_within_the_window_and_not_yet_due(
        store: Store, db: asyncpg.Connection) -> None:
    """Due now, due after PREFLIGHT_HOURS, or not scheduled: not a candidate."""
    inside = await insert_post(db, scheduled_at=TOMORROW)
    await insert_post(db, scheduled_at=sql("now() - interval '1 minute'"))
    await insert_post(db, scheduled_at=sql("now() + interval '30 hours'"))
    await insert_post(db, status="draft", scheduled_at=TOMORROW)
    rows = await store.preflight_candidates(24, 10, ids=None, changed_only=True)
    assert [r["id"] for r in rows] == [inside]


async def test_either_post_id_type(id_type_database_url: str) -> None:
    """Candidates, the write and its event, and `--post ID` as text, with bigint ids and with
    the product's uuid ids (they come back as the database holds them)."""
    conn = await asyncpg.connect(id_type_database_url, statement_cache_size=0)
    store = Store(await PostgresTransport.connect(id_type_database_url, max_size=2))
    try:
        page = await insert_account(conn, user_id=USER_A,
                                    access_token_encrypted=CIPHER.encrypt("EAAGtok"))
        [post] = await insert_posts(conn, 1, user_id=USER_A, status="scheduled",
                                    account_id=page, content=INVISIBLE, scheduled_at=TOMORROW)
        settings = Settings(database_url=id_type_database_url, encryption_key=KEY,
                            preflight=PreflightSettings(token_checks=0))
        async with httpx.AsyncClient() as client:
            preflight = Preflight(settings, store, client, build_adapters(), CIPHER)
            first = await preflight.run()
            named = await preflight.run(ids=[str(post), "not-an-id"], changed_only=False)
        [event] = await events(conn)
    finally:
        await store.close()
        await conn.close()
    assert [p.post_id for p in first.post_problems] == [post]
    assert [p.post_id for p in named.post_problems] == [post]
    assert str(event["post_id"]) == str(post)  # asyncpg reads a uuid as UUID


# --- the account's token ----------------------------------------------------------------------

async def test_revoked_token_is_caught_a_day_ahead_once_an_hour(
        database_url: str, db: asyncpg.Connection, store: Store,
        caplog: pytest.LogCaptureFixture) -> None:
    """A Page token revoked today is found a day before its post is due: the reason is on
    the post with an event; the account is asked once per hour (a second run makes no
    call), an unchanged answer makes no second event, and a live token clears it."""
    caplog.set_level(logging.DEBUG)
    token = "EAAGrevokedPageToken0123456789"
    page = await account(db, token)
    post = await insert_post(db, account_id=page, content="Open on Sunday",
                             scheduled_at=TOMORROW)
    settings = Settings(database_url=database_url, encryption_key=KEY)
    async with respx.mock(assert_all_mocked=True) as router, httpx.AsyncClient() as client:
        me = router.get(ME).mock(return_value=httpx.Response(400, json=REVOKED_190))
        preflight = Preflight(settings, store, client, build_adapters(), CIPHER)
        report = await preflight.run()
        assert me.call_count == 1
        assert me.calls.last.request.headers["authorization"] == f"Bearer {token}"

        found = await preflight_of(db, post)
        assert found is not None
        assert "session has been invalidated" in found["reason"]
        assert found["account"] == found["reason"]
        assert [a.account_id for a in report.account_problems] == [page]
        assert len(await events(db)) == 1

        await preflight.run()   # within the hour: no call
        assert me.call_count == 1
        await db.execute("update social_accounts set preflight_checked_at = "
                         "now() - interval '61 minutes'")
        await preflight.run()   # an hour later: asked again, the same answer
        assert me.call_count == 2
        assert len(await events(db)) == 1

        me.mock(return_value=httpx.Response(200, json={"id": "42"}))
        await db.execute("update social_accounts set preflight_checked_at = "
                         "now() - interval '61 minutes'")
        cleared = await preflight.run()
        assert (me.call_count, cleared.accounts_checked, cleared.problems) == (3, 1, 0)
    assert await preflight_of(db, post) is None
    shown = json.dumps([dict(r) for r in await db.fetch(
        "select e.*, c.god_mode_metadata from publisher_events e, created_content c")],
        default=str)
    assert token not in shown
    assert token not in caplog.text


async def test_preflight_runs_after_the_due_posts(database_url: str, db: asyncpg.Connection,
                                                  simulator: str) -> None:
    """A run with due posts and preflight candidates publishes every due post, and looks
    ahead afterwards: its first preflight write is later than its last outcome (database
    times), and the summary counts what it found."""
    page = await account(db, "page-token-ok")
    await insert_posts(db, 12, account_id=page, content="due now")
    broken = await insert_post(db, account_id=page, content=INVISIBLE, scheduled_at=TOMORROW)
    revoked = await account(db, "page-token-revoked")
    later = await insert_post(db, account_id=revoked, content="Sale tomorrow",
                              scheduled_at=TOMORROW)

    summary = await run_once(sim_settings(database_url, simulator))

    assert summary.by_status == {"published": 12}
    assert await db.fetchval("select count(*) from created_content "
                             "where status = 'published'") == 12
    assert "needs text" in ((await preflight_of(db, broken)) or {})["reason"]
    assert "invalidated" in ((await preflight_of(db, later)) or {})["reason"]
    last_outcome = await db.fetchval("select max(recorded_at) from publish_attempts")
    first_look = await db.fetchval(
        "select least((select min(preflight_checked_at) from created_content), "
        "(select min(preflight_checked_at) from social_accounts))")
    assert last_outcome < first_look
    assert summary.housekeeping["preflight_problems"] == 2
    assert len(await events(db)) == 2
    assert await db.fetchval("select count(*) from publisher_events "
                             "where type = 'post.published'") == 12


async def test_budgets_per_run(database_url: str, db: asyncpg.Connection,
                               store: Store) -> None:
    """PREFLIGHT_BUDGET posts and PREFLIGHT_TOKEN_CHECKS accounts per run, soonest first;
    the rest wait for the next runs."""
    pages = [await account(db, f"EAAGtoken{i}") for i in range(3)]
    posts = [await insert_post(db, account_id=page, content="fine",
                               scheduled_at=sql(f"now() + interval '{i + 2} hours'"))
             for i, page in enumerate(pages)]
    settings = Settings(database_url=database_url, encryption_key=KEY,
                        preflight=PreflightSettings(hours=24, budget=2, token_checks=1))
    async with respx.mock(assert_all_mocked=True) as router, httpx.AsyncClient() as client:
        me = router.get(ME).mock(return_value=httpx.Response(200, json={"id": "1"}))
        preflight = Preflight(settings, store, client, build_adapters(), CIPHER)
        runs = [await preflight.run() for _ in range(4)]
    assert [(r.posts_checked, r.accounts_checked) for r in runs] == [
        (2, 1), (1, 1), (0, 1), (0, 0)]
    assert me.call_count == 3
    checked = await db.fetch("select id from created_content "
                             "where preflight_checked_at is not null order by id")
    assert [r["id"] for r in checked] == posts


async def test_token_checks_answer_per_token_state(simulator: str) -> None:
    """Each adapter's check_token against the simulator: a live token passes, a revoked one
    is REAUTH, on each platform's own endpoint (Instagram Login on graph.instagram.com)."""
    endpoints = simulator_endpoints(simulator)
    adapters = build_adapters()
    cases = [("facebook", None, "EAAGpage", "EAAGpage-revoked"),
             ("instagram", "facebook", "EAAGpage", "EAAG-expired"),
             ("instagram", "instagram", "IGAAuser", "IGAA-revoked"),
             ("linkedin", None, "AQVmember", "AQV-revoked"),
             ("youtube", None, "ya29.a-token-UCchan", "ya29.expired-token-UCchan")]
    async with httpx.AsyncClient() as client:
        for platform, login, live, dead in cases:
            checker: TokenChecker = adapters[platform]  # type: ignore[assignment]
            acct = Account(id="a", platform=platform, external_id="x", status="active",
                           status_reason=None, access_token_encrypted=None,
                           refresh_token_encrypted=None, token_expires_at=None,
                           login_type=login)
            assert await checker.check_token(client, endpoints, acct, live) is None, platform
            refused = await checker.check_token(client, endpoints, acct, dead)
            assert refused is not None
            assert refused.kind is OutcomeKind.REAUTH, (platform, refused)


async def test_token_check_calls() -> None:
    """The calls themselves: Instagram Login asks graph.instagram.com; a LinkedIn 403 (no
    openid scope) is a live token; Google's 400 invalid_token is a dead one."""
    endpoints = PlatformEndpoints()
    adapters = build_adapters()

    def acct(platform: str, login: str | None = None) -> Account:
        return Account(id="a", platform=platform, external_id="x", status="active",
                       status_reason=None, access_token_encrypted=None,
                       refresh_token_encrypted=None, token_expires_at=None, login_type=login)

    async with respx.mock(assert_all_mocked=True) as router, httpx.AsyncClient() as client:
        ig = router.get("https://graph.instagram.com/v25.0/me").mock(
            return_value=httpx.Response(200, json={"id": "17"}))
        router.get("https://api.linkedin.com/v2/userinfo").mock(return_value=httpx.Response(
            403, json={"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED",
                       "message": "Not enough permissions to access: userinfo.GET.NO_VERSION"}))
        google = router.get("https://oauth2.googleapis.com/tokeninfo").mock(
            return_value=httpx.Response(400, json={"error": "invalid_token",
                                                   "error_description": "Invalid Value"}))
        instagram: TokenChecker = adapters["instagram"]  # type: ignore[assignment]
        linkedin: TokenChecker = adapters["linkedin"]  # type: ignore[assignment]
        youtube: TokenChecker = adapters["youtube"]  # type: ignore[assignment]
        assert await instagram.check_token(client, endpoints, acct("instagram", "instagram"),
                                           "IGAAtok") is None
        assert ig.calls.last.request.url.params["fields"] == "id"
        assert await linkedin.check_token(client, endpoints, acct("linkedin"), "AQVt") is None
        dead = await youtube.check_token(client, endpoints, acct("youtube"), "ya29.tok")
    assert dead is not None
    assert dead.kind is OutcomeKind.REAUTH
    assert "ya29.tok" not in (dead.reason or "")
    assert google.calls.last.request.url.params["access_token"] == "ya29.tok"


# --- the command line and the settings --------------------------------------------------------

async def test_cli_check_post(database_url: str, db: asyncpg.Connection) -> None:
    """`publisher check --post ID` checks that post now: exit 1 with its problem (and with
    --json the same as JSON), exit 0 with "ok:" once it is fixed; a revoked token shows."""
    page = await account(db, "page-token-ok")
    post = await insert_post(db, account_id=page, content=INVISIBLE,
                             scheduled_at=sql("now() + interval '3 days'"))
    revoked = await account(db, "page-token-revoked")
    other = await insert_post(db, account_id=revoked, content="hi", scheduled_at=TOMORROW)
    async with SimulatorProcess(SimConfig(latency=0.0)) as sim:
        env = {**os.environ, "DATABASE_URL": database_url, "SIMULATOR_URL": sim.url,
               "ENCRYPTION_KEY": KEY}

        def check(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "publisher", "check", *args],  # noqa: S603
                                  env=env, capture_output=True, text=True, timeout=60,
                                  check=False)

        found = await asyncio.to_thread(check, "--post", str(post))
        assert found.returncode == 1, found.stderr
        assert found.stdout.splitlines()[0].startswith(f"post {post} (facebook, due ")
        assert "needs text" in found.stdout
        assert (await preflight_of(db, post) or {}).get("post")

        as_json = await asyncio.to_thread(check, "--post", str(other), "--json")
        assert as_json.returncode == 1, as_json.stderr
        report = json.loads(as_json.stdout)
        assert [p["account_id"] for p in report["problems"]] == [revoked]
        assert "page-token-revoked" not in as_json.stdout + as_json.stderr

        await set_post(db, post, content="Now with words", updated_at=sql("now()"))
        fixed = await asyncio.to_thread(check, "--post", str(post))
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert fixed.stdout.startswith("ok: ")
        assert await preflight_of(db, post) is None

        missing = await asyncio.to_thread(check, "--post", "999999")
        assert missing.returncode == 2
        assert "not checked: 1" in missing.stdout


@pytest.mark.parametrize(("name", "value"), [("PREFLIGHT_HOURS", "-1"),
                                             ("PREFLIGHT_BUDGET", "0"),
                                             ("PREFLIGHT_TOKEN_CHECKS", "many")])
def test_bad_preflight_settings_name_the_variable(name: str, value: str) -> None:
    """A bad PREFLIGHT_* value stops start-up with a ConfigError naming it."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_preflight_settings_defaults_and_off() -> None:
    """24 h, 200 posts, 20 accounts by default; PREFLIGHT_HOURS=0 switches it off."""
    default = Settings.from_env({}).preflight
    assert (default.hours, default.budget, default.token_checks, default.on) == (24, 200, 20,
                                                                                 True)
    assert Settings.from_env({"PREFLIGHT_HOURS": "0"}).preflight.on is False

"""`publisher status` and `status --check` on real Postgres: each alarm fires on a database
seeded with its problem and stays quiet on a healthy one; the KPIs on posts of known
lateness; the JSON shapes; the run summary's lateness."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from helpers import insert_account, insert_post, insert_posts, sql
from product_db import USER_A
from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import StoreError
from publisher.seeding import SeedPlan, seed
from publisher.settings import Settings, simulator_endpoints
from publisher.settings_ops import AlertSettings
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig
from publisher.status import check_command, status_report
from publisher.store import Store
from publisher.store.postgres import PostgresTransport
from publisher.summary import LATENESS_SAMPLE, Lateness, RunSummary

ALERTS = AlertSettings()  # the defaults: 10 min silent, 15 min overdue, 4 h review, 20 % / 10


def ago(interval: str) -> sql:
    return sql(f"now() - interval '{interval}'")


def ahead(interval: str) -> sql:
    return sql(f"now() + interval '{interval}'")


async def add_run(db: asyncpg.Connection, before: str = "1 minute", **summary: Any) -> None:
    """A publisher_runs row that finished `before` (an interval) ago, with this summary."""
    await db.execute(
        "insert into publisher_runs (worker_id, started_at, finished_at, summary) "
        "values ('w', now() - $1::text::interval - interval '30 seconds', "
        "now() - $1::text::interval, $2::jsonb)", before, json.dumps(summary))


async def publish_posts(db: asyncpg.Connection, count: int, *, platform: str = "facebook",
                        published: str = "10 minutes", late_seconds: float = 30.0) -> None:
    """Posts published `published` ago, `late_seconds` after their scheduled time."""
    await insert_posts(
        db, count, platform=platform, status="published", published_at=ago(published),
        scheduled_at=sql(f"now() - interval '{published}' - "
                         f"make_interval(secs => {late_seconds})"))


async def check(store: Store) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = await check_command(store, ALERTS, as_json=False, out=out)
    return code, out.getvalue().splitlines()


@pytest.fixture
async def healthy(db: asyncpg.Connection) -> asyncpg.Connection:
    """A database a minute after a good run: posts published, nothing due or waiting."""
    await add_run(db, "1 minute", finished=20, wall_seconds=12.5)
    await publish_posts(db, 20)
    await insert_posts(db, 5, scheduled_at=ahead("3 hours"))
    return db


async def test_healthy_database_passes_with_one_ok_line(healthy: asyncpg.Connection,
                                                        store: Store) -> None:
    """No alarm fires: exit 0 and a single line starting "ok:" with the facts."""
    code, lines = await check(store)
    assert code == 0
    assert len(lines) == 1
    assert re.fullmatch(r"ok: last run 1(\.\d)? min ago; 0 overdue; 0 needs_review over 4 h; "
                        r"0 account\(s\) needing reauth with posts due; last hour 20 ended, "
                        r"0 % not published", lines[0]), lines


# --- silent ---------------------------------------------------------------------------------

async def test_silent_fires_when_no_run_finished_while_posts_are_due(
        healthy: asyncpg.Connection, store: Store) -> None:
    """The last run finished 30 minutes ago and a post has been due for 5: one silent line."""
    await healthy.execute("update publisher_runs set finished_at = now() - interval '30 "
                          "minutes'")
    await insert_post(healthy, scheduled_at=ago("5 minutes"))
    code, lines = await check(store)
    assert code == 1
    assert len(lines) == 1
    assert re.fullmatch(r"silent: no run has finished for 30(\.\d)? minutes \(limit 10\) while "
                        r"1 post\(s\) are due: is the cron job or worker running\?", lines[0])


async def test_silent_fires_when_no_run_ever_finished(db: asyncpg.Connection,
                                                      store: Store) -> None:
    """A deployment whose scheduler never ran, with a post due: silent."""
    await insert_post(db, scheduled_at=ago("2 minutes"))
    code, lines = await check(store)
    assert code == 1
    assert lines == ["silent: no run has ever finished (limit 10) while 1 post(s) are due: "
                     "is the cron job or worker running?"]


async def test_silent_stays_quiet_after_a_recent_run(healthy: asyncpg.Connection,
                                                     store: Store) -> None:
    """A post due for 5 minutes with a run a minute ago is the queue's business, not silence."""
    await insert_post(healthy, scheduled_at=ago("5 minutes"))
    code, lines = await check(store)
    assert (code, lines[0][:3]) == (0, "ok:")


async def test_silent_stays_quiet_while_nothing_is_due(healthy: asyncpg.Connection,
                                                       store: Store) -> None:
    """An idle worker records no runs: an hour of silence with nothing due is no alarm, nor
    are due posts of a paused account (no run would take them)."""
    await healthy.execute("update publisher_runs set finished_at = now() - interval '1 hour'")
    paused = await insert_account(healthy, paused_until=ahead("1 hour"))
    await insert_post(healthy, account_id=paused, scheduled_at=ago("5 minutes"))
    code, lines = await check(store)
    assert (code, lines[0][:3]) == (0, "ok:")


# --- overdue --------------------------------------------------------------------------------

async def test_overdue_fires_past_the_limit(healthy: asyncpg.Connection,
                                            store: Store) -> None:
    """Two posts still queued 20 and 90 minutes after their due time: one overdue line."""
    await insert_post(healthy, scheduled_at=ago("20 minutes"))
    await insert_post(healthy, status="retrying", scheduled_at=ago("2 hours"),
                      not_before=ago("90 minutes"))
    code, lines = await check(store)
    assert code == 1
    assert len(lines) == 1
    assert re.fullmatch(r"overdue: 2 post\(s\) still queued more than 15 minutes after their "
                        r"due time \(the oldest due 90(\.\d)? minutes ago\)", lines[0])


async def test_overdue_stays_quiet_within_the_limit(healthy: asyncpg.Connection,
                                                    store: Store) -> None:
    """Due 10 minutes ago, or deferred to a later not_before: not overdue."""
    await insert_post(healthy, scheduled_at=ago("10 minutes"))
    await insert_post(healthy, scheduled_at=ago("2 hours"), not_before=ahead("5 minutes"))
    code, lines = await check(store)
    assert (code, lines[0][:3]) == (0, "ok:")


# --- needs_review ---------------------------------------------------------------------------

async def test_review_fires_for_posts_older_than_the_limit(healthy: asyncpg.Connection,
                                                           store: Store) -> None:
    """A post unknown since sending started 6 hours ago (checked again since) fires."""
    await insert_post(healthy, status="needs_review", scheduled_at=ago("6 hours"),
                      sending_started_at=ago("6 hours"), updated_at=ago("10 minutes"))
    code, lines = await check(store)
    assert code == 1
    assert len(lines) == 1
    assert re.fullmatch(r"needs_review: 1 post\(s\) in needs_review for more than 4 hours "
                        r"\(the oldest 6(\.\d)? hours\): a person must check the platform "
                        r"and settle them \(publisher review\)", lines[0])


async def test_review_stays_quiet_for_recent_ones(healthy: asyncpg.Connection,
                                                  store: Store) -> None:
    """needs_review for an hour is still reconciliation's to settle: no alarm."""
    await insert_post(healthy, status="needs_review", scheduled_at=ago("70 minutes"),
                      sending_started_at=ago("1 hour"))
    code, lines = await check(store)
    assert (code, lines[0][:3]) == (0, "ok:")


# --- needs_reauth ---------------------------------------------------------------------------

async def test_reauth_fires_for_accounts_with_posts_due_within_a_day(
        healthy: asyncpg.Connection, store: Store) -> None:
    """An account in needs_reauth with two posts due in 3 and 5 hours is named."""
    account = await insert_account(healthy, status="needs_reauth")
    await insert_post(healthy, account_id=account, scheduled_at=ahead("5 hours"))
    await insert_post(healthy, account_id=account, scheduled_at=ahead("3 hours"))
    code, lines = await check(store)
    assert code == 1
    [line] = lines
    assert line.startswith(f"needs_reauth: 1 account(s) must be reconnected and have 2 "
                           f"post(s) due within a day: facebook {account} (2 post(s), next "
                           f"due ")


async def test_reauth_stays_quiet_without_posts_due_soon(healthy: asyncpg.Connection,
                                                         store: Store) -> None:
    """needs_reauth with its next post two days out, or only published posts: no alarm."""
    account = await insert_account(healthy, status="needs_reauth")
    await insert_post(healthy, account_id=account, scheduled_at=ahead("2 days"))
    await insert_post(healthy, account_id=account, status="published",
                      scheduled_at=ago("1 hour"), published_at=ago("1 hour"))
    code, lines = await check(store)
    assert (code, lines[0][:3]) == (0, "ok:")


# --- failure rate ---------------------------------------------------------------------------

async def test_failure_rate_fires_above_the_limit(db: asyncpg.Connection,
                                                  store: Store) -> None:
    """Of the last hour's 10 ended posts 2 failed and 1 is needs_review: 30 % > 20 %."""
    await add_run(db, "1 minute", finished=10, wall_seconds=5)
    await publish_posts(db, 7)
    await insert_posts(db, 2, status="failed", scheduled_at=ago("20 minutes"))
    await insert_post(db, status="needs_review", scheduled_at=ago("20 minutes"),
                      sending_started_at=ago("19 minutes"))
    code, lines = await check(store)
    assert code == 1
    assert lines == ["failure_rate: 30 % of the 10 post(s) that ended in the last hour did "
                     "not publish (2 failed, 1 needs_review; limit 20 %)"]


async def test_failure_rate_stays_quiet_below_the_limit_or_the_minimum(
        db: asyncpg.Connection, store: Store) -> None:
    """1 failed of 10 (10 %) is fine; so are 2 failed of 3, too few posts to judge, and
    posts that failed two hours ago."""
    await add_run(db, "1 minute", finished=10, wall_seconds=5)
    await publish_posts(db, 9)
    await insert_post(db, status="failed", scheduled_at=ago("20 minutes"))
    await insert_posts(db, 5, status="failed", scheduled_at=ago("3 hours"),
                       updated_at=ago("2 hours"))
    code, lines = await check(store)
    assert (code, lines[0][:3]) == (0, "ok:")
    await db.execute("delete from created_content where status = 'published'")
    await publish_posts(db, 1)
    await insert_post(db, status="failed", scheduled_at=ago("20 minutes"))
    code, lines = await check(store)
    assert (code, lines[0][:3]) == (0, "ok:")


# --- the CLI --------------------------------------------------------------------------------

def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "publisher", "status", *args],  # noqa: S603
                          env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_cli_check_exit_codes(database_url: str, healthy: asyncpg.Connection,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`status --check` exits 0 with "ok: ..." when healthy, 1 with one line per problem
    (thresholds from ALERT_* settings), 2 for a bad setting naming it."""
    passed = await asyncio.to_thread(_cli, database_url, "--check")
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.startswith("ok: ")
    assert len(passed.stdout.splitlines()) == 1

    await insert_post(healthy, scheduled_at=ago("20 minutes"))
    await insert_post(healthy, status="needs_review", sending_started_at=ago("5 hours"))
    failed = await asyncio.to_thread(_cli, database_url, "--check")
    assert failed.returncode == 1, failed.stderr
    assert [line.split(":")[0] for line in failed.stdout.splitlines()] == [
        "overdue", "needs_review"]

    monkeypatch.setenv("ALERT_OVERDUE_MINUTES", "30")  # the child process reads it
    relaxed = await asyncio.to_thread(_cli, database_url, "--check")
    monkeypatch.setenv("ALERT_OVERDUE_MINUTES", "soon")
    bad = await asyncio.to_thread(_cli, database_url, "--check")
    assert relaxed.returncode == 1
    assert [line.split(":")[0] for line in relaxed.stdout.splitlines()] == ["needs_review"]
    assert bad.returncode == 2
    assert "ALERT_OVERDUE_MINUTES" in bad.stderr
    assert bad.stdout == ""


async def test_cli_json_shapes(database_url: str, healthy: asyncpg.Connection) -> None:
    """`status --json`: the counts, the last run and two KPI windows; `--check --json`:
    ok, problems and each alarm's facts."""
    done = await asyncio.to_thread(_cli, database_url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"posts", "due_now", "last_run", "kpis"}
    assert [w["hours"] for w in report["kpis"]["windows"]] == [1, 24]
    window = report["kpis"]["windows"][0]
    assert set(window) == {"hours", "since", "runs", "posts_per_minute", "published", "failed",
                           "needs_review", "expired", "success_rate", "attempts", "errors",
                           "error_rate", "lateness_seconds", "platforms"}
    assert set(window["lateness_seconds"]) == {"count", "p50", "p95", "max"}
    assert window["platforms"]["facebook"]["published"] == 20

    checked = await asyncio.to_thread(_cli, database_url, "--check", "--json")
    assert checked.returncode == 0, checked.stderr
    facts = json.loads(checked.stdout)
    assert (facts["ok"], facts["problems"]) == (True, [])
    assert set(facts["alarms"]) == {"at", "silent", "overdue", "review", "reauth",
                                    "failure_rate"}
    assert all(facts["alarms"][name]["firing"] is False
               for name in ("silent", "overdue", "review", "reauth", "failure_rate"))

    text = await asyncio.to_thread(_cli, database_url)
    assert text.returncode == 0, text.stderr
    assert "success rate" in text.stdout
    assert "lateness p50 / p95 / max" in text.stdout


# --- KPIs -----------------------------------------------------------------------------------

async def test_kpis_on_posts_of_known_lateness(db: asyncpg.Connection, store: Store) -> None:
    """Exact counts, rates and lateness percentiles (percentile_cont) per window."""
    for late in (10, 20, 30, 40):
        await publish_posts(db, 1, published="5 minutes", late_seconds=late)
    await publish_posts(db, 1, platform="instagram", published="5 minutes", late_seconds=100)
    await publish_posts(db, 1, published="3 hours", late_seconds=1000)  # the day only
    await insert_post(db, status="failed", scheduled_at=ago("30 minutes"))
    await insert_post(db, status="needs_review", scheduled_at=ago("40 minutes"),
                      sending_started_at=ago("40 minutes"))
    await insert_post(db, status="expired", scheduled_at=ago("30 hours"),
                      updated_at=ago("2 hours"))
    await insert_post(db, status="failed", scheduled_at=ago("3 days"),
                      updated_at=ago("2 days"))  # in neither window
    # Runs in the order they finished, as their ids grow in production.
    await add_run(db, "2 days", finished=99, wall_seconds=1)
    await add_run(db, "3 hours", finished=10, wall_seconds=10,
                  by_platform={"instagram": {"published": 5, "failed": 4, "scheduled": 1}})
    await add_run(db, "10 minutes", finished=30, wall_seconds=20,
                  by_platform={"facebook": {"published": 27, "retrying": 3}})
    await add_run(db, "2 minutes", finished=0, wall_seconds=0.5)  # idle: not in the rate

    hour, day = (await store.kpis([1, 24]))["windows"]
    assert (hour["hours"], hour["runs"], hour["posts_per_minute"]) == (1, 2, 90.0)
    assert (hour["published"], hour["failed"], hour["needs_review"], hour["expired"]) == (
        5, 1, 1, 0)
    assert hour["success_rate"] == round(5 / 7, 4)
    assert (hour["attempts"], hour["errors"], hour["error_rate"]) == (30, 3, 0.1)
    assert hour["lateness_seconds"] == {"count": 5, "p50": 30.0, "p95": 88.0, "max": 100.0}
    assert hour["platforms"]["instagram"]["lateness_seconds"] == {
        "count": 1, "p50": 100.0, "p95": 100.0, "max": 100.0}
    assert hour["platforms"]["facebook"]["error_rate"] == 0.1

    assert (day["runs"], day["posts_per_minute"]) == (3, 80.0)
    assert (day["published"], day["failed"], day["needs_review"], day["expired"]) == (
        6, 1, 1, 1)
    assert (day["attempts"], day["errors"]) == (40, 7)
    assert day["platforms"]["instagram"]["error_rate"] == 0.4
    assert day["lateness_seconds"] == {"count": 6, "p50": 35.0, "p95": 775.0, "max": 1000.0}


async def test_kpis_of_an_empty_database(store: Store) -> None:
    """No posts, no runs: zeros and nulls, every key present."""
    [window] = (await store.kpis([1]))["windows"]
    assert window["published"] == 0
    assert window["runs"] == 0
    assert window["success_rate"] is None
    assert window["posts_per_minute"] is None
    assert window["lateness_seconds"] == {"count": 0, "p50": None, "p95": None, "max": None}
    assert window["platforms"] == {}


@pytest.mark.parametrize("hours", [[], [0.0], [-1.0], [9000.0]])
async def test_kpis_refuse_windows_that_are_not_hours(store: Store, hours: list[float]) -> None:
    """An empty list, or a window not above 0 or over a year, is refused by name."""
    with pytest.raises(StoreError, match="p_hours must hold windows in hours"):
        await store.kpis(hours)


async def test_status_report_joins_counts_and_kpis(healthy: asyncpg.Connection,
                                                   store: Store) -> None:
    """status_report: publisher_status's counts plus both KPI windows."""
    report = await status_report(store)
    assert ("published", "facebook", 20) in {
        (p["status"], p["platform"], p["count"]) for p in report["posts"]}
    assert [w["published"] for w in report["kpis"]["windows"]] == [20, 20]
    assert report["kpis"]["windows"][0]["lateness_seconds"]["p50"] == 30.0


# --- the run summary's lateness -------------------------------------------------------------

def test_summary_lateness_is_exact_for_small_runs() -> None:
    """p50 / p95 / max from the clock at the moment each outcome is decided; only
    published posts with a scheduled time count."""
    now = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    summary = RunSummary(worker_id="w", clock=now.timestamp)
    for seconds in (10, 20, 30, 40, 100):
        summary.count("facebook", "published", now - timedelta(seconds=seconds))
    summary.count("facebook", "retrying", now - timedelta(hours=5))
    summary.count("facebook", "published", None)
    assert summary.as_dict()["lateness_seconds"] == {"count": 5, "p50": 30.0, "p95": 88.0,
                                                    "max": 100.0}


def test_summary_lateness_memory_is_bounded() -> None:
    """Beyond LATENESS_SAMPLE posts the sample stays that size; count and max stay exact."""
    lateness = Lateness()
    for n in range(LATENESS_SAMPLE * 3):
        lateness.add(float(n % 1000))
    lateness.add(5000.0)
    assert len(lateness.sample) == LATENESS_SAMPLE
    shown = lateness.as_dict()
    assert (shown["count"], shown["max"]) == (LATENESS_SAMPLE * 3 + 1, 5000.0)
    assert 400 <= shown["p50"] <= 600  # a uniform sample of 0..999


async def test_run_summary_line_and_row_carry_lateness(
        database_url: str, db: asyncpg.Connection, store: Store,
        caplog: pytest.LogCaptureFixture) -> None:
    """A run against the simulator: the run_summary log line and the publisher_runs row
    both carry the lateness of the posts it published, at least their 120 s."""
    key = generate_key()
    await seed(db, SeedPlan(posts=12, accounts=3, platforms=["facebook"]),
               TokenCipher(parse_key(key)))
    await db.execute("update created_content set scheduled_at = now() - interval '120 seconds'")
    async with run_in_process(SimConfig(latency=0.0, seed=1)) as url:
        settings = Settings(database_url=database_url, simulator_url=url, encryption_key=key,
                            endpoints=simulator_endpoints(url))
        with caplog.at_level(logging.INFO, logger="publisher"):
            summary = await run_once(settings)
    assert summary.by_status == {"published": 12}
    row = json.loads(await db.fetchval("select summary from publisher_runs"))
    logged = next(getattr(r, "fields", {}) for r in caplog.records
                  if getattr(r, "fields", {}).get("event") == "run_summary")
    for shown in (row["lateness_seconds"], logged["lateness_seconds"]):
        assert shown["count"] == 12
        assert 120 <= shown["p50"] <= shown["p95"] <= shown["max"] < 3600
    [hour] = (await store.kpis([1]))["windows"]  # the database's view agrees
    assert hour["lateness_seconds"]["count"] == 12
    assert hour["lateness_seconds"]["p50"] >= 120


async def test_kpis_and_alarms_with_either_post_id_type(id_type_database_url: str) -> None:
    """On our created_content (bigint ids) and on the product's own (uuid ids, its own
    columns beside ours), the same numbers and the same alarm."""
    conn = await asyncpg.connect(id_type_database_url, statement_cache_size=0)
    store = Store(await PostgresTransport.connect(id_type_database_url, max_size=1))
    try:
        owner = {"user_id": USER_A, "content": "hello"}  # the product's table needs a user
        for late in (10, 30):
            await insert_post(conn, **owner, status="published", published_at=ago("5 minutes"),
                              scheduled_at=sql(f"now() - interval '5 minutes' - "
                                               f"make_interval(secs => {late})"))
        account = await insert_account(conn, status="needs_reauth")
        await insert_post(conn, **owner, status="scheduled", account_id=account,
                          scheduled_at=ahead("1 hour"))
        await add_run(conn, "1 minute", finished=2, wall_seconds=1)

        [hour] = (await store.kpis([1]))["windows"]
        assert hour["lateness_seconds"] == {"count": 2, "p50": 20.0, "p95": 29.0, "max": 30.0}
        code, lines = await check(store)
        assert code == 1
        assert [line.split(":")[0] for line in lines] == ["needs_reauth"]
    finally:
        await store.close()
        await conn.close()

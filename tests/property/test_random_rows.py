"""Random rows through a real run: no post can stop a run, and none goes out that should not.

Each example inserts a few hostile posts (property_rows.hostile_posts: any platform and
post_type string, any text, any jsonb options, media arrays with NULLs and private
addresses, any time the columns accept, odd statuses, leases, accounts and tokens) beside
valid posts on 2-4 platforms, into a fresh database (a clone of the migrated template,
dropped afterwards), then runs one real `run_once` against the platform simulator and
checks:

- the run returns (no exception) and says it could do its work (no database failure, no
  unwritten outcome or lost claim, not stopped by its deadline);
- every valid post is published, and the simulator holds exactly one record of it;
- nothing the oracle (property_oracle.should_be_refused) refuses is published, and every
  simulator record belongs to a published post (or to one whose outcome is unknown);
- every post ends where the oracle says (wait / fail / review), and every post that is not
  published and was due has a state that says why: failed, expired, needs_review and
  retrying carry a reason; a post due now is not left scheduled, and a claim is not left
  without a lease;
- a YouTube video is never more public than its options asked;
- no token (not even its first characters) reaches a stored error or a log line.

A failure is raised as an AssertionError subclass named after what broke (and, for posts
that went out, the rule they broke), so hypothesis reports each kind of failure on its own,
each with its smallest example.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from hypothesis import example, given, note, settings
from property_oracle import Row, expected_end, should_be_refused
from property_rows import (
    KNOWN_CLAIMS,
    KNOWN_CONTENT,
    KNOWN_SCHEDULES,
    PROFILE,
    Account,
    Post,
    Scenario,
    Token,
    When,
    local_literal,
    scenarios,
)

from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.logs import JsonFormatter
from publisher.settings import OAuthClient, Settings, simulator_endpoints
from publisher.simulator.oauth import channel_of
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig
from publisher.summary import RunSummary

KEY, PREVIOUS, FOREIGN = generate_key(), generate_key(), generate_key()
SEALERS = {"current": TokenCipher(parse_key(KEY)), "previous": TokenCipher(parse_key(PREVIOUS)),
           "foreign": TokenCipher(parse_key(FOREIGN))}
WORKER = "property-run"
EXAMPLES = settings.get_profile(PROFILE).max_examples
# Per example a run of a few seconds at most; shrinking a failure may take up to 5 minutes.
TIMEOUT = 120 + 15 * EXAMPLES + 300
END_STATES = {"held": {"publishing"},
              "wait": {"scheduled", "retrying", "publishing", "failed", "expired",
                       "needs_review"},
              "fail": {"failed", "expired"},
              "review": {"needs_review", "retrying", "failed"}}


@pytest.fixture(scope="module")
async def sim_url() -> AsyncIterator[str]:
    """One in-process simulator (no latency, no faults), reset before each example."""
    async with run_in_process(SimConfig(latency=0.0, seed=1)) as url:
        yield url


@contextlib.asynccontextmanager
async def fresh_database(admin_db: asyncpg.Connection, pg_server: str,
                         template_db: str) -> AsyncIterator[str]:
    """A clone of the migrated template for one example, dropped afterwards."""
    name = f"property_{uuid.uuid4().hex[:12]}"
    await admin_db.execute(f'create database "{name}" template "{template_db}"')
    try:
        yield urlunsplit(urlsplit(pg_server)._replace(path="/" + quote(name)))
    finally:
        await admin_db.execute(f'drop database if exists "{name}" with (force)')


def run_settings(database_url: str, sim_url: str) -> Settings:
    return Settings(
        database_url=database_url, simulator_url=sim_url, endpoints=simulator_endpoints(sim_url),
        encryption_key=KEY, encryption_keys_previous=(PREVIOUS,), worker_id=WORKER,
        run_deadline_seconds=45, lease_seconds=120, http_timeout_seconds=10,
        # A post put back to retrying waits longer than the run: each example is one attempt.
        retry_base_seconds=600, retry_max_seconds=3600,
        oauth_clients={"youtube": OAuthClient(client_id="prop", client_secret="prop-secret"),
                       "linkedin": OAuthClient(client_id="prop", client_secret="prop-secret")})


# -- inserting --------------------------------------------------------------------------------


def sealed(token: Token) -> str | None:
    """What the token column holds for this kind of token."""
    if token.kind in SEALERS:
        return SEALERS[token.kind].encrypt(token.plaintext)
    if token.kind == "tampered":
        text = SEALERS["current"].encrypt(token.plaintext)
        return text[:-2] + ("AA" if text[-2:] != "AA" else "BB")
    return {"garbage": token.garbage, "empty": "", "null": None}[token.kind]


def _time(when: When | None) -> str:
    return "null" if when is None else when.sql


async def insert_account(conn: asyncpg.Connection, account: Account) -> str:
    statement = (
        "insert into public.social_accounts (platform, external_id, status, status_reason, "  # noqa: S608 - the times are our own SQL
        "access_token_encrypted, refresh_token_encrypted, token_expires_at, paused_until) "
        f"values ($1, $2, $3, $4, $5, $6, {_time(account.token_expires_at)}, "
        f"{_time(account.paused_until)}) returning id")
    return str(await conn.fetchval(statement, account.platform, account.external_id,
                                   account.status, account.status_reason, sealed(account.token),
                                   sealed(account.refresh)))


async def insert_post(conn: asyncpg.Connection, post: Post, account_id: str | None,
                      now: datetime) -> int:
    local = ("null" if post.scheduled_local is None
             else local_literal(post.scheduled_local, post.scheduled_timezone, now))
    statement = (
        "insert into public.created_content (account_id, platform, post_type, content, title, "  # noqa: S608 - the times are our own SQL
        "link_url, media_urls, platform_options, scheduled_timezone, priority, attempts, "
        "max_attempts, status, locked_by, last_error, scheduled_at, scheduled_local, "
        "not_before, lease_expires_at, sending_started_at) "
        "values ($1::uuid, $2, $3, $4, $5, $6, $7::text[], $8::jsonb, $9, $10::smallint, "
        f"$11::integer, $12::integer, $13, $14, $15, {_time(post.scheduled_at)}, {local}, "
        f"{_time(post.not_before)}, {_time(post.lease_expires_at)}, "
        f"{_time(post.sending_started_at)}) returning id")
    return int(await conn.fetchval(
        statement, account_id, post.platform, post.post_type, post.content, post.title,
        post.link_url, list(post.media_urls), post.options_json(), post.scheduled_timezone,
        post.priority, post.attempts, post.max_attempts, post.status, post.locked_by,
        post.last_error))


def distinct_accounts(posts: tuple[Post, ...]) -> list[Post]:
    """The posts with (platform, external_id) made unique, as the table requires."""
    seen: set[tuple[str, str]] = set()
    out = []
    for n, post in enumerate(posts):
        account = post.account
        if account is not None:
            external = account.external_id
            while (account.platform, external) in seen:
                external = f"{external}~{n}"
            seen.add((account.platform, external))
            post = replace(post, account=replace(account, external_id=external))
        out.append(post)
    return out


@dataclass
class Inserted:
    rows: dict[int, Row]                       # post id -> the row as inserted
    now: datetime                              # the database's now() once all were in


async def insert(conn: asyncpg.Connection, scenario: Scenario, sim_url: str) -> Inserted:
    media_host = httpx.URL(sim_url).netloc.decode()
    clock = await conn.fetchval("select now()")
    posts = [p.with_sim(sim_url) for p in distinct_accounts(scenario.posts)]
    ids = []
    for post in posts:
        account_id = None if post.account is None else await insert_account(conn, post.account)
        ids.append(await insert_post(conn, post, account_id, clock))
    now = await conn.fetchval("select now()")
    return Inserted({i: Row(p, now, media_host) for i, p in zip(ids, posts, strict=True)}, now)


# -- observing ------------------------------------------------------------------------------


@dataclass
class Observed:
    summary: RunSummary
    posts: dict[int, dict[str, Any]]
    records: list[dict[str, Any]]
    privacy: dict[str, str]                    # YouTube video id -> privacyStatus
    stored: str                                # every error and detail the run stored
    logs: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every line the publisher logs (DEBUG included), formatted as it prints them."""
    logger, handler = logging.getLogger("publisher"), _Collect()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


POSTS = """
select c.id, c.status, c.platform, c.last_error, c.god_mode_metadata ->> 'publish_error' as shown,
       c.platform_post_id, c.published_at is not null as has_published_at, c.locked_by,
       c.lease_expires_at > now() as lease_live, c.due_at is null as never_due,
       c.due_at <= now() as due, c.not_before is not null as has_not_before,
       c.updated_at > $1 as touched,
       coalesce(a.paused_until > now(), false) as account_paused,
       exists (select 1 from public.platform_pauses p
                where p.platform = c.platform and p.paused_until > now()) as platform_paused
  from public.created_content c left join public.social_accounts a on a.id = c.account_id
"""
STORED = """
select coalesce(string_agg(t, E'\\n'), '') from (
  select last_error as t from public.created_content
  union all select god_mode_metadata::text from public.created_content
  union all select publish_state::text from public.created_content
  union all select error from public.publish_attempts
  union all select detail::text from public.publish_attempts
  union all select status_reason from public.social_accounts
  union all select summary::text from public.publisher_runs) x
"""


async def observe(conn: asyncpg.Connection, sim_url: str, inserted: Inserted,
                  summary: RunSummary, logs: list[str]) -> Observed:
    posts = {int(r["id"]): dict(r) for r in await conn.fetch(POSTS, inserted.now)}
    async with httpx.AsyncClient(base_url=sim_url, timeout=30) as client:
        records = (await client.get("/_sim/posts")).json()
        videos = [r["post_id"] for r in records if r["platform"] == "youtube"]
        privacy: dict[str, str] = {}
        if videos:
            answer = await client.get("/youtube/v3/videos", params={
                "id": ",".join(videos), "part": "status"},
                headers={"Authorization": "Bearer property-check-token-x"})
            privacy = {v["id"]: v["status"]["privacyStatus"] for v in answer.json()["items"]}
    return Observed(summary, posts, records, privacy, str(await conn.fetchval(STORED)), logs)


# -- checking --------------------------------------------------------------------------------


_FAILURES: dict[str, type[AssertionError]] = {}


def failure(kind: str) -> type[AssertionError]:
    """One AssertionError subclass per kind of failure: hypothesis tells them apart."""
    cls = _FAILURES.get(kind)
    if cls is None:
        name = "Broken_" + re.sub(r"\W+", "_", kind)
        cls = _FAILURES[kind] = type(name, (AssertionError,), {})
    return cls


def raise_first(problems: list[tuple[str, str]]) -> NoReturn:
    """The first problem, as its own kind of failure; the message lists them all."""
    kind = problems[0][0]
    listing = "\n".join(f"  [{k}] {message}" for k, message in problems)
    raise failure(kind)(f"{kind}\nall problems in this example:\n{listing}")


def account_key(post: Post) -> str | None:
    """The account name the simulator records a post under."""
    account = post.account
    if account is None:
        return None
    if post.platform == "youtube":  # the channel comes from the token, not the row
        return channel_of(account.token.plaintext) if account.token.usable else None
    return account.external_id


def check_run(seen: Observed) -> list[tuple[str, str]]:
    s = seen.summary
    problems = []
    if s.database_failed or s.unwritten or s.lost_claims:
        problems.append(("run-could-not-work", f"database_failed={s.database_failed} "
                         f"unwritten={s.unwritten} lost_claims={s.lost_claims} "
                         f"stopped_because={s.stopped_because!r}"))
    if s.stopped_because == "deadline":
        problems.append(("run-hit-its-deadline", "a few posts took the whole run"))
    return problems


def check_valid(inserted: Inserted, seen: Observed) -> list[tuple[str, str]]:
    problems = []
    for post_id, row in inserted.rows.items():
        post = row.post
        if not post.valid:
            continue
        got = seen.posts[post_id]
        mine = [r for r in seen.records
                if r["platform"] == post.platform and r["account"] == account_key(post)]
        if got["status"] != "published":
            problems.append((f"valid-post-not-published:{post.platform}",
                             f"post {post_id} ({post.platform} {post.post_type}) is "
                             f"{got['status']}: {got['last_error']!r}"))
        if len(mine) != 1:
            problems.append(("valid-post-not-at-simulator-exactly-once",
                             f"post {post_id}: {len(mine)} simulator records"))
    return problems


def check_simulator(inserted: Inserted, seen: Observed) -> list[tuple[str, str]]:
    """Every record is a published post's (once), or may be one whose outcome is unknown;
    nothing refused went out."""
    problems = []
    by_id: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in seen.records:
        by_id.setdefault((record["platform"], record["post_id"]), []).append(record)
    claimed: set[int] = set()
    for post_id, got in seen.posts.items():
        if got["status"] != "published":
            continue
        found = by_id.get((got["platform"], got["platform_post_id"] or ""), [])
        claimed.update(id(r) for r in found)
        if len(found) != 1 or not got["has_published_at"]:
            problems.append(("published-without-one-simulator-record",
                             f"post {post_id}: {len(found)} records for platform_post_id "
                             f"{got['platform_post_id']!r}"))
    unknown = {(row.post.platform, account_key(row.post)): post_id
               for post_id, row in inserted.rows.items()
               if seen.posts[post_id]["status"] == "needs_review"}
    for record in seen.records:
        if id(record) in claimed or (record["platform"], record["account"]) in unknown:
            continue
        problems.append(("simulator-record-of-no-published-post",
                         f"{record['platform']} account {record['account']!r} post "
                         f"{record['post_id']} message {str(record.get('message'))[:60]!r}"))
    for post_id, row in inserted.rows.items():
        reason = should_be_refused(row)
        if reason is not None and seen.posts[post_id]["status"] == "published":
            rule = reason.split(":", 1)[0]
            problems.append((f"published-although-refused:{rule}", f"post {post_id}: {reason}"))
    return problems


def check_states(inserted: Inserted, seen: Observed) -> list[tuple[str, str]]:
    problems = []
    for post_id, row in inserted.rows.items():
        got = seen.posts[post_id]
        status, where = got["status"], f"post {post_id} ({row.post.platform!r})"
        reason = (got["last_error"] or "").strip()
        if status in ("failed", "needs_review", "expired", "retrying") and not reason:
            problems.append((f"no-reason:{status}", f"{where} is {status} without last_error"))
        if status in ("failed", "needs_review", "expired") and not (got["shown"] or "").strip():
            problems.append((f"no-publish-error:{status}",
                             f"{where}: god_mode_metadata.publish_error is empty"))
        if status == "retrying" and not got["has_not_before"] and row.post.status != "retrying":
            problems.append(("retrying-without-not-before", where))
        waiting = got["account_paused"] or got["platform_paused"]
        released = row.post.status == "publishing" and status == "scheduled"
        # Deferred by this run for a moment (a platform's "try again shortly"): it says why.
        deferred = got["touched"] and got["has_not_before"] and reason
        if status in ("scheduled", "retrying") and (got["never_due"] or got["due"]) \
                and not (waiting or released or deferred):
            problems.append((f"stuck:{status}", f"{where} is due (or never due) and was left "
                             f"{status}: {got['last_error']!r}; inserted as {brief(row.post)}"))
        if status == "publishing" and (got["locked_by"] in (None, WORKER)
                                       or not got["lease_live"]):
            problems.append(("stuck:publishing", f"{where} left publishing, locked_by "
                             f"{got['locked_by']!r}, lease live {got['lease_live']}"))
        expected = expected_end(row)
        # A lapsed claim released this run may wait for the next one (its platform unknown).
        if expected is not None and status not in END_STATES[expected] and not released:
            problems.append((f"wrong-end:{expected}-but-{status}",
                             f"{where}: {should_be_refused(row)}; ended {status} "
                             f"{got['last_error']!r}"))
    return problems


def brief(post: Post) -> str:
    """The columns that decide when a post is due, for a failure message."""
    account = post.account
    return (f"status={post.status} scheduled_at={post.scheduled_at} "
            f"local={post.scheduled_local} tz={post.scheduled_timezone!r} "
            f"not_before={post.not_before} lease={post.lease_expires_at} "
            f"locked_by={post.locked_by!r} attempts={post.attempts}/{post.max_attempts} "
            f"paused_until={account.paused_until if account else None}")


def check_privacy(inserted: Inserted, seen: Observed) -> list[tuple[str, str]]:
    """A video is never more public than asked (missing privacy means public)."""
    problems = []
    for post_id, row in inserted.rows.items():
        got, options = seen.posts[post_id], row.post.options
        options = {} if options is None else options  # JSON null: no options
        if row.post.platform != "youtube" or got["status"] != "published":
            continue
        video = seen.privacy.get(got["platform_post_id"])
        asked = options.get("privacy", "public") if isinstance(options, dict) else None
        if isinstance(options, dict) and options.get("publish_at") is not None:
            asked = options.get("privacy", "private")
        if video != asked:
            problems.append(("youtube-privacy-not-as-asked",
                             f"post {post_id}: options {options!r}, video is {video!r}"))
    return problems


def check_secrets(inserted: Inserted, seen: Observed) -> list[tuple[str, str]]:
    """No token, nor its first dozen characters, in a stored error or a log line."""
    problems = []
    texts = {"stored errors": seen.stored, "logs": "\n".join(seen.logs)}
    for row in inserted.rows.values():
        account = row.post.account
        if account is None:
            continue
        for token in (account.token, account.refresh):
            if len(token.plaintext) < 12:
                continue  # no token drawn for this column
            for where, text in texts.items():
                if token.plaintext[:12] in text:
                    problems.append(("token-in-" + where.replace(" ", "-"),
                                     f"the first characters of a {token.kind} token"))
    return problems


def describe(inserted: Inserted, seen: Observed) -> None:
    """What hypothesis prints beside a failing example: how each post ended, the records."""
    for post_id in inserted.rows:
        got = seen.posts[post_id]
        note(f"post {post_id} ended {got['status']} {got['last_error']!r}")
    note(f"simulator records: {json.dumps(seen.records)[:2000]}")
    note(f"summary: {seen.summary.as_dict()}")


# -- the test -------------------------------------------------------------------------------


@pytest.mark.property
@pytest.mark.timeout(TIMEOUT)
@settings(settings.get_profile(PROFILE))
@given(scenario=scenarios())
@example(scenario=KNOWN_SCHEDULES)
@example(scenario=KNOWN_CONTENT)
@example(scenario=KNOWN_CLAIMS)
async def test_random_rows_never_stop_a_run(scenario: Scenario, pg_server: str,
                                            admin_db: asyncpg.Connection, template_db: str,
                                            sim_url: str) -> None:
    """Random hostile rows beside valid posts, one real run: see the module docstring."""
    # Only session- and module-scoped fixtures (no health check to silence): the database
    # for each example is made here.
    async with fresh_database(admin_db, pg_server, template_db) as url:
        conn = await asyncpg.connect(url, statement_cache_size=0)
        try:
            async with httpx.AsyncClient(base_url=sim_url, timeout=30) as client:
                (await client.post("/_sim/reset")).raise_for_status()
            inserted = await insert(conn, scenario, sim_url)
            for post_id, row in inserted.rows.items():
                note(f"post {post_id}: {'VALID ' if row.post.valid else ''}"
                     f"{row.post.platform!r} {row.post.post_type!r} "
                     f"oracle={should_be_refused(row)!r} expect={expected_end(row)}")
                assert not row.post.valid or should_be_refused(row) is None, (
                    f"the oracle refuses valid post {post_id}: {should_be_refused(row)}")
            with captured_logs() as logs:
                summary = await run_once(run_settings(url, sim_url))
            seen = await observe(conn, sim_url, inserted, summary, logs)
        finally:
            await conn.close()
    describe(inserted, seen)
    problems = (check_run(seen) + check_valid(inserted, seen) + check_simulator(inserted, seen)
                + check_states(inserted, seen) + check_privacy(inserted, seen)
                + check_secrets(inserted, seen))
    if problems:
        raise_first(problems)

"""The "never twice, never lost" scenarios, shared by tests/reliability and scripts/reliability.

Each scenario seeds Facebook posts (unique text each, so the simulator can match every
record to one row), drives real runs against one database and one simulator, then audits
the end state against the simulator's records:

    published      status published, exactly one simulator record, ids match
    needs_review   status needs_review; "sending" must have been stamped (a post never
                   stamped is provably unsent and must go back to the queue instead)
    lost           rows left scheduled / retrying / publishing, and rows whose status
                   contradicts the simulator (at the platform but not recorded as such,
                   or recorded as published but absent)
    duplicates     the simulator's own count of repeated posts, plus repeated texts

A scenario returns a Result; `Result.line()` is the script's one-line report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.settings import OAuthClient, Settings, simulator_endpoints
from publisher.simulator.server import SimulatorProcess
from publisher.simulator.state import SimConfig

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))
POST_MIX = ("text", "link", "photo", "text", "photos")
UNFINISHED = ("scheduled", "retrying", "publishing")
RUNNER_TIMEOUT = 90.0
# Settings a runner must not inherit from the shell that started the tests.
_OWN_VARS = ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "DATABASE_URL", "RENDER",
             "SIMULATOR_URL", "ENCRYPTION_KEY", "ENCRYPTION_KEYS_PREVIOUS", "WORKER_ID",
             "LEASE_SECONDS", "HTTP_TIMEOUT_SECONDS", "RUN_DEADLINE_SECONDS",
             "MAX_CONCURRENCY", "FACEBOOK_CONCURRENCY", "ACCOUNT_CONCURRENCY",
             "RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS", "LOG_FORMAT", "LOG_LEVEL")

# ---------------------------------------------------------------------------- seeding


async def seed_facebook(conn: asyncpg.Connection, *, posts: int, accounts: int,
                        tag: str) -> list[str]:
    """`accounts` Facebook pages and `posts` due posts spread over them (a mix of text,
    link, photo and multi-photo posts, every text unique); returns the account ids."""
    pages = [f"{tag}-page-{i}" for i in range(accounts)]
    # Plain tokens: the simulator refuses any token containing "revoked" or "expired".
    tokens = [CIPHER.encrypt(f"page-token-{i}") for i in range(accounts)]
    rows = await conn.fetch(
        "insert into social_accounts (platform, external_id, display_name, "
        "access_token_encrypted) select 'facebook', e, e, t "
        "from unnest($1::text[], $2::text[]) as s(e, t) returning id", pages, tokens)
    account_ids = [str(r["id"]) for r in rows]
    run = uuid.uuid4().hex[:8]
    await conn.execute(
        """
        insert into created_content (account_id, platform, post_type, content, link_url,
                                     media_urls, scheduled_at)
        select ($1::uuid[])[1 + n % $3], 'facebook', ($4::text[])[1 + n % 5],
               format('%s post %s (%s)', $5::text, n, $6::text),
               case when ($4::text[])[1 + n % 5] = 'link' then 'https://example.com/a/' || n end,
               case ($4::text[])[1 + n % 5]
                 when 'photo' then array['https://media.example.com/' || n || '-0.jpg']
                 when 'photos' then array(select 'https://media.example.com/' || n || '-' || i
                                               || '.jpg' from generate_series(0, 2) i)
                 else '{}'::text[] end,
               now() - interval '1 minute' - make_interval(secs => n % 600)
          from generate_series(0, $2::integer - 1) as n
        """,
        account_ids, posts, accounts, list(POST_MIX), tag, run)
    return account_ids


# ---------------------------------------------------------------------------- simulator


async def sim_get(url: str, path: str) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{url}{path}")
        response.raise_for_status()
        return response.json()


async def sim_configure(url: str, **config: Any) -> None:
    """Apply `config` (SimConfig keys) to the running simulator."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{url}/_sim/config", json=config)
        assert response.status_code == 200, response.text


async def sim_reset(url: str, **config: Any) -> None:
    """Forget every record and counter, then apply `config`."""
    async with httpx.AsyncClient(timeout=30) as client:
        (await client.post(f"{url}/_sim/reset")).raise_for_status()
    if config:
        await sim_configure(url, **config)


@contextlib.asynccontextmanager
async def simulator(config: SimConfig) -> AsyncIterator[str]:
    """The simulator in a child process (its own CPU, like a real platform)."""
    async with SimulatorProcess(config) as sim:
        yield sim.url


# ---------------------------------------------------------------------------- runners


def runner_env(database_url: str, sim_url: str, worker_id: str,
               **settings: float | str) -> dict[str, str]:
    """The environment of one `python -m publisher run`; settings by variable name."""
    env = {k: v for k, v in os.environ.items() if k not in _OWN_VARS}
    env.update(DATABASE_URL=database_url, SIMULATOR_URL=sim_url, ENCRYPTION_KEY=KEY,
               WORKER_ID=worker_id, LOG_FORMAT="json", LOG_LEVEL="INFO")
    env.update({name: str(value) for name, value in settings.items()})
    return env


class Runner:
    """One `python -m publisher run` child process, its log kept in a file."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = dict(env)
        self.worker_id = self.env["WORKER_ID"]
        self.log_path = log_dir / f"{self.worker_id}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.killed = False

    async def start(self) -> Runner:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "publisher", "run", env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=log)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no final flush, claims left behind."""
        assert self.process is not None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.killed = True
        await self.process.wait()

    async def wait(self, seconds: float = RUNNER_TIMEOUT) -> int:
        """The exit code; a runner still going after `seconds` is killed and reported."""
        assert self.process is not None
        try:
            return await asyncio.wait_for(self.process.wait(), seconds)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"runner {self.worker_id} hung for {seconds:g} s:\n"
                                 f"{self.log_tail()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def summaries(self) -> list[dict[str, Any]]:
        """The run_summary log lines this runner wrote."""
        found = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("event") == "run_summary":
                        found.append(entry)
        return found

    def traceback(self) -> str:
        """The uncaught exception's traceback, if the process died of one."""
        text = "\n" + self.log()
        start = text.find("\nTraceback")
        return text[start + 1:] if start >= 0 else ""

    def crashed(self) -> bool:
        """An uncaught exception (a Python traceback outside the JSON log lines)."""
        return any(line.startswith("Traceback") for line in self.log().splitlines())


async def run_all(runners: list[Runner], seconds: float = RUNNER_TIMEOUT) -> list[int]:
    """Starts the runners together; their exit codes once all have finished."""
    for runner in runners:
        await runner.start()
    return list(await asyncio.gather(*(r.wait(seconds) for r in runners)))


# ---------------------------------------------------------------------------- audit


@dataclass
class Audit:
    posts: int = 0
    published: int = 0
    duplicates: int = 0
    lost: int = 0
    needs_review: int = 0
    needs_review_live: int = 0      # needs_review, and the simulator has it
    needs_review_absent: int = 0    # needs_review, and the simulator does not
    reconciled: int = 0             # published after a review found it live
    sim_accepted: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    review_reasons: Counter[str] = field(default_factory=Counter)  # needs_review, by why
    rows: list[dict[str, Any]] = field(default_factory=list)
    at_sim: dict[int, int] = field(default_factory=dict)  # post id -> simulator records

    def ids(self, status: str) -> list[int]:
        return [r["id"] for r in self.rows if r["status"] == status]


def _reason(error: str | None) -> str:
    """An error without its ids and times, to group needs_review posts by cause."""
    text = re.sub(r"\d[\d:.+ -]*", "#", error or "")
    return text.removeprefix("outcome unknown, not retried to avoid a duplicate: ")[:90]


# ---------------------------------------------------------------------------- results


@dataclass
class Result:
    scenario: str
    audit: Audit
    wall_s: float
    notes: dict[str, Any] = field(default_factory=dict)

    HEADER = "scenario posts published duplicates lost needs_review wall_s"

    def line(self) -> str:
        a = self.audit
        return (f"{self.scenario} {a.posts} {a.published} {a.duplicates} {a.lost} "
                f"{a.needs_review} {self.wall_s:.1f}")

    def explain(self) -> str:
        """Everything a failing assertion should show."""
        a = self.audit
        return (f"{self.line()}\nstatuses {dict(a.by_status)}; reconciled {a.reconciled}; "
                f"needs_review live "
                f"{a.needs_review_live} absent {a.needs_review_absent} "
                f"{dict(a.review_reasons)}; notes {self.notes}\n"
                f"violations: {a.violations[:20]}")


async def wait_for_leases(conn: asyncpg.Connection, *, limit: float = 60.0) -> float:
    """Sleeps until every lease still held has run out (the dead workers' claims);
    returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        left = await conn.fetchval(
            "select extract(epoch from max(lease_expires_at) - now())::float8 "
            "from created_content where status = 'publishing'")
        if left is None or left < 0:
            return time.monotonic() - started
        await asyncio.sleep(min(left + 0.1, 2.0))
    raise AssertionError(f"leases still held after {limit:g} s")


async def count(conn: asyncpg.Connection, where: str) -> int:
    return int(await conn.fetchval(f"select count(*) from created_content where {where}"))  # noqa: S608 - fixed fragments


async def clean_runs(database_url: str, sim_url: str, log_dir: Path, *, worker: str,
                     max_runs: int = 4, **settings: float | str) -> list[int]:
    """Runs `publisher run` until nothing is due (each run must exit 0)."""
    codes = []
    conn = await asyncpg.connect(database_url)
    try:
        for i in range(max_runs):
            runner = Runner(runner_env(database_url, sim_url, f"{worker}-{i}", **settings),
                            log_dir)
            codes.append(await (await runner.start()).wait())
            assert codes[-1] == 0, f"clean run exited {codes[-1]}:\n{runner.log_tail()}"
            if not await count(conn, "status in ('scheduled', 'retrying', 'publishing')"):
                break
    finally:
        await conn.close()
    return codes


# ---------------------------------------------------------------------------- scenarios


def _fast(lease: float = 60, http_timeout: float = 10, concurrency: int = 32,
          account: int = 4) -> dict[str, float | str]:
    return {"LEASE_SECONDS": lease, "HTTP_TIMEOUT_SECONDS": http_timeout,
            "FACEBOOK_CONCURRENCY": concurrency, "ACCOUNT_CONCURRENCY": account,
            "MAX_CONCURRENCY": max(64, concurrency), "RUN_DEADLINE_SECONDS": 120,
            "RETRY_BASE_SECONDS": 0.2, "RETRY_MAX_SECONDS": 1}


async def concurrency(database_url: str, *, runners: int = 3, posts: int = 2000,
                      accounts: int = 100, latency: float = 0.01,
                      seed: int = 1) -> Result:
    """Several runner processes at once on one queue: every post out exactly once."""
    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    try:
        await seed_facebook(conn, posts=posts, accounts=accounts, tag="conc")
        with tempfile.TemporaryDirectory(prefix="rel-conc-") as tmp:
            async with simulator(SimConfig(latency=latency, seed=seed)) as sim:
                group = [Runner(runner_env(database_url, sim, f"conc-{i}", **_fast()),
                                Path(tmp)) for i in range(runners)]
                codes = await run_all(group)
                claimed = [sum(s["claimed"] for s in r.summaries()) for r in group]
                crashed = [r.worker_id for r in group if r.crashed()]
                result = Result("concurrency", await audit(conn, sim),
                                time.monotonic() - started,
                                {"exit_codes": codes, "claimed_by_runner": claimed,
                                 "crashed": crashed})
    finally:
        await conn.close()
    return result


# Review at test speed, with Facebook's absent posts requeued (RECONCILE_REQUEUE_FACEBOOK):
# a check every second, back to the queue after 3 absent checks over 3 seconds.
FAST_REQUEUE: dict[str, float | str] = {
    "RECONCILE_EVERY_SECONDS": 1, "RECONCILE_MAX_CHECKS": 10, "RECONCILE_ABSENT_CHECKS": 3,
    "RECONCILE_SETTLE_MINUTES": 0.05, "RECONCILE_REQUEUE_FACEBOOK": "on"}


async def crash(database_url: str, *, runners: int = 3, posts: int = 2000,
                accounts: int = 100, kills: int = 10, latency: float = 0.05,
                lease: float = 10, http_timeout: float = 3, concurrency: int = 8,
                seed: int = 2, review: Mapping[str, float | str] | None = None) -> Result:
    """Runners SIGKILLed at random moments while others keep going; after the leases run
    out, one clean run. Nothing twice; every post published or (sending stamped,
    worker died) in needs_review. With `review` (RECONCILE_* settings such as FAST_REQUEUE),
    clean runs go on until every post in review has had all its checks, so absent posts can
    go back to the queue and out."""
    rng = random.Random(seed)
    started = time.monotonic()
    settings = {**_fast(lease=lease, http_timeout=http_timeout, concurrency=concurrency,
                        account=2), **(review or {})}
    conn = await asyncpg.connect(database_url)
    notes: dict[str, Any] = {"kills": 0, "kills_holding_claims": 0,
                             "kills_holding_stamped": 0}
    try:
        await seed_facebook(conn, posts=posts, accounts=accounts, tag="crash")
        with tempfile.TemporaryDirectory(prefix="rel-crash-") as tmp:
            async with simulator(SimConfig(latency=latency, seed=seed)) as sim:
                names = (f"crash-{n}" for n in range(10**6))

                def fresh() -> Runner:
                    return Runner(runner_env(database_url, sim, next(names), **settings),
                                  Path(tmp))

                live = [await fresh().start() for _ in range(runners)]
                finished: list[Runner] = []
                while notes["kills"] < kills:
                    await asyncio.sleep(rng.uniform(0.3, 1.2))
                    for runner in [r for r in live if not r.running]:
                        live.remove(runner)
                        finished.append(runner)
                    while len(live) < runners:  # keep the pressure on: replace the exited
                        live.append(await fresh().start())
                    # A random moment; the victim, when one can be, a runner holding claims.
                    holders = {r["locked_by"] for r in await conn.fetch(
                        "select distinct locked_by from created_content "
                        "where status = 'publishing'")}
                    victim = rng.choice([r for r in live if r.worker_id in holders] or live)
                    await victim.kill()
                    held = await conn.fetchrow(
                        "select count(*) as held, count(sending_started_at) as stamped "
                        "from created_content where status = 'publishing' and locked_by = $1",
                        victim.worker_id)
                    notes["kills"] += 1
                    notes["kills_holding_claims"] += held["held"] > 0
                    notes["kills_holding_stamped"] += held["stamped"] > 0
                    live.remove(victim)
                    finished.append(victim)
                    live.append(await fresh().start())
                codes = [await r.wait() for r in live]
                notes["exit_codes_of_survivors"] = codes
                notes["crashed"] = [r.worker_id for r in live + finished
                                    if not r.killed and r.crashed()]
                notes["tracebacks"] = {r.worker_id: r.traceback() for r in live + finished
                                       if not r.killed and r.crashed()}
                notes["held_by_the_dead"] = await count(conn, "status = 'publishing'")
                notes["lease_wait_s"] = round(await wait_for_leases(conn), 1)
                notes["clean_runs"] = len(await clean_runs(database_url, sim, Path(tmp),
                                                           worker="crash-clean", **settings))
                if review:
                    notes["clean_runs"] += await settle_reviews(conn, database_url, sim,
                                                                Path(tmp), settings)
                notes["affected"] = await count(conn, "status = 'needs_review' "
                                                      "or review_checks > 0")
                notes["requeued_after_absence"] = await count(
                    conn, "publish_state ->> 'requeued_after_absence' is not null")
                result = Result("crash" if review is None else "crash:requeue",
                                await audit(conn, sim), time.monotonic() - started, notes)
                result.notes["needs_review_unexplained"] = await count(
                    conn, "status = 'needs_review' and last_error not like "
                          "'%lost its lease after sending started%'")
    finally:
        await conn.close()
    return result


async def settle_reviews(conn: asyncpg.Connection, database_url: str, sim_url: str,
                         log_dir: Path, settings: Mapping[str, float | str],
                         max_rounds: int = 40) -> int:
    """Clean runs, RECONCILE_EVERY_SECONDS apart, while a post in review still has checks
    left (each run checks the due ones at its start); returns the runs made."""
    every, checks = float(settings["RECONCILE_EVERY_SECONDS"]), settings["RECONCILE_MAX_CHECKS"]
    runs = 0
    for i in range(max_rounds):
        if not await count(conn, f"status = 'needs_review' and review_checks < {int(checks)}"):
            break
        await asyncio.sleep(every)
        runs += len(await clean_runs(database_url, sim_url, log_dir, worker=f"settle-{i}",
                                     **settings))
    return runs


async def kill_while_sending(database_url: str, *, platform_answers: str,
                             platform: str = "facebook") -> Result:
    """One runner SIGKILLed at a known moment: two posts stamped "sending" with their
    requests at the platform, two claimed but still waiting for a slot (not stamped), two
    not claimed. platform_answers "late": the platform records the post after the worker
    died (latency); "never": the request hangs and is never recorded (timeout_before;
    Facebook only: it would hang an Instagram container or a YouTube session before any
    stamp). `platform`: Facebook text posts, or seed_platform's posts of another."""
    started = time.monotonic()
    if platform_answers == "late":
        config = SimConfig(latency=2.0)
    else:
        config = SimConfig(fault_rate=1.0, faults=("timeout_before",), hang_seconds=60.0)
    settings = {**_fast(lease=10, http_timeout=5, concurrency=2, account=2)}
    conn = await asyncpg.connect(database_url)
    notes: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="rel-kill-") as tmp:
            async with simulator(config) as sim:
                await seed_platform(conn, platform, posts=6, accounts=1,
                                    tag=f"kill-{platform_answers}", sim_url=sim)
                if platform == "facebook":
                    await conn.execute("update created_content set post_type = 'text', "
                                       "link_url = null, media_urls = '{}'")
                runner = await Runner(runner_env(database_url, sim, "kill-victim", **settings),
                                      Path(tmp)).start()
                deadline = time.monotonic() + 30
                while await count(conn, "status = 'publishing' "
                                        "and sending_started_at is not null") < 2:
                    assert runner.running, f"the runner ended early:\n{runner.log_tail()}"
                    assert time.monotonic() < deadline, "no post was stamped sending"
                    await asyncio.sleep(0.05)
                # The stamp is written just before the request: give it time to reach the
                # platform (well inside the 2 s it takes to answer).
                await asyncio.sleep(0.7)
                await runner.kill()
                held = await conn.fetch("select id, sending_started_at is not null as stamped, "
                                        "publish_state from created_content "
                                        "where status = 'publishing'")
                notes["stamped"] = sorted(r["id"] for r in held if r["stamped"])
                # what the dead worker's stamps left on the rows for the review check
                notes["stamped_state"] = {r["id"]: json.loads(r["publish_state"] or "{}")
                                          for r in held if r["stamped"]}
                notes["claimed_not_stamped"] = sorted(r["id"] for r in held if not r["stamped"])
                notes["not_claimed"] = sorted(r["id"] for r in await conn.fetch(
                    "select id from created_content where status = 'scheduled'"))
                if platform_answers == "never":
                    await sim_configure(sim, fault_rate=0.0)  # so the clean run can publish
                notes["lease_wait_s"] = round(await wait_for_leases(conn), 1)
                notes["clean_runs"] = len(await clean_runs(database_url, sim, Path(tmp),
                                                           worker="kill-clean", **settings))
                result = Result(f"kill:{platform_answers}:{platform}",
                                await audit(conn, sim, platform),
                                time.monotonic() - started, notes)
    finally:
        await conn.close()
    return result


TERMINATE = ("select count(pg_terminate_backend(pid)) from pg_stat_activity "
             "where datname = current_database() and pid <> pg_backend_pid()")


async def database_drops(database_url: str, *, runners: int = 2, posts: int = 1000,
                         accounts: int = 50, drops: int = 8, latency: float = 0.02,
                         lease: float = 10, seed: int = 3) -> Result:
    """Every database connection of the runners terminated, again and again, mid-run, while
    runs keep being started (as cron would); then a clean run. Each run finishes or exits
    non-zero (never hangs); nothing is published twice or lost."""
    rng = random.Random(seed)
    started = time.monotonic()
    settings = _fast(lease=lease, http_timeout=3, concurrency=16, account=2)
    conn = await asyncpg.connect(database_url)
    notes: dict[str, Any] = {"drops": 0, "connections_terminated": 0}
    try:
        await seed_facebook(conn, posts=posts, accounts=accounts, tag="dbdrop")
        with tempfile.TemporaryDirectory(prefix="rel-db-") as tmp:
            async with simulator(SimConfig(latency=latency, seed=seed)) as sim:
                names = (f"dbdrop-{n}" for n in range(10**6))

                async def fresh() -> Runner:
                    return await Runner(runner_env(database_url, sim, next(names), **settings),
                                        Path(tmp)).start()

                live = [await fresh() for _ in range(runners)]
                done: list[Runner] = []
                while notes["drops"] < drops:
                    await asyncio.sleep(rng.uniform(0.3, 0.8))
                    notes["connections_terminated"] += await conn.fetchval(TERMINATE)
                    notes["drops"] += 1
                    for runner in [r for r in live if not r.running]:
                        live.remove(runner)
                        done.append(runner)
                        if await count(conn, "status in ('scheduled', 'retrying')"):
                            live.append(await fresh())  # the next cron run
                for runner in live:
                    await runner.wait()
                group = done + live
                codes = [await r.wait() for r in group]
                notes["runs"] = len(group)
                notes["exit_codes"] = dict(sorted(Counter(codes).items()))
                notes["crashed"] = [r.worker_id for r in group if r.crashed()]
                notes["published_before_clean_run"] = await count(conn, "status = 'published'")
                notes["lease_wait_s"] = round(await wait_for_leases(conn), 1)
                notes["clean_runs"] = len(await clean_runs(database_url, sim, Path(tmp),
                                                           worker="dbdrop-clean", **settings))
                result = Result("database", await audit(conn, sim),
                                time.monotonic() - started, notes)
                result.notes["tracebacks"] = {r.worker_id: r.traceback() for r in group
                                              if r.crashed()}
                result.notes["failed_logs"] = {r.worker_id: r.log_tail(3) for r, code
                                               in zip(group, codes, strict=True)
                                               if code and not r.crashed()}
    finally:
        await conn.close()
    return result


FAULT_KINDS = ("transient", "throttle", "rate_limit_429", "token_expired", "permission",
               "bad_input", "timeout_before", "timeout_after", "malformed", "reset")


def fault_settings(database_url: str, sim_url: str, worker: str) -> Settings:
    return Settings(database_url=database_url, simulator_url=sim_url, encryption_key=KEY,
                    endpoints=simulator_endpoints(sim_url), worker_id=worker,
                    run_deadline_seconds=60, lease_seconds=30, http_timeout_seconds=0.5,
                    max_concurrency=64, platform_concurrency={"facebook": 16},
                    account_concurrency=2, retry_base_seconds=0.2, retry_max_seconds=1.0)


async def _next_claimable_in(conn: asyncpg.Connection) -> float | None:
    """Seconds until a waiting post can be claimed (its not_before, its account's pause and
    its platform's pause all past); None when nothing waits."""
    platform_pauses = await conn.fetchval("select to_regclass('public.platform_pauses')")
    paused_platform = ("(select max(p.paused_until) from platform_pauses p "
                       "where p.platform = c.platform)" if platform_pauses else "null")
    value = await conn.fetchval(
        "select extract(epoch from min(greatest(c.due_at, a.paused_until, "  # noqa: S608
        f"{paused_platform}, now())) - now()) "
        "from created_content c left join social_accounts a on a.id = c.account_id "
        "where c.status in ('scheduled', 'retrying')")
    return None if value is None else float(value)


async def faults(database_url: str, kind: str, *, posts: int = 200, accounts: int = 20,
                 rate: float = 0.2, sim_url: str | None = None, fault_runs: int = 2,
                 max_runs: int = 12, seed: int = 4) -> Result:
    """The simulator answers a share of publishing calls with one fault kind for the first
    `fault_runs` runs, then heals; runs repeat (as cron would) until nothing waits.
    `throttle` waits are a minute long (the simulator's regain time): they are recorded,
    then moved to now, as if the minute had passed."""
    config = {"latency": 0.005, "fault_rate": rate, "faults": [kind], "seed": seed,
              "retry_after": 1, "regain_minutes": 1, "hang_seconds": 5.0}
    if sim_url is None:
        async with simulator(SimConfig(**{**config, "faults": (kind,)})) as url:
            return await faults(database_url, kind, posts=posts, accounts=accounts,
                                rate=rate, sim_url=url, fault_runs=fault_runs,
                                max_runs=max_runs, seed=seed)
    await sim_reset(sim_url, **config)
    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    notes: dict[str, Any] = {"runs": 0, "throttle_waits": [], "paused_accounts": 0,
                             "failed_runs": 0}
    try:
        await seed_facebook(conn, posts=posts, accounts=accounts, tag=f"fault-{kind}")
        for run in range(max_runs):
            if run == fault_runs:
                notes["faults_injected"] = (await sim_get(sim_url, "/_sim/stats")
                                            )["faults_injected"].get(kind, 0)
                await sim_configure(sim_url, fault_rate=0.0)  # the platform recovers
            summary = await run_once(fault_settings(database_url, sim_url, f"{kind}-{run}"))
            notes["runs"] += 1
            notes["failed_runs"] += summary.failed_run
            notes.setdefault("published_by_run", []).append(
                summary.by_status.get("published", 0))
            notes["paused_accounts"] = max(notes["paused_accounts"], await conn.fetchval(
                "select count(*) from social_accounts where paused_until > now()"))
            if run == 0:
                notes["first_run"] = await _first_run_facts(conn)
            if kind == "throttle":
                notes["throttle_waits"] += await _skip_throttle_waits(conn)
            wait = await _next_claimable_in(conn)
            if wait is None and run >= fault_runs:
                break
            await asyncio.sleep(min(max(wait or 0.0, 0.0), 5.0) + 0.05)
        notes["deferrals"] = await conn.fetchval(
            "select count(*) from publish_attempts where outcome = 'defer'")
        notes["max_attempts_used"] = await conn.fetchval(
            "select max(attempts) from created_content where status = 'published'")
        notes["reauth_accounts"] = await conn.fetchval(
            "select count(*) from social_accounts where status = 'needs_reauth'")
        unknown = await conn.fetch("select distinct post_id from publish_attempts "
                                   "where outcome = 'unknown'")
        result = Result(f"faults:{kind}", await audit(conn, sim_url),
                        time.monotonic() - started, notes)
        at_sim = result.audit.at_sim
        notes["unknown_at_sim"] = sum(1 for r in unknown if at_sim.get(r["post_id"]))
        notes["unknown_absent"] = sum(1 for r in unknown if not at_sim.get(r["post_id"]))
    finally:
        await conn.close()
    return result


async def _first_run_facts(conn: asyncpg.Connection) -> dict[str, Any]:
    """What the first run left: statuses, and the deferred posts (throttled: back to
    scheduled with a later not_before, no attempt used, the account paused)."""
    statuses = dict(await conn.fetch("select status, count(*) from created_content "
                                     "group by status"))
    deferred = await conn.fetchrow(
        "select count(*) as n, count(*) filter (where attempts > 0) as attempt_used, "
        "count(*) filter (where not_before > now()) as waiting, "
        "max(extract(epoch from not_before - now()))::float8 as max_wait "
        "from created_content where status = 'scheduled' and last_error ilike '%throttled%'")
    paused = await conn.fetchval("select count(*) from social_accounts "
                                 "where paused_until > now()")
    return {"statuses": statuses, "deferred": deferred["n"],
            "deferred_attempt_used": deferred["attempt_used"],
            "deferred_waiting": deferred["waiting"], "paused_accounts": paused,
            "deferred_max_wait_s": round(deferred["max_wait"] or 0.0, 2)}


async def _skip_throttle_waits(conn: asyncpg.Connection) -> list[float]:
    """The throttle waits just recorded (seconds), then the clock moved past them."""
    waits = await conn.fetch(
        "select extract(epoch from not_before - now())::float8 as s from created_content "
        "where status = 'scheduled' and not_before > now()")
    await conn.execute("update created_content set not_before = now() "
                       "where status = 'scheduled' and not_before > now()")
    await conn.execute("update social_accounts set paused_until = null "
                       "where paused_until is not null")
    if await conn.fetchval("select to_regclass('public.platform_pauses')"):
        await conn.execute("update platform_pauses set paused_until = now() "
                           "where paused_until > now()")
    return [round(r["s"], 1) for r in waits]


SCENARIOS: dict[str, Callable[..., Awaitable[Result]]] = {
    "concurrency": concurrency, "crash": crash, "database": database_drops,
}

__all__ = ["CIPHER", "FAST_REQUEUE", "FAULT_KINDS", "KEY", "SCENARIOS", "Audit", "Result",
           "Runner", "SimConfig", "audit", "clean_runs", "concurrency", "count", "crash",
           "database_drops", "fault_settings", "faults", "kill_while_sending", "run_all",
           "runner_env", "seed_facebook", "settle_reviews", "sim_configure", "sim_get",
           "sim_reset", "simulator", "wait_for_leases"]


# ---------------------------------------------------------------------------- every platform
# The dangerous faults (issue 11) on each platform: the post is made and the answer is an
# error or nothing, throttles as Meta sends them, LinkedIn's duplicate answer, tokens that
# expire during a YouTube upload. Seeds, settings and the audit of any one platform.

SIM_OAUTH = OAuthClient(client_id="sim-client", client_secret="sim-secret")
MEDIA_BYTES = {"instagram": 20_000, "youtube": 300_000}
# platform -> (post type, external id, access token, refresh token); {n} the account number
PLATFORM_SEEDS: dict[str, tuple[str, str, str, str | None]] = {
    "instagram": ("image", "1784{n:011d}", "ig-token-{n}", None),
    "linkedin": ("text", "urn:li:organization:{n}", "li-token-{n}", "li-refresh-{n}"),
    # The simulator's channel is the token's text after "token-": both name the channel.
    "youtube": ("video", "UC{n:022d}", "yt-token-UC{n:022d}", "yt-refresh-token-UC{n:022d}"),
}
THROTTLE_KINDS = frozenset({"throttle", "meta_throttle"})


async def seed_platform(conn: asyncpg.Connection, platform: str, *, posts: int, accounts: int,
                        tag: str, sim_url: str) -> list[str]:
    """`accounts` accounts of `platform` and `posts` due posts over them, every text unique
    and free of LinkedIn's markup characters; media on the simulator's host. Facebook is
    seed_facebook's mix."""
    if platform == "facebook":
        return await seed_facebook(conn, posts=posts, accounts=accounts, tag=tag)
    post_type, external, token, refresh = PLATFORM_SEEDS[platform]
    numbers = range(accounts)
    rows = await conn.fetch(
        "insert into social_accounts (platform, external_id, display_name, "
        "access_token_encrypted, refresh_token_encrypted, token_expires_at) "
        "select $1, e, e, t, r, now() + interval '1 day' "
        "from unnest($2::text[], $3::text[], $4::text[]) as s(e, t, r) returning id",
        platform, [external.format(n=n) for n in numbers],
        [CIPHER.encrypt(token.format(n=n)) for n in numbers],
        [CIPHER.encrypt(refresh.format(n=n)) if refresh else None for n in numbers])
    account_ids = [str(r["id"]) for r in rows]
    word, run = re.sub(r"[^A-Za-z0-9 -]", "-", tag), uuid.uuid4().hex[:8]
    kind = "mp4?type=video/mp4" if platform == "youtube" else "jpg?type=image/jpeg"
    media = MEDIA_BYTES.get(platform)
    await conn.execute(
        """
        insert into created_content (account_id, platform, post_type, content, title,
                                     media_urls, scheduled_at)
        select ($1::uuid[])[1 + n % $3], $4::text, $5::text,
               format('%s post %s run %s', $6::text, n, $7::text),
               case when $4::text = 'youtube' then format('Clip %s run %s', n, $7::text) end,
               case when $8::int is null then '{}'::text[]
                    else array[format('%s/_media/%s-%s.%s&size=%s', $9::text, $7::text, n,
                                      $10::text, $8::int)] end,
               now() - interval '1 minute' - make_interval(secs => n % 600)
          from generate_series(0, $2::integer - 1) as n
        """,
        account_ids, posts, accounts, platform, post_type, word, run, media, sim_url, kind)
    return account_ids


def platform_settings(database_url: str, sim_url: str, worker: str, platform: str) -> Settings:
    """fault_settings for one platform: its concurrency, and OAuth apps for refreshes."""
    return dataclasses.replace(
        fault_settings(database_url, sim_url, worker), platform_concurrency={platform: 16},
        oauth_clients={"youtube": SIM_OAUTH, "linkedin": SIM_OAUTH})


def _sim_text(record: dict[str, Any], platform: str) -> str | None:
    """What a simulator record holds of the post's content (YouTube: the description)."""
    return record.get("description") if platform == "youtube" else record["message"]


async def audit(conn: asyncpg.Connection, sim_url: str, platform: str = "facebook") -> Audit:
    """Every post of `platform` against the simulator's records of it (see the module
    docstring), matched by text."""
    rows = [dict(r) for r in await conn.fetch(
        "select c.id, c.status, c.content, c.platform_post_id, c.sending_started_at, "
        "c.attempts, c.last_error, c.post_type, a.external_id as page, a.status as account, "
        "coalesce((to_jsonb(c) ->> 'review_checks')::int, 0) as review_checks "
        "from created_content c left join social_accounts a on a.id = c.account_id "
        "where c.platform = $1 order by c.id", platform)]
    records = await sim_get(sim_url, f"/_sim/posts?platform={platform}")
    stats = await sim_get(sim_url, "/_sim/stats")
    by_text: dict[str | None, list[dict[str, Any]]] = {}
    for record in records:
        by_text.setdefault(_sim_text(record, platform), []).append(record)
    result = Audit(posts=len(rows), sim_accepted=len(records), rows=rows,
                   by_status=Counter(r["status"] for r in rows))
    repeated = sum(len(v) - 1 for v in by_text.values() if len(v) > 1)
    result.duplicates = max(int(stats["duplicates"]), repeated)
    if result.duplicates:
        result.violations.append(f"{result.duplicates} duplicate post(s) at the simulator")
    for row in rows:
        _audit_row(result, row, by_text.get(row["content"], []))
    known = {row["content"] for row in rows}
    strangers = [r for r in records if _sim_text(r, platform) not in known]
    if strangers:
        result.violations.append(f"{len(strangers)} simulator record(s) match no post")
    return result


def _audit_row(result: Audit, row: dict[str, Any], found: list[dict[str, Any]]) -> None:
    """One row against the simulator's records of its text (the rules of audit())."""
    result.at_sim[row["id"]] = len(found)
    status, where = row["status"], f"post {row['id']} ({row['post_type']})"
    if status == "published":
        result.published += 1
        result.reconciled += row["review_checks"] > 0
        if not found:
            result.lost += 1
            result.violations.append(f"{where} is published in the database but the "
                                     "simulator never accepted it")
        elif row["platform_post_id"] not in {r["post_id"] for r in found}:
            result.violations.append(f"{where}: platform_post_id {row['platform_post_id']} "
                                     "is not the simulator's")
    elif status == "needs_review":
        result.needs_review += 1
        result.needs_review_live += bool(found)
        result.needs_review_absent += not found
        result.review_reasons[_reason(row["last_error"])] += 1
        if row["sending_started_at"] is None:
            result.violations.append(f"{where} is in needs_review but sending was never "
                                     "stamped: it was provably unsent")
    else:
        if status in UNFINISHED or found:
            result.lost += 1
        if found:
            result.violations.append(f"{where} is {status} but the simulator accepted it")


async def platform_faults(database_url: str, kind: str, platform: str, *, posts: int = 60,
                          accounts: int = 6, rate: float = 0.3, sim_url: str | None = None,
                          fault_runs: int = 2, max_runs: int = 12, seed: int = 5) -> Result:
    """faults() on one platform: `kind` at `rate` for the first `fault_runs` runs, then the
    platform heals and runs repeat until nothing waits. Notes also count the re-sends the
    simulator refused as duplicates (LinkedIn) and the accounts marked needs_reauth."""
    config = {"latency": 0.005, "fault_rate": rate, "faults": [kind], "seed": seed,
              "retry_after": 1, "regain_minutes": 1, "hang_seconds": 5.0}
    if sim_url is None:
        async with simulator(SimConfig(**{**config, "faults": (kind,)})) as url:
            return await platform_faults(database_url, kind, platform, posts=posts,
                                         accounts=accounts, rate=rate, sim_url=url,
                                         fault_runs=fault_runs, max_runs=max_runs, seed=seed)
    await sim_reset(sim_url, **config)
    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    notes: dict[str, Any] = {"runs": 0, "throttle_waits": [], "paused_accounts": 0,
                             "failed_runs": 0}
    try:
        await seed_platform(conn, platform, posts=posts, accounts=accounts,
                            tag=f"{platform} {kind}", sim_url=sim_url)
        # About faults, not quotas: the app's quota fits its load (as an operator sets the
        # row to the project's granted quota), so no post waits for tomorrow's.
        await conn.execute("update publish_quotas set max_posts = greatest(max_posts, $2) "
                           "where platform = $1", platform, posts * 4)
        for run in range(max_runs):
            if run == fault_runs:
                notes["faults_injected"] = (await sim_get(sim_url, "/_sim/stats")
                                            )["faults_injected"].get(kind, 0)
                await sim_configure(sim_url, fault_rate=0.0)  # the platform recovers
            summary = await run_once(platform_settings(database_url, sim_url,
                                                       f"{platform}-{kind}-{run}", platform))
            notes["runs"] += 1
            notes["failed_runs"] += summary.failed_run
            notes["paused_accounts"] = max(notes["paused_accounts"], await conn.fetchval(
                "select count(*) from social_accounts where paused_until > now()"))
            if run == 0:
                notes["first_run"] = await _first_run_facts(conn)
            if kind in THROTTLE_KINDS:
                notes["throttle_waits"] += await _skip_throttle_waits(conn)
            wait = await _next_claimable_in(conn)
            if wait is None and run >= fault_runs:
                break
            await asyncio.sleep(min(max(wait or 0.0, 0.0), 5.0) + 0.05)
        notes["duplicates_refused"] = (await sim_get(sim_url, "/_sim/stats")
                                       )["duplicates_refused"]
        notes["deferrals"] = await conn.fetchval(
            "select count(*) from publish_attempts where outcome = 'defer'")
        notes["max_attempts_used"] = await conn.fetchval(
            "select max(attempts) from created_content where status = 'published'")
        notes["reauth_accounts"] = await conn.fetchval(
            "select count(*) from social_accounts where status = 'needs_reauth'")
        unknown = await conn.fetch("select distinct post_id from publish_attempts "
                                   "where outcome = 'unknown'")
        result = Result(f"faults:{kind}:{platform}", await audit(conn, sim_url, platform),
                        time.monotonic() - started, notes)
        at_sim = result.audit.at_sim
        notes["unknown_at_sim"] = sum(1 for r in unknown if at_sim.get(r["post_id"]))
        notes["unknown_absent"] = sum(1 for r in unknown if not at_sim.get(r["post_id"]))
    finally:
        await conn.close()
    return result


# kind -> the platforms it is drawn on (each a scenario of its own)
DANGEROUS_FAULTS: dict[str, tuple[str, ...]] = {
    "error_after_create": ("facebook", "instagram", "linkedin", "youtube"),
    "meta_error_after_create": ("facebook", "instagram"),
    "reset_after_create": ("facebook", "instagram", "linkedin", "youtube"),
    "meta_throttle": ("facebook", "instagram"),
    "linkedin_duplicate": ("linkedin",),
    "upload_token_expired": ("youtube",),
}

_LIVE_OR_REVIEW = frozenset({"published", "needs_review"})
DANGEROUS_FINALS: dict[str, frozenset[str]] = {
    # The post exists: published (found live) or left for review, never sent again.
    "error_after_create": _LIVE_OR_REVIEW,
    "meta_error_after_create": _LIVE_OR_REVIEW,
    "reset_after_create": _LIVE_OR_REVIEW,
    # A throttle waits and goes out; LinkedIn's "duplicate of urn:li:share:N" is that post,
    # live; a token that expired during an upload is refreshed and the upload resumed.
    "meta_throttle": frozenset({"published"}),
    "linkedin_duplicate": frozenset({"published"}),
    "upload_token_expired": frozenset({"published"}),
}


def dangerous_problems(result: Result, kind: str) -> list[str]:
    """What a dangerous-fault scenario did wrong beyond the audit's violations: a status the
    fault must not lead to, a live post sent again (refused as a duplicate), a post left for
    review that never went out, an account sent to reconnect."""
    audit, notes = result.audit, result.notes
    found = []
    wrong = {s: n for s, n in audit.by_status.items() if s not in DANGEROUS_FINALS[kind]}
    if wrong:
        found.append(f"posts ended {wrong}; {kind} allows only "
                     f"{sorted(DANGEROUS_FINALS[kind])}")
    if notes.get("duplicates_refused"):
        found.append(f"{notes['duplicates_refused']} re-send(s) of a live post (refused by "
                     "the platform as duplicates)")
    if audit.needs_review_absent:
        found.append(f"{audit.needs_review_absent} post(s) in review that never went out")
    if notes.get("reauth_accounts"):
        found.append(f"{notes['reauth_accounts']} account(s) marked needs_reauth")
    return found


__all__ += [
    "DANGEROUS_FAULTS",
    "DANGEROUS_FINALS",
    "dangerous_problems",
    "platform_faults",
    "platform_settings",
    "seed_platform",
]

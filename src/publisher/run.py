"""One run: housekeeping, then claim / publish / record until nothing is due or the
deadline, then the summary. The long-running worker is the same loop without the exit."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from publisher import schedule
from publisher.batching import PostWriter
from publisher.crypto import TokenCipher
from publisher.errors import ScheduleError, StoreError
from publisher.limits import Limits
from publisher.metrics import NO_METRICS, Metrics
from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms import post_rules
from publisher.platforms.base import BeginSending, PlatformAdapter, PublishContext, publish_masked
from publisher.policy import outcome_row
from publisher.reconcile import REVIEW_BATCH, reconcile_post, settle_review
from publisher.settings import Settings
from publisher.store import Store
from publisher.summary import RunSummary
from publisher.tokens import TokenManager

log = logging.getLogger("publisher.run")

# On shutdown, posts not yet sending go straight back to the queue, attempt refunded.
RELEASED = Outcome.defer("released: the worker stopped before sending", 0.0)

RESOLVE_BATCH = 1000
# A run or worker that lasts resolves local times and runs housekeeping again this often,
# so expiry, released leases and new local-time posts never wait for the next run.
HOUSEKEEPING_EVERY_SECONDS = 30.0
# Written when a post's own schedule write fails: plain text the database always takes.
UNWRITABLE_SCHEDULE = ("cannot schedule the post: what was worked out from scheduled_local "
                       "and scheduled_timezone could not be stored; check both columns")
REFUSED_IN_A_ROW = 3  # posts whose schedule could not be written at all: stop resolving
# Posts per platform per claim. Up to two claims' worth are held, so the next batch is
# claimed while the one before is still being worked through: client and database overlap.
CLAIM_MAX = 1000
IDLE_POLL_SECONDS = 1.0
IN_RUN_TRIES = 3            # a transient error is tried again this soon, then in a later run
SHORT_WAIT_SECONDS = 5.0    # only waits up to this long are worth holding the post for


class Publisher:
    """Publishes due posts through the adapters, under the limits, recording every outcome."""

    def __init__(self, settings: Settings, store: Store, client: httpx.AsyncClient,
                 adapters: Mapping[str, PlatformAdapter], cipher: TokenCipher, *,
                 metrics: Metrics = NO_METRICS) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        self._adapters = dict(adapters)
        self._worker = settings.worker_id
        self._limits = Limits(total=settings.max_concurrency,
                              per_platform=settings.platform_concurrency,
                              per_account=settings.account_concurrency)
        self._tokens = TokenManager(settings, store, client, cipher, adapters)
        self._media_hosts = frozenset(
            {urlsplit(settings.simulator_url).netloc} if settings.simulator_url else ())
        self._writer = PostWriter(store, self._worker,
                                  in_flight=lambda: self._limits.total.in_use)
        self._in_flight: Counter[str] = Counter()
        self._metrics = metrics
        metrics.watch_in_flight(self._in_flight, self._adapters)  # read when scraped
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()
        self._dead_accounts: dict[str, str] = {}      # account id -> reason, for this run
        self._paused_accounts: dict[str, tuple[float, str]] = {}  # id -> (until, reason)
        self._paused_platforms: dict[str, tuple[float, str]] = {}  # app budget spent
        self._config_errors: set[str] = set()  # settings a platform refused, said once
        self.summary = RunSummary(worker_id=self._worker)
        self._stopping = asyncio.Event()
        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(IN_RUN_TRIES - 1),  # after the first try, made outside
            wait=wait_exponential_jitter(multiplier=0.5, max=SHORT_WAIT_SECONDS),
            retry=retry_if_result(self._worth_retrying_now),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            reraise=True)

    def _claim_window(self, platform: str) -> int:
        """How many posts of a platform to hold at once: enough to keep its slots busy."""
        concurrency = self._settings.platform_concurrency.get(platform, 1)
        return max(1, min(2 * concurrency, 2 * self._settings.max_concurrency, 2 * CLAIM_MAX))

    async def run(self, stop: asyncio.Event | None = None, *, forever: bool = False) -> RunSummary:
        stop = stop or asyncio.Event()
        self._stopping = stop
        deadline = time.monotonic() + self._settings.run_deadline_seconds
        await self._housekeeping()
        housekeeping_due = time.monotonic() + HOUSEKEEPING_EVERY_SECONDS
        await self._start_reviews()
        drained: set[str] = set()
        drained_at = time.monotonic()
        try:
            while True:
                if stop.is_set():
                    self.summary.stopped_because = "stop requested"
                    break
                if not forever and time.monotonic() >= deadline:
                    self.summary.stopped_because = "deadline"
                    break
                if time.monotonic() >= housekeeping_due:
                    if not await self._housekeeping_again(reviews=forever):
                        break
                    housekeeping_due = time.monotonic() + HOUSEKEEPING_EVERY_SECONDS
                if forever and drained and time.monotonic() - drained_at > IDLE_POLL_SECONDS:
                    drained.clear()  # look again for newly due posts
                wanted = self._wanted(drained)
                if wanted:
                    try:
                        await self._claim(wanted, drained)
                    except StoreError as exc:
                        # Keep what we hold (in-flight posts finish and are recorded), claim
                        # nothing more: the run ends and says it could not do its work.
                        log.error("claiming failed, stopping this run: %s", exc)
                        self.summary.stopped_because = f"database unavailable: {exc}"
                        self.summary.database_failed = True
                        break
                    drained_at = time.monotonic()
                # A platform paused for the rest of this run counts as drained too.
                paused = {p for p in self._adapters if self._held(self._paused_platforms, p)}
                if not self._tasks and drained | paused >= set(self._adapters) and not forever:
                    self.summary.stopped_because = "nothing due"
                    break
                self._finished.clear()
                timeout = IDLE_POLL_SECONDS
                if not forever:
                    timeout = max(0.0, min(timeout, deadline - time.monotonic()))
                await _wait_any(self._finished, stop, timeout)
        finally:
            await self._drain()
        return self.summary

    def _wanted(self, drained: set[str]) -> dict[str, int]:
        wanted = {}
        for platform in self._adapters:
            if platform in drained or self._held(self._paused_platforms, platform):
                continue
            window = self._claim_window(platform)
            free = window - self._in_flight[platform]
            if free >= max(1, window // 2):
                wanted[platform] = min(free, CLAIM_MAX)
        return wanted

    async def _claim(self, wanted: dict[str, int], drained: set[str]) -> None:
        started = time.perf_counter()
        posts = await self._store.claim(self._worker, wanted, self._settings.lease_seconds)
        self.summary.claimed += len(posts)
        got = Counter(post.platform for post in posts)
        self._metrics.claimed(time.perf_counter() - started, got)
        drained.update(p for p, n in wanted.items() if got[p] < n)
        for post in posts:
            self._in_flight[post.platform] += 1
            task = asyncio.create_task(self._publish_and_record(post))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._finished.set()

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._writer.close()
        self.summary.lost_claims = len(self._writer.lost)
        self.summary.unwritten = len(self._writer.unwritten)

    async def _publish_and_record(self, post: ClaimedPost, *, review: bool = False) -> None:
        sending = False

        async def begin_sending(state: Mapping[str, Any] | None = None) -> bool:
            nonlocal sending
            sending = await self._writer.begin_sending(post.id, post.attempt, state)
            return sending

        try:
            if review:
                outcome: Outcome = await self._publish(post, begin_sending, review=True)
            else:
                outcome = await self._publish(post, begin_sending)
                if self._worth_retrying_now(outcome):
                    await asyncio.sleep(random.uniform(0.25, 0.75))
                    outcome = await self._retry_resuming(post, outcome, begin_sending)
        except Exception as exc:  # an adapter bug or one post's odd data must not lose it
            log.exception("adapter %s crashed on post %s", post.platform, post.id)
            # The type and the field it was reading, never the message (it may quote data).
            field = post_rules.field_of(exc)
            reason = (f"internal error in the {post.platform} adapter: {type(exc).__name__}"
                      + (f" reading {field}" if field else ""))
            if sending or review:  # it may have gone out: never sent again blindly
                outcome = Outcome.unknown(reason)
            elif isinstance(exc, StoreError | httpx.TransportError | OSError):
                outcome = Outcome.retry(f"{reason}; nothing was sent")  # time may fix these
            else:  # the same post would crash the same way on every attempt
                outcome = Outcome.failed(f"{reason}; nothing was sent, and trying again would "
                                         "not help")
        finally:
            if not review:
                self._in_flight[post.platform] -= 1
        if review:
            outcome = settle_review(post, outcome, self._settings.review, datetime.now(UTC))
        self._note_account_state(post, outcome)
        row = outcome_row(post, outcome, retry_base=self._settings.retry_base_seconds,
                          retry_max=self._settings.retry_max_seconds)
        self.summary.count(post.platform, row.status, post.scheduled_at)
        self._metrics.recorded(post.platform, row.outcome, row.status,
                               None if review else post.scheduled_at)
        self._writer.add(row, platform=post.platform)

    async def _retry_resuming(self, post: ClaimedPost, first: Outcome,
                              begin_sending: BeginSending) -> Outcome:
        """The in-run retries, each resuming from the state the tries before it left (a new
        Instagram container, a sent video), as a later run would from the row: never from
        the post's old publish_state, which would prepare and publish it all over again."""
        state = dict(first.state)

        async def resumed() -> Outcome:
            outcome = await self._publish(
                replace(post, publish_state={**post.publish_state, **state}), begin_sending)
            state.update(outcome.state)
            return outcome

        # A copy per post: a tenacity object keeps its loop state per thread, and
        # concurrent posts share this one thread.
        last: Outcome = await self._retrying.copy()(resumed)
        return replace(last, state=state)  # what every try left reaches the row

    async def _start_reviews(self) -> None:
        """Asks the platforms about posts whose outcome was unknown (see reconcile.py)."""
        posts = await self._store.claim_for_review(
            self._worker, sorted(self._adapters), limit=REVIEW_BATCH,
            max_checks=self._settings.review.max_checks,
            every_seconds=self._settings.review.every_seconds,
            lease_seconds=self._settings.lease_seconds)
        for post in posts:
            task = asyncio.create_task(self._publish_and_record(post, review=True))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    async def _publish(self, post: ClaimedPost, begin_sending: BeginSending, *,
                       review: bool = False) -> Outcome:
        adapter = self._adapters.get(post.platform)
        stopped = await publish_problem(post, adapter, self._media_hosts, self._account_problem)
        if stopped is not None:
            return stopped
        assert adapter is not None
        assert post.account is not None
        token = await self._tokens.access_token(post.account)
        if isinstance(token, Outcome):
            return token
        account = post.account
        context = PublishContext(client=self._client, access_token=token,
                                 endpoints=self._settings.endpoints, begin_sending=begin_sending,
                                 media_hosts=self._media_hosts,
                                 renew_token=lambda refused: self._tokens.renew(account,
                                                                                refused))
        if self._stopping.is_set():
            return RELEASED
        async with self._limits.slot(post.platform, post.account.id, post.priority):
            if self._stopping.is_set():
                return RELEASED
            # The account may have been throttled or revoked while this post waited.
            late_problem = self._account_problem(post)
            if late_problem is not None:
                return late_problem
            if review:
                return await reconcile_post(adapter, post, context)
            started = time.perf_counter()
            outcome = await publish_masked(adapter, post, context)
            self._metrics.published(post.platform, time.perf_counter() - started)
            return outcome

    def _worth_retrying_now(self, outcome: Outcome) -> bool:
        """A transient error with a short wait is tried again within this run."""
        return (outcome.kind is OutcomeKind.RETRY
                and (outcome.retry_after or 0.0) <= SHORT_WAIT_SECONDS
                and not self._stopping.is_set())

    def _account_problem(self, post: ClaimedPost) -> Outcome | None:
        problem = account_problem(post, self._dead_accounts)
        if problem is not None or post.account is None:
            return problem
        account = post.account
        for pauses, key, what in ((self._paused_platforms, post.platform, "platform"),
                                  (self._paused_accounts, account.id, "account")):
            held = self._held(pauses, key)
            if held is not None:
                return Outcome.defer(f"{what} throttled: {held[1]}", held[0])
        return None

    @staticmethod
    def _held(pauses: dict[str, tuple[float, str]], key: str) -> tuple[float, str] | None:
        """(seconds left, reason) while a pause lasts."""
        pause = pauses.get(key)
        if pause is None or pause[0] <= time.monotonic():
            return None
        return pause[0] - time.monotonic(), pause[1]

    def _note_account_state(self, post: ClaimedPost, outcome: Outcome) -> None:
        """A revoked or throttled account (or platform) stops the rest of its posts early:
        they are deferred or failed at once instead of each being tried into the wall."""
        if post.account is None or outcome.reason is None:
            return
        setting = outcome.detail.get("config_error")
        if isinstance(setting, str):
            self._config_problem(post.platform, setting, outcome)
        if outcome.kind is OutcomeKind.REAUTH:
            self._dead_accounts[post.account.id] = outcome.reason
        elif outcome.kind is OutcomeKind.DEFER:
            seconds = outcome.retry_after or 0.0
            if outcome.pause_platform and self._extend(self._paused_platforms, post.platform,
                                                       seconds, outcome.reason):
                self._background(self._store.pause_platform(post.platform, seconds,
                                                            outcome.reason))
            if outcome.pause_account and self._extend(self._paused_accounts, post.account.id,
                                                      seconds, outcome.reason):
                self._background(self._store.pause_account(post.account.id, seconds,
                                                           outcome.reason))

    def _config_problem(self, platform: str, setting: str, outcome: Outcome) -> None:
        """A platform refusing our configuration (say, a sunset LINKEDIN_VERSION) is the
        operator's to fix: say so loudly once, and stop sending that platform's posts."""
        if setting in self._config_errors:
            return
        self._config_errors.add(setting)
        self._paused_platforms[platform] = (time.monotonic() + 24 * 3600, outcome.reason or "")
        log.error("configuration problem: %s", outcome.reason, extra={"fields": {
            "event": "config_error", "setting": setting, "platform": platform}})

    @staticmethod
    def _extend(pauses: dict[str, tuple[float, str]], key: str, seconds: float,
                reason: str) -> bool:
        """Records a pause; True when it lasts longer than the one already known."""
        until = time.monotonic() + seconds
        known = pauses.get(key)
        if known is not None and known[0] >= until:
            return False
        pauses[key] = (until, reason)
        return True

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def _housekeeping(self) -> None:
        """Local times first, so a post whose time resolves to long ago is expired before
        any claim can take it; then the one housekeeping statement (expiry, stuck posts,
        lapsed leases)."""
        await self._resolve_local_schedules()
        counts = await self._store.prepare(self._settings.max_publish_delay_hours,
                                           sorted(self._adapters))
        self._count_housekeeping(counts)

    async def _housekeeping_again(self, *, reviews: bool) -> bool:
        """The periodic housekeeping of a long run; False when the database failed (the run
        then ends and says so, as when a claim fails)."""
        try:
            await self._housekeeping()
            if reviews:
                await self._start_reviews()
        except StoreError as exc:
            log.error("housekeeping failed, stopping this run: %s", exc)
            self.summary.stopped_because = f"database unavailable: {exc}"
            self.summary.database_failed = True
            return False
        return True

    def _count_housekeeping(self, counts: Mapping[str, int]) -> None:
        totals = self.summary.housekeeping
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value

    async def _resolve_local_schedules(self) -> None:
        """Posts written as local time + zone get their UTC instant, or fail with a reason
        naming scheduled_local / scheduled_timezone: one post's data never stops the run."""
        seen: set[object] = set()
        while True:
            rows = await self._store.list_unresolved_schedules(RESOLVE_BATCH)
            fresh = [row for row in rows if row["id"] not in seen]
            if not fresh:
                return  # only posts whose write failed came back: stop, don't spin on them
            seen.update(row["id"] for row in fresh)
            if not await self._apply_schedules([self._resolved(row) for row in fresh]):
                return
            if len(rows) < RESOLVE_BATCH:
                return

    @staticmethod
    def _resolved(row: Mapping[str, Any]) -> dict[str, Any]:
        """One post's schedule item: its instant, or why it has none."""
        local, zone_name = row.get("local"), row.get("timezone")
        try:
            instant = schedule.resolve(local, zone_name)
        except ScheduleError as exc:
            reason = str(exc)
        except Exception as exc:  # a bug on one post's data fails that post, not the run
            log.warning("resolving the schedule of post %s failed: %s", row["id"],
                        type(exc).__name__, exc_info=True)
            reason = (f"cannot resolve scheduled_local {schedule.shown(local)} in "
                      f"scheduled_timezone {schedule.shown(zone_name)}: internal error "
                      f"{type(exc).__name__}")
        else:
            return {"id": row["id"], "scheduled_at": instant.isoformat()}
        # Postgres text holds no NUL character; the reasons quote values with repr anyway.
        return {"id": row["id"], "error": reason.replace("\x00", "\\x00")}

    async def _apply_schedules(self, items: list[dict[str, Any]]) -> bool:
        """One statement for the batch; if it fails, one per post, so a post whose write
        the database refuses fails alone instead of holding back every other. False when
        several posts in a row could not be written at all: the database itself is likely
        failing, so resolving stops here and the next statement of the run tells."""
        if len(items) > 1:
            try:
                await self._write_schedules(items)
                return True
            except StoreError as exc:
                log.warning("writing %d resolved schedules failed, writing them one by one: "
                            "%s", len(items), exc)
        refused = 0
        for item in items:
            refused = 0 if await self._write_one_schedule(item) else refused + 1
            if refused >= REFUSED_IN_A_ROW:
                log.error("%d schedule writes in a row failed; resolving stops for now",
                          refused)
                return False
        return True

    async def _write_one_schedule(self, item: dict[str, Any]) -> bool:
        """The post's instant (or reason); failing that, a plain reason, which the database
        always takes unless it refuses the post itself. False when neither was written."""
        for attempt in (item, {"id": item["id"], "error": UNWRITABLE_SCHEDULE}):
            try:
                await self._write_schedules([attempt])
                return True
            except StoreError as exc:
                log.warning("the schedule of post %s could not be written: %s",
                            item["id"], exc)
        return False

    async def _write_schedules(self, items: list[dict[str, Any]]) -> None:
        await self._store.apply_resolved_schedules(
            items, max_delay_hours=self._settings.max_publish_delay_hours)
        failed = sum(1 for item in items if "error" in item)
        self._count_housekeeping({"schedules_resolved": len(items) - failed,
                                  "schedules_failed": failed})


async def publish_problem(post: ClaimedPost, adapter: PlatformAdapter | None,
                          media_hosts: frozenset[str],
                          account_check: Callable[[ClaimedPost], Outcome | None]
                          ) -> Outcome | None:
    """What stops a post before any platform call, in the order a publish checks it (and
    publisher.preflight, a day ahead, with the same checks): what no platform takes
    (unreadable fields, media URLs), then its account (account_check), then the adapter's
    own rules and the media hosts' addresses. None: the post may be sent."""
    if adapter is None:
        return Outcome.failed(f"unknown platform {post.platform[:40]!r}")
    invalid = post_rules.problem(post, media_hosts)
    if invalid is not None:
        return Outcome.failed(invalid)
    problem = account_check(post)
    if problem is not None:
        return problem
    invalid = adapter.validate(post) or await post_rules.address_problem(post, media_hosts)
    return None if invalid is None else Outcome.failed(invalid)


def account_problem(post: ClaimedPost,
                    dead_accounts: Mapping[str, str] | None = None) -> Outcome | None:
    """What is wrong with the post's account as it was read: none, another platform's,
    refused in this run (dead_accounts: id -> reason), or not active."""
    account = post.account
    if account is None:
        return Outcome.failed("the post has no connected account (account_id is empty or "
                              "the account was deleted)")
    if account.platform != post.platform:
        return Outcome.failed(f"the post is for {post.platform} but its account is a "
                              f"{account.platform} account")
    if dead_accounts and account.id in dead_accounts:
        return Outcome.failed(f"account needs re-authorization: {dead_accounts[account.id]}")
    if account.status != "active":
        why = f": {account.status_reason}" if account.status_reason else ""
        return Outcome.failed(f"the account is {account.status}{why}")
    return None


async def _wait_any(event: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

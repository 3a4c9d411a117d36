"""One run: housekeeping, then claim / publish / record until nothing is due or the
deadline, then the summary. The long-running worker is the same loop without the exit."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from publisher import schedule
from publisher.batching import PostWriter
from publisher.crypto import TokenCipher
from publisher.errors import ScheduleError, StoreError
from publisher.limits import Limits
from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PlatformAdapter, PublishContext, publish_masked
from publisher.platforms.media import scheme_problem
from publisher.policy import outcome_row
from publisher.reconcile import (
    REVIEW_BATCH,
    REVIEW_EVERY_SECONDS,
    REVIEW_MAX_CHECKS,
    reconcile_post,
    settled_or_unknown,
)
from publisher.settings import Settings
from publisher.store import Store
from publisher.summary import RunSummary
from publisher.tokens import TokenManager

log = logging.getLogger("publisher.run")

BeginSending = Callable[[], Awaitable[bool]]
# On shutdown, posts not yet sending go straight back to the queue, attempt refunded.
RELEASED = Outcome.defer("released: the worker stopped before sending", 0.0)

RESOLVE_BATCH = 1000
# Posts per platform per claim. Up to two claims' worth are held, so the next batch is
# claimed while the one before is still being worked through: client and database overlap.
CLAIM_MAX = 1000
IDLE_POLL_SECONDS = 1.0
IN_RUN_TRIES = 3            # a transient error is tried again this soon, then in a later run
SHORT_WAIT_SECONDS = 5.0    # only waits up to this long are worth holding the post for


class Publisher:
    """Publishes due posts through the adapters, under the limits, recording every outcome."""

    def __init__(self, settings: Settings, store: Store, client: httpx.AsyncClient,
                 adapters: Mapping[str, PlatformAdapter], cipher: TokenCipher) -> None:
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
        self.summary.housekeeping = await self._store.prepare(
            self._settings.max_publish_delay_hours, sorted(self._adapters))
        await self._resolve_local_schedules()
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
        posts = await self._store.claim(self._worker, wanted, self._settings.lease_seconds)
        self.summary.claimed += len(posts)
        got = Counter(post.platform for post in posts)
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

        async def begin_sending() -> bool:
            nonlocal sending
            sending = await self._writer.begin_sending(post.id, post.attempt)
            return sending

        try:
            if review:
                outcome: Outcome = await self._publish(post, begin_sending, review=True)
            else:
                outcome = await self._publish(post, begin_sending)
                if self._worth_retrying_now(outcome):
                    # A copy per post: a tenacity object keeps its loop state per thread, and
                    # concurrent posts share this one thread.
                    await asyncio.sleep(random.uniform(0.25, 0.75))
                    outcome = await self._retrying.copy()(self._publish, post, begin_sending)
        except Exception as exc:  # an adapter bug must not lose the post
            log.exception("adapter %s crashed on post %s", post.platform, post.id)
            reason = f"internal error in the {post.platform} adapter: {type(exc).__name__}"
            outcome = Outcome.unknown(reason) if sending or review else Outcome.retry(reason)
        finally:
            if not review:
                self._in_flight[post.platform] -= 1
        if review:
            outcome = settled_or_unknown(outcome)
        self._note_account_state(post, outcome)
        row = outcome_row(post, outcome, retry_base=self._settings.retry_base_seconds,
                          retry_max=self._settings.retry_max_seconds)
        self.summary.count(post.platform, row.status)
        self._writer.add(row)

    async def _start_reviews(self) -> None:
        """Asks the platforms about posts whose outcome was unknown (see reconcile.py)."""
        posts = await self._store.claim_for_review(
            self._worker, sorted(self._adapters), limit=REVIEW_BATCH,
            max_checks=REVIEW_MAX_CHECKS, every_seconds=REVIEW_EVERY_SECONDS,
            lease_seconds=self._settings.lease_seconds)
        for post in posts:
            task = asyncio.create_task(self._publish_and_record(post, review=True))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    async def _publish(self, post: ClaimedPost, begin_sending: BeginSending, *,
                       review: bool = False) -> Outcome:
        adapter = self._adapters.get(post.platform)
        if adapter is None:
            return Outcome.failed(f"unknown platform {post.platform!r}")
        problem = self._account_problem(post)
        if problem is not None:
            return problem
        assert post.account is not None
        invalid = scheme_problem(post.media_urls, self._media_hosts) or adapter.validate(post)
        if invalid is not None:
            return Outcome.failed(invalid)
        token = await self._tokens.access_token(post.account)
        if isinstance(token, Outcome):
            return token
        context = PublishContext(client=self._client, access_token=token,
                                 endpoints=self._settings.endpoints, begin_sending=begin_sending,
                                 media_hosts=self._media_hosts)
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
            return await publish_masked(adapter, post, context)

    def _worth_retrying_now(self, outcome: Outcome) -> bool:
        """A transient error with a short wait is tried again within this run."""
        return (outcome.kind is OutcomeKind.RETRY
                and (outcome.retry_after or 0.0) <= SHORT_WAIT_SECONDS
                and not self._stopping.is_set())

    def _account_problem(self, post: ClaimedPost) -> Outcome | None:
        account = post.account
        if account is None:
            return Outcome.failed("the post has no connected account (account_id is empty or "
                                  "the account was deleted)")
        if account.platform != post.platform:
            return Outcome.failed(f"the post is for {post.platform} but its account is a "
                                  f"{account.platform} account")
        if account.id in self._dead_accounts:
            return Outcome.failed(f"account needs re-authorization: "
                                  f"{self._dead_accounts[account.id]}")
        if account.status != "active":
            why = f": {account.status_reason}" if account.status_reason else ""
            return Outcome.failed(f"the account is {account.status}{why}")
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

    async def _resolve_local_schedules(self) -> None:
        """Posts written as local time + zone get their UTC instant (or a clear error)."""
        while True:
            rows = await self._store.list_unresolved_schedules(RESOLVE_BATCH)
            if not rows:
                return
            items = []
            for row in rows:
                try:
                    if row.get("local") is None:
                        raise ScheduleError("the post has neither scheduled_at nor "
                                            "scheduled_local")
                    instant = schedule.resolve(str(row["local"]), row.get("timezone"))
                    items.append({"id": row["id"], "scheduled_at": instant.isoformat()})
                except ScheduleError as exc:
                    items.append({"id": row["id"], "error": str(exc)})
            await self._store.apply_resolved_schedules(items)
            if len(rows) < RESOLVE_BATCH:
                return


async def _wait_any(event: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

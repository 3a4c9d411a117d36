"""Problems found before they are due.

After its publishing work, each run (and `publisher check` on demand) looks ahead at the
posts due within PREFLIGHT_HOURS:

- posts that changed since they were last checked get the validation a publish applies
  (run.publish_problem: the rules for every post, the post's account as stored, the
  adapter's own rules, the media hosts' addresses), without a platform call;
- the accounts of the posts due in the window get their token checked with one cheap call
  (the adapter's check_token: Facebook/Instagram /me, LinkedIn userinfo, Google tokeninfo),
  at most once per account per hour across runs and workers (preflight_accounts stamps the
  account it takes). A token due for a refresh is refreshed first, as a publish would, and
  a refused one is renewed once where the platform allows; an account that is not active
  needs no call: its status is the problem.

What a check finds is written onto the post (god_mode_metadata.preflight: reason and time),
with an event post.preflight_problem for each new problem, by record_preflight; a fixed
problem is cleared. Preflight never holds a claim, a lease or a slot of the run's limits: it
runs after the publishing work, within what is left of the run's deadline, on budgets of
its own (PREFLIGHT_BUDGET posts, PREFLIGHT_TOKEN_CHECKS accounts per run). A check that
cannot tell (a timeout, a throttle) writes nothing: the post or account is asked again later.
Tokens never reach a log, a reason or the output.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx

from publisher import redact
from publisher.crypto import TokenCipher
from publisher.models import Account, ClaimedPost, Outcome, OutcomeKind, PostId
from publisher.platforms import post_rules
from publisher.platforms.base import PlatformAdapter, TokenChecker
from publisher.run import account_problem, publish_problem
from publisher.settings import Settings
from publisher.settings_ops import PreflightSettings
from publisher.store import Store
from publisher.tokens import TokenManager

log = logging.getLogger("publisher.preflight")

TOKEN_EVERY_SECONDS = 3600.0  # an account's token is asked about at most this often
TOKEN_CONCURRENCY = 4         # token checks in flight at once (they are not the run's work)
WORKER_EVERY_SECONDS = 60.0   # `publisher worker` looks ahead this often, between runs,
WORKER_SECONDS = 10.0         # for at most this long (due posts wait for it meanwhile)


class _Unsure(enum.Enum):
    UNSURE = "unsure"         # a check that could not tell: nothing is written


_UNSURE = _Unsure.UNSURE
Verdict = str | None | _Unsure  # the problem, none, or could not tell


@dataclass(frozen=True, kw_only=True, slots=True)
class PostProblem:
    post_id: PostId
    platform: str
    due: datetime | None
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountProblem:
    account_id: str
    platform: str
    posts: int                  # its posts due within the window
    first_due: datetime | None
    reason: str


@dataclass(kw_only=True, slots=True)
class PreflightReport:
    """What one look-ahead did and found."""

    posts_checked: int = 0
    accounts_checked: int = 0
    post_problems: list[PostProblem] = field(default_factory=list)
    account_problems: list[AccountProblem] = field(default_factory=list)
    account_posts: int = 0      # posts an account's problem was written onto (or cleared)
    events: int = 0
    stale: int = 0              # posts edited while being checked: checked again later
    stopped: str | None = None  # why it did less than it might have

    @property
    def problems(self) -> int:
        return len(self.post_problems) + len(self.account_problems)

    def counts(self) -> dict[str, int]:
        """For the run summary (only what is not zero)."""
        counts = {"preflight_posts": self.posts_checked,
                  "preflight_accounts": self.accounts_checked,
                  "preflight_problems": self.problems, "preflight_events": self.events}
        return {key: value for key, value in counts.items() if value}

    def as_dict(self) -> dict[str, Any]:
        return {
            "posts_checked": self.posts_checked, "accounts_checked": self.accounts_checked,
            "problems": [{"post_id": p.post_id, "platform": p.platform,
                          "due": _shown_time(p.due), "reason": p.reason}
                         for p in self.post_problems]
            + [{"account_id": a.account_id, "platform": a.platform, "posts_due": a.posts,
                "first_due": _shown_time(a.first_due), "reason": a.reason}
               for a in self.account_problems],
            "events": self.events, "stale": self.stale, "stopped": self.stopped}


class Preflight:
    """One look-ahead's work: read the candidates, check them, write what was found."""

    def __init__(self, settings: Settings, store: Store, client: httpx.AsyncClient,
                 adapters: Mapping[str, PlatformAdapter], cipher: TokenCipher) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        self._adapters = dict(adapters)
        self._tokens = TokenManager(settings, store, client, cipher, adapters)
        # The same media hosts a publish allows (the simulator's, when one is set).
        self._media_hosts = frozenset(
            {urlsplit(settings.simulator_url).netloc} if settings.simulator_url else ())

    async def run(self, *, deadline: float | None = None, ids: Sequence[str] | None = None,
                  changed_only: bool = True,
                  token_every_seconds: float = TOKEN_EVERY_SECONDS) -> PreflightReport:
        """deadline: time.monotonic() to stop by. ids: those posts (whenever due), else the
        posts due within PREFLIGHT_HOURS (changed since checked, if changed_only)."""
        report = PreflightReport()
        budget = self._settings.preflight
        hours = budget.hours if budget.on else PreflightSettings().hours
        rows = await self._store.preflight_candidates(
            hours, budget.budget, ids=ids, changed_only=changed_only and ids is None)
        posts = await self._check_posts(rows, deadline, report)
        account_ids = None if ids is None else sorted(
            {p.account.id for p, _, _ in posts.values() if p.account is not None})
        tokens = budget.token_checks if ids is None or not budget.token_checks \
            else len(account_ids or ())
        accounts = await self._check_accounts(hours, tokens, token_every_seconds, account_ids,
                                              deadline, report)
        if ids is not None:  # an account's problem reaches the posts asked about
            hours = max([hours, *(_hours_until(p.scheduled_at) + 1 for p, _, _ in posts.values())])
        items = [{"id": p.id, "updated_at": row.get("updated_at"), "problem": problem}
                 for p, row, problem in posts.values()]
        if items or accounts:
            written = await self._store.record_preflight(items, accounts, hours=hours)
            report.stale = len(written.get("stale") or [])
            report.account_posts = int(written.get("account_posts") or 0)
            report.events = int(written.get("events") or 0)
        self._log(report)
        return report

    async def _check_posts(self, rows: list[dict[str, Any]], deadline: float | None,
                           report: PreflightReport
                           ) -> dict[PostId, tuple[ClaimedPost, dict[str, Any], str | None]]:
        checked: dict[PostId, tuple[ClaimedPost, dict[str, Any], str | None]] = {}
        for row in rows:
            left = _left(deadline)
            if left is not None and left <= 0:
                report.stopped = "deadline"
                break
            post = ClaimedPost.from_row(row)
            problem = await self._post_problem(post, left)
            if problem is _UNSURE:
                continue
            checked[post.id] = (post, row, problem)
            report.posts_checked += 1
            if problem is not None:
                report.post_problems.append(PostProblem(
                    post_id=post.id, platform=post.platform,
                    due=_time(row.get("due_at")) or post.scheduled_at, reason=problem))
        return checked

    async def _post_problem(self, post: ClaimedPost, left: float | None) -> Verdict:
        """The reason a publish of the post would fail before any call, None, or _UNSURE."""
        adapter = self._adapters.get(post.platform)
        try:
            outcome = await asyncio.wait_for(
                publish_problem(post, adapter, self._media_hosts, _post_account_problem),
                timeout=left)
        except TimeoutError:
            return _UNSURE
        except Exception as exc:  # as a publish would: the same post crashes the same way
            log.warning("preflight: the %s adapter crashed on post %s", post.platform, post.id,
                        exc_info=True)
            field_name = post_rules.field_of(exc)
            return (f"internal error in the {post.platform} adapter: {type(exc).__name__}"
                    + (f" reading {field_name}" if field_name else ""))
        return None if outcome is None else outcome.reason or outcome.kind.value

    async def _check_accounts(self, hours: float, limit: int, every_seconds: float,
                              account_ids: list[str] | None, deadline: float | None,
                              report: PreflightReport) -> list[dict[str, Any]]:
        """[{"account_id", "problem"}] for each account whose check could tell."""
        left = _left(deadline)
        if limit <= 0 or account_ids == [] or (left is not None and left <= 0):
            return []
        rows = await self._store.preflight_accounts(hours, limit, every_seconds=every_seconds,
                                                    account_ids=account_ids)
        gate = asyncio.Semaphore(TOKEN_CONCURRENCY)

        async def one(row: dict[str, Any]) -> tuple[dict[str, Any], Account, Verdict]:
            account = Account.from_row(row)
            async with gate:
                return row, account, await self._account_problem(account, deadline)

        items = []
        for row, account, problem in await asyncio.gather(*(one(r) for r in rows)):
            if problem is _UNSURE:
                continue
            report.accounts_checked += 1
            items.append({"account_id": account.id, "problem": problem})
            if problem is not None:
                report.account_problems.append(AccountProblem(
                    account_id=account.id, platform=account.platform,
                    posts=int(row.get("posts") or 0), first_due=_time(row.get("first_due")),
                    reason=problem))
        return items

    async def _account_problem(self, account: Account, deadline: float | None) -> Verdict:
        """Why the account's posts would fail on its token, None, or _UNSURE."""
        if account.status != "active":
            why = f": {account.status_reason}" if account.status_reason else ""
            return f"the account is {account.status}{why}"
        adapter = self._adapters.get(account.platform)
        if not hasattr(adapter, "check_token"):
            return _UNSURE  # nothing to ask this platform
        checker: TokenChecker = adapter  # type: ignore[assignment]
        try:
            return await asyncio.wait_for(self._token_problem(checker, account),
                                          timeout=_left(deadline))
        except TimeoutError:
            return _UNSURE
        except Exception as exc:  # one account's check never stops the others
            log.warning("preflight: checking the token of account %s failed: %s", account.id,
                        type(exc).__name__)
            return _UNSURE

    async def _token_problem(self, checker: TokenChecker, account: Account) -> Verdict:
        # A token near its expiry is refreshed first, as a publish would; none other is.
        token = await self._tokens.access_token(account)
        if isinstance(token, Outcome):
            return _verdict(token, stored=True)
        outcome = await self._ask(checker, account, token)
        if (outcome is not None and outcome.kind is OutcomeKind.REAUTH
                and self._tokens.can_refresh(account)):
            # Refused before its stored expiry: renewed once, as a publish does on a 401.
            renewed = await self._tokens.renew(account, token)
            if isinstance(renewed, Outcome):
                return _verdict(renewed, stored=True)
            outcome = await self._ask(checker, account, renewed)
        return None if outcome is None else _verdict(outcome, stored=False)

    async def _ask(self, checker: TokenChecker, account: Account,
                   token: str) -> Outcome | None:
        with redact.guard(token) as secrets:
            outcome = await checker.check_token(self._client, self._settings.endpoints,
                                                account, token)
        return None if outcome is None else redact.mask_outcome(outcome, secrets)

    @staticmethod
    def _log(report: PreflightReport) -> None:
        if not (report.posts_checked or report.accounts_checked or report.stale):
            return  # nothing to look at: no line every minute
        log.info("preflight: %d post(s) and %d account token(s) checked, %d problem(s), "
                 "%d event(s)", report.posts_checked, report.accounts_checked,
                 report.problems, report.events, extra={"fields": {
                     "event": "preflight", "posts_checked": report.posts_checked,
                     "accounts_checked": report.accounts_checked,
                     "problems": report.problems, "events": report.events,
                     "stale": report.stale, "stopped": report.stopped}})


def _post_account_problem(post: ClaimedPost) -> Outcome | None:
    """The publish-time account check, less the account's status: an account that is not
    active is the account check's problem, said once for all its posts."""
    if post.account is not None and post.account.status != "active":
        return None
    return account_problem(post)


def _verdict(outcome: Outcome, *, stored: bool) -> Verdict:
    """A refused token (REAUTH) is a problem; so is a stored token that cannot be used at
    all (FAILED: no token, sealed with an unknown key). Anything else could not tell."""
    kinds = (OutcomeKind.REAUTH, OutcomeKind.FAILED) if stored else (OutcomeKind.REAUTH,)
    if outcome.kind in kinds:
        return outcome.reason or "the platform refused the account's token"
    return _UNSURE


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _hours_until(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return max(0.0, (moment - datetime.now(UTC)).total_seconds() / 3600)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _shown_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


async def check_command(settings: Settings, ids: Sequence[str] | None, *, as_json: bool,
                        out: TextIO) -> int:
    """`publisher check [--post ID ...] [--json]`: preflight now, every candidate in the
    window (changed or not) or the posts named; the problems, and exit 1 when there are."""
    from publisher.app import runtime

    async with runtime(settings) as rt:
        report = await rt.preflight().run(ids=ids, changed_only=False, token_every_seconds=0)
    if as_json:
        out.write(json.dumps(report.as_dict(), default=str) + "\n")
        return 1 if report.problems else 0
    for post in report.post_problems:
        out.write(f"post {post.post_id} ({post.platform}, due {_shown_time(post.due)}): "
                  f"{post.reason}\n")
    for account in report.account_problems:
        due = (f", {account.posts} post(s) due soon, first {_shown_time(account.first_due)}"
               if account.first_due is not None else "")
        out.write(f"account {account.account_id} ({account.platform}{due}): "
                  f"{account.reason}\n")
    said = (f"{report.posts_checked} post(s) and {report.accounts_checked} account token(s) "
            f"checked")
    missing = len(set(ids)) - report.posts_checked if ids is not None else 0
    if missing > 0:
        out.write(f"not checked: {missing} of the posts named (no such post, or not draft, "
                  "scheduled or retrying)\n")
    if report.problems:
        out.write(f"{report.problems} problem(s), {said}; written onto the posts "
                  f"({report.events} new event(s))\n")
        return 1
    if missing > 0:
        return 2
    out.write(f"ok: no problems, {said}\n")
    return 0

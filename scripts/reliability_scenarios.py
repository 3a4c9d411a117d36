"""The reliability scenarios of tests/reliability, at sizes bigger than CI runs them.

    scripts/reliability [--runners 8] [--posts 10000] [--kills 50] [--only crash,faults]

The fault scenarios run each fault kind on Facebook, then each dangerous kind (the post is
made and the answer is an error or nothing, Meta's throttles, LinkedIn's duplicate answer,
a token expiring during a YouTube upload) on every platform it applies to, as
faults:<kind>:<platform>.

Each scenario gets a fresh migrated database (in a throwaway embedded Postgres, or on the
server named by TEST_DATABASE_URL) and its own simulator, and prints one line:

    scenario posts published duplicates lost needs_review wall_s

then, indented, what it checked. Exit status 1 when any scenario broke a rule (a
duplicate, a lost post, a needs_review post that was provably never sent, a runner that
crashed or hung).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reliability"))

import asyncpg
import relkit

from publisher.store.migrations import apply_migrations

FAULT_RATE = 0.2


@asynccontextmanager
async def postgres() -> AsyncIterator[str]:
    """A Postgres server's maintenance URL: TEST_DATABASE_URL, or a temporary embedded one."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    folder = tempfile.mkdtemp(prefix="publisher-reliability-")
    server = await asyncio.to_thread(pgserver.get_server, os.path.join(folder, "pg"),
                                     cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        await asyncio.to_thread(server.cleanup)
        shutil.rmtree(folder, ignore_errors=True)


class Databases:
    """Fresh migrated databases on one server, all dropped at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    async def new(self) -> str:
        name = f"publisher_rel_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(self.server_url)
        try:
            await admin.execute(f'create database "{name}"')
        finally:
            await admin.close()
        self.created.append(name)
        url = urlunsplit(urlsplit(self.server_url)._replace(path="/" + quote(name)))
        await apply_migrations(url)
        return url

    async def drop_all(self) -> None:
        admin = await asyncpg.connect(self.server_url)
        try:
            for name in self.created:
                await admin.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await admin.close()


def broken(result: relkit.Result) -> list[str]:
    """The rules this scenario broke."""
    problems = list(result.audit.violations)
    if result.audit.lost:
        problems.append(f"{result.audit.lost} post(s) lost")
    kind = result.scenario.split(":")[1] if result.scenario.startswith("faults:") else ""
    if kind in relkit.DANGEROUS_FINALS:
        problems += relkit.dangerous_problems(result, kind)
    affected = result.notes.get("affected") or 0
    if result.scenario == "crash:requeue" and result.audit.needs_review > 0.05 * affected:
        problems.append(f"{result.audit.needs_review} of {affected} post(s) that were in "
                        "review are left for a person (the goal is 5 % at most)")
    if result.notes.get("crashed"):
        causes = sorted({trace.strip().splitlines()[-1][:140]
                         for trace in result.notes.get("tracebacks", {}).values() if trace})
        problems.append(f"{len(result.notes['crashed'])} runner(s) crashed: {causes}")
    return problems


async def main(args: argparse.Namespace) -> int:
    only = set(args.only.split(",")) if args.only else None
    plans: list[tuple[str, Callable[[str], Awaitable[relkit.Result]]]] = [
        ("concurrency", lambda url: relkit.concurrency(
            url, runners=args.runners, posts=args.posts, accounts=max(10, args.posts // 20),
            latency=0.01)),
        ("crash", lambda url: relkit.crash(
            url, runners=args.runners, posts=args.posts, accounts=max(10, args.posts // 20),
            kills=args.kills)),
        # The same kills, with absent posts requeued (RECONCILE_REQUEUE_FACEBOOK=on, review
        # at test speed) and review runs until every post in review had all its checks.
        ("crash:requeue", lambda url: relkit.crash(
            url, runners=args.runners, posts=args.posts, accounts=max(10, args.posts // 20),
            kills=args.kills, review=relkit.FAST_REQUEUE)),
        ("database", lambda url: relkit.database_drops(
            url, runners=max(2, args.runners // 2), posts=args.posts // 2,
            accounts=max(10, args.posts // 40), drops=max(8, args.kills // 2))),
    ]
    fault_posts = max(200, args.posts // 10)
    for kind in relkit.FAULT_KINDS:
        plans.append((f"faults:{kind}", lambda url, kind=kind: relkit.faults(
            url, kind, posts=fault_posts, accounts=max(20, fault_posts // 10),
            rate=FAULT_RATE)))
    for kind, platforms in relkit.DANGEROUS_FAULTS.items():
        for platform in platforms:
            plans.append((f"faults:{kind}:{platform}",
                          lambda url, kind=kind, platform=platform: relkit.platform_faults(
                              url, kind, platform, posts=fault_posts,
                              accounts=max(10, fault_posts // 20), rate=FAULT_RATE)))
    failures = 0
    print(relkit.Result.HEADER, flush=True)
    async with postgres() as server:
        databases = Databases(server)
        try:
            for name, plan in plans:
                if only and not any(name == o or name.startswith(f"{o}:") for o in only):
                    continue
                started = time.monotonic()
                try:
                    result = await plan(await databases.new())
                except Exception as exc:  # report it and go on with the other scenarios
                    failures += 1
                    print(f"{name} ERROR {type(exc).__name__}: {exc} "
                          f"({time.monotonic() - started:.1f} s)", flush=True)
                    continue
                print(result.line(), flush=True)
                notes = {k: v for k, v in result.notes.items()
                         if k not in ("tracebacks", "failed_logs", "throttle_waits")}
                print(f"    needs_review live/absent {result.audit.needs_review_live}/"
                      f"{result.audit.needs_review_absent} "
                      f"(published after review: {result.audit.reconciled}) "
                      f"{dict(result.audit.review_reasons)}; statuses "
                      f"{dict(result.audit.by_status)}; {notes}", flush=True)
                problems = broken(result)
                if problems:
                    failures += 1
                    print(f"    BROKEN: {problems[:10]}", flush=True)
        finally:
            await databases.drop_all()
    return 1 if failures else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runners", type=int, default=8, help="runner processes (default 8)")
    parser.add_argument("--posts", type=int, default=10_000,
                        help="posts for the concurrency and crash scenarios (default 10000)")
    parser.add_argument("--kills", type=int, default=50,
                        help="SIGKILLs in the crash scenario (default 50)")
    parser.add_argument("--only", help="comma-separated scenarios: concurrency, crash, "
                                       "database, faults, faults:<kind> or "
                                       "faults:<kind>:<platform>")
    return parser


if __name__ == "__main__":
    sys.exit(asyncio.run(main(_parser().parse_args())))

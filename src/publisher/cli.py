"""Command line: publisher run | worker | demo | migrate | status | check | doctor |
connect-account | keygen | tokens reseal | review | posts requeue|cancel|retry-failed."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime

from publisher import eventloop
from publisher.errors import ConfigError, PublisherError, StoreError
from publisher.logs import setup_logging
from publisher.models import INSTAGRAM_LOGINS
from publisher.recovery_cli import add_commands as add_recovery_commands
from publisher.settings import PLATFORMS, Settings, database_url_problem

log = logging.getLogger("publisher")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="publisher", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="publish what is due now, then exit (the cron job)")
    run.add_argument("--dry-run", action="store_true",
                     help="claim nothing; print what would be published")

    sub.add_parser("worker", help="publish continuously until SIGTERM (for deployments that "
                                  "outgrow the cron job; run as many replicas as needed)")

    demo = sub.add_parser("demo", help="embedded database + simulator + seeded posts, one run")
    demo.add_argument("--posts", type=int, default=500, help="posts to seed (default 500)")
    demo.add_argument("--accounts", type=int, default=100,
                      help="accounts (users) to spread them over (default 100)")
    demo.add_argument("--latency", type=float, default=0.05,
                      help="simulated seconds per publish call (default 0.05)")
    demo.add_argument("--fault-rate", type=float, default=0.0,
                      help="share of publish calls the simulator fails (default 0)")

    migrate = sub.add_parser("migrate", help="apply supabase/migrations to a database")
    migrate.add_argument("--database-url", type=_postgres_url,
                         help="defaults to DATABASE_URL, else the embedded one")

    status = sub.add_parser("status", help="posts by status and platform, the last run, and "
                                           "KPIs over the last hour and day")
    status.add_argument("--check", action="store_true",
                        help="for monitors: one line per problem and exit 1, or one 'ok: ...' "
                             "line and exit 0 (thresholds: ALERT_* settings)")
    status.add_argument("--json", action="store_true", help="JSON, for machines")

    check = sub.add_parser("check", help="preflight now: the posts due within PREFLIGHT_HOURS "
                                         "(changed or not) or the posts named, and their "
                                         "accounts' tokens; problems are written onto the "
                                         "posts; exit 1 when there are any")
    check.add_argument("--post", action="append", metavar="ID", dest="posts",
                       help="check this post (draft, scheduled or retrying; whenever due); "
                            "repeat for more")
    check.add_argument("--json", action="store_true", help="the report as JSON")

    doctor = sub.add_parser("doctor", help="read-only: what the migrations would change and what "
                                           "the first run would do; exit 1 when something must "
                                           "be fixed first")
    doctor.add_argument("--database-url", type=_postgres_url,
                        help="database to check (default DATABASE_URL; needed with Supabase "
                             "settings)")
    doctor.add_argument("--json", action="store_true", help="the report as JSON")

    connect = sub.add_parser("connect-account",
                             help="store an account with its tokens encrypted; tokens are read "
                                  "from stdin or a prompt, never from the command line")
    connect.add_argument("--platform", required=True, choices=PLATFORMS)
    connect.add_argument("--external-id", required=True,
                         help="page id, Instagram user id, LinkedIn URN or YouTube channel id")
    connect.add_argument("--name", help="display name")
    connect.add_argument("--user-id", help="the product's user (uuid) who owns the account")
    connect.add_argument("--expires-at", type=_instant, help="access token expiry, ISO 8601")
    connect.add_argument("--with-refresh-token", action="store_true",
                         help="also read a refresh token (second line of stdin)")
    connect.add_argument("--instagram-login", choices=INSTAGRAM_LOGINS,
                         help="required for instagram: how the account was connected. "
                              "facebook: Instagram API with Facebook Login (the Page's token, "
                              "not refreshed); instagram: Instagram API with Instagram Login "
                              "(a 60-day token, refreshed before --expires-at, so give it)")

    sub.add_parser("keygen", help="print a new ENCRYPTION_KEY")

    tokens = sub.add_parser("tokens", help="stored tokens (publisher.reseal)")
    reseal = tokens.add_subparsers(dest="tokens_command", required=True).add_parser(
        "reseal", help="re-seal every stored token with ENCRYPTION_KEY (after a rotation), "
                       "optionally importing plaintext tokens; prints counts, never a token; "
                       "exit 1 while a token could not be opened or was skipped")
    reseal.add_argument("--dry-run", action="store_true", help="count; write nothing")
    reseal.add_argument("--batch", type=int, default=500,
                        help="accounts per committed batch (default 500)")
    reseal.add_argument("--import-plaintext-column", metavar="COLUMN",
                        help="a text column of social_accounts holding plaintext access "
                             "tokens, to seal into access_token_encrypted where that is empty")
    reseal.add_argument("--import-refresh-column", metavar="COLUMN",
                        help="the same for refresh tokens (into refresh_token_encrypted)")
    reseal.add_argument("--clear-plaintext", action="store_true",
                        help="null each imported plaintext value in the same transaction")
    add_recovery_commands(sub)  # review, posts requeue | cancel | retry-failed
    return parser


def _postgres_url(text: str) -> str:
    problem = database_url_problem(text.strip())
    if problem:  # argparse exits 2 with this; the URL itself is never shown
        raise argparse.ArgumentTypeError(f"the URL {problem}")
    return text.strip()


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time such as 2027-01-31T12:00:00+00:00: {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        from publisher.crypto import generate_key

        print(generate_key())
        return 0
    if args.command == "doctor":  # before Settings: doctor reports settings errors itself
        from publisher.doctor import doctor_command

        return eventloop.run(doctor_command(None, args.database_url, args.json, sys.stdout))
    try:
        settings = Settings.from_env()
        setup_logging(settings.log_level, settings.log_format)
        eventloop.tune_gc()
        return eventloop.run(_dispatch(args, settings))
    except KeyboardInterrupt:
        return 130
    except (PublisherError, BaseExceptionGroup) as exc:
        error = _publisher_error(exc)
        if error is None:
            raise  # a bug: its traceback is what helps
        print(f"publisher: {' '.join(str(error).split())}", file=sys.stderr)
        return exit_code(error)


def exit_code(error: PublisherError) -> int:
    """1 when the database could not do its part, 2 for settings and usage (ConfigError and
    every other PublisherError that reaches the top)."""
    return 1 if isinstance(error, StoreError) else 2


def _publisher_error(exc: BaseException) -> PublisherError | None:
    """The error to report: exc itself, or from a group (a TaskGroup's) the first
    ConfigError, else the first PublisherError; None when the group holds neither."""
    if isinstance(exc, PublisherError):
        return exc
    if not isinstance(exc, BaseExceptionGroup):
        return None
    found = [e for e in map(_publisher_error, exc.exceptions) if e is not None]
    if len(found) < len(exc.exceptions):
        return None  # something else failed too: let its traceback show
    return next((e for e in found if isinstance(e, ConfigError)), found[0] if found else None)


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        return await _run(settings, dry_run=args.dry_run)
    if args.command == "worker":
        from publisher.app import install_stop_signals, work_forever

        stop = asyncio.Event()
        install_stop_signals(stop)
        await work_forever(settings, stop)
        return 0
    if args.command == "demo":
        from publisher.demo import run_demo

        return await run_demo(settings, posts=args.posts, accounts=args.accounts,
                              latency=args.latency, fault_rate=args.fault_rate)
    if args.command == "migrate":
        return await _migrate(settings, args.database_url)
    if args.command == "status":
        from publisher.status import status_command

        return await status_command(settings, check=args.check, as_json=args.json,
                                    out=sys.stdout)
    if args.command == "check":
        from publisher.preflight import check_command

        return await check_command(settings, args.posts, as_json=args.json, out=sys.stdout)
    if args.command == "connect-account":
        return await _connect(settings, args)
    if args.command == "tokens":
        from publisher.reseal import reseal_command

        return await reseal_command(
            settings, dry_run=args.dry_run, batch=args.batch,
            access_column=args.import_plaintext_column,
            refresh_column=args.import_refresh_column,
            clear_plaintext=args.clear_plaintext, out=sys.stdout)
    if args.command in ("review", "posts"):
        from publisher.recovery_cli import run_command

        return await run_command(settings, args, sys.stdout, sys.stderr)
    raise AssertionError(args.command)


async def _run(settings: Settings, *, dry_run: bool) -> int:
    from publisher.app import install_stop_signals, run_once

    if dry_run:
        from publisher.store import open_store

        store = await open_store(settings)
        try:
            due = await store.list_due(1000)
        finally:
            await store.close()
        for post in due:
            print(json.dumps(post, default=str))
        print(f"{len(due)} post(s) due; nothing was claimed (dry run)", file=sys.stderr)
        return 0
    stop = asyncio.Event()
    install_stop_signals(stop)
    summary = await run_once(settings, stop)
    return 1 if summary.failed_run else 0


async def _migrate(settings: Settings, url: str | None) -> int:
    from publisher.store.migrations import apply_migrations
    from publisher.store.store import database_url

    applied = await apply_migrations(url or await database_url(settings))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'already up to date'}")
    return 0


async def _connect(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.app import load_cipher
    from publisher.store import open_store

    if (args.platform == "instagram") != (args.instagram_login is not None):
        raise ConfigError("--instagram-login facebook|instagram is required with --platform "
                          "instagram, and only there: the two use different hosts and tokens")
    cipher = load_cipher(settings)
    access, refresh = _read_tokens(args.with_refresh_token)
    expires: datetime | None = args.expires_at
    store = await open_store(settings)
    try:
        account_id = await store.connect_account(
            platform=args.platform, external_id=args.external_id, display_name=args.name,
            user_id=args.user_id, access_token_encrypted=cipher.encrypt(access),
            refresh_token_encrypted=cipher.encrypt(refresh) if refresh else None,
            token_expires_at=expires, login_type=args.instagram_login)
    finally:
        await store.close()
    print(account_id)
    return 0


def _read_tokens(with_refresh: bool) -> tuple[str, str | None]:
    if sys.stdin.isatty():
        access = getpass.getpass("access token: ")
        refresh = getpass.getpass("refresh token: ") if with_refresh else None
    else:
        lines = sys.stdin.read().splitlines()
        access = lines[0].strip() if lines else ""
        refresh = lines[1].strip() if with_refresh and len(lines) > 1 else None
    if not access:
        raise PublisherError("no access token given on stdin")
    return access, refresh or None

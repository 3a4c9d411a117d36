"""Command line: publisher run | worker | demo | migrate | status | connect-account | keygen."""

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
from publisher.errors import PublisherError, StoreError
from publisher.logs import setup_logging
from publisher.settings import PLATFORMS, Settings

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
    migrate.add_argument("--database-url", help="defaults to DATABASE_URL, else the embedded one")

    sub.add_parser("status", help="posts by status and platform, and the last run")

    connect = sub.add_parser("connect-account",
                             help="store an account with its tokens encrypted; tokens are read "
                                  "from stdin or a prompt, never from the command line")
    connect.add_argument("--platform", required=True, choices=PLATFORMS)
    connect.add_argument("--external-id", required=True,
                         help="page id, Instagram user id, LinkedIn URN or YouTube channel id")
    connect.add_argument("--name", help="display name")
    connect.add_argument("--user-id", help="the product's user (uuid) who owns the account")
    connect.add_argument("--expires-at", help="access token expiry, ISO 8601")
    connect.add_argument("--with-refresh-token", action="store_true",
                         help="also read a refresh token (second line of stdin)")

    sub.add_parser("keygen", help="print a new ENCRYPTION_KEY")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        from publisher.crypto import generate_key

        print(generate_key())
        return 0
    try:
        settings = Settings.from_env()
        setup_logging(settings.log_level, settings.log_format)
        eventloop.tune_gc()
        return eventloop.run(_dispatch(args, settings))
    except StoreError as exc:  # the database, not the settings: exit 1
        print(f"publisher: {exc}", file=sys.stderr)
        return 1
    except PublisherError as exc:
        print(f"publisher: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


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
        return await _status(settings)
    if args.command == "connect-account":
        return await _connect(settings, args)
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


async def _status(settings: Settings) -> int:
    from publisher.store import open_store

    store = await open_store(settings)
    try:
        print(json.dumps(await store.status(), indent=2, default=str))
    finally:
        await store.close()
    return 0


async def _connect(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.app import load_cipher
    from publisher.store import open_store

    cipher = load_cipher(settings)
    access, refresh = _read_tokens(args.with_refresh_token)
    expires = datetime.fromisoformat(args.expires_at) if args.expires_at else None
    store = await open_store(settings)
    try:
        account_id = await store.connect_account(
            platform=args.platform, external_id=args.external_id, display_name=args.name,
            user_id=args.user_id, access_token_encrypted=cipher.encrypt(access),
            refresh_token_encrypted=cipher.encrypt(refresh) if refresh else None,
            token_expires_at=expires)
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

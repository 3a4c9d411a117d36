"""Review and recovery commands: `publisher review` and `publisher posts requeue | cancel |
retry-failed`.

Each wraps one SQL function of 20261207001000_recovery.sql, so the product's admin screen
(Supabase rpc) and this command line do the same thing, fenced the same way: a post a
worker holds is never touched. Post ids are passed as text and cast in SQL (bigint or
uuid). Exit 0 when every post was handled, 1 when any was refused (unknown, held by a
worker, or in a state the action does not apply to), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from publisher.errors import ConfigError
from publisher.settings import PLATFORMS, Settings

REVIEW_LIMIT = 100
ATTEMPTS_SHOWN = 5          # newest attempt-log rows per post in the text listing
DRY_RUN_IDS = 20            # the SQL function returns this many ids at most
# A requeue from review: needs_review, or a claim whose lease ran out after "sending" and
# that housekeeping has not moved to needs_review yet (the same situation).
REVIEW_STATES = ("needs_review", "publishing")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def add_commands(sub: Any) -> None:
    """Adds `review` and `posts` to the CLI's subparsers."""
    review = sub.add_parser(
        "review", help="posts whose outcome is unknown (needs_review), with their evidence; "
                       "with --published or --not-published, a person's decision")
    review.add_argument("ids", nargs="*", metavar="ID", help="post ids (default: list all "
                                                             "posts in needs_review)")
    decision = review.add_mutually_exclusive_group()
    decision.add_argument("--published", action="store_true",
                          help="the post is live: mark it published")
    decision.add_argument("--not-published", action="store_true",
                          help="the post is not live: back to the queue (due now)")
    review.add_argument("--url", help="with --published: the live post's URL")
    review.add_argument("--platform-post-id", help="with --published: the platform's post id")
    review.add_argument("--platform", choices=PLATFORMS, help="list only this platform")
    review.add_argument("--limit", type=_positive, default=REVIEW_LIMIT,
                        help=f"posts to list (default {REVIEW_LIMIT})")
    _common(review)

    posts = sub.add_parser("posts", help="operator actions on posts (fenced: a post a worker "
                                         "holds is never touched)")
    actions = posts.add_subparsers(dest="posts_command", required=True)
    requeue = actions.add_parser(
        "requeue", help="failed, expired, needs_review, canceled or retrying posts back to "
                        "the queue, due now (or at their time, if still ahead), with a fresh "
                        "budget of attempts")
    requeue.add_argument("ids", nargs="+", metavar="ID")
    _common(requeue)
    cancel = actions.add_parser("cancel", help="cancel posts in any unpublished state")
    cancel.add_argument("ids", nargs="+", metavar="ID")
    _common(cancel)
    retry = actions.add_parser(
        "retry-failed", help="requeue failed posts whose error contains TEXT and that failed "
                             "since T, after the cause was fixed")
    retry.add_argument("--reason", required=True, metavar="TEXT",
                       help="text last_error contains (case-insensitive, taken literally)")
    retry.add_argument("--since", required=True, type=_since, metavar="T",
                       help="ISO 8601 time (UTC if no offset), or a duration ago: 90m, 6h, 2d")
    retry.add_argument("--platform", choices=PLATFORMS)
    retry.add_argument("--dry-run", action="store_true",
                       help="show how many posts and which ids it would requeue; change nothing")
    _common(retry)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", metavar="WHO", help="who decided, for the attempt log "
                                                    "(default: the login name)")
    parser.add_argument("--note", help="why, for the attempt log")
    parser.add_argument("--json", action="store_true", help="the answer as JSON")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number above 0: {text!r}")
    return value


def _since(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when it has no offset) or a duration before now ('6h')."""
    match = _DURATION.match(text)
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time (2027-01-31T12:00:00+00:00) nor a duration (90m, 6h, 2d): "
            f"{text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def operator_name(given: str | None) -> str | None:
    """Who decided: --by, else the login name; None (logged as 'operator') if neither."""
    if given and given.strip():
        return given.strip()
    try:
        return getpass.getuser() or None
    except (OSError, KeyError):  # no login name in a bare container
        return None


async def run_command(settings: Settings, args: argparse.Namespace, out: TextIO,
                      err: TextIO) -> int:
    """Runs `review` or `posts ...` against the store the settings name."""
    _check_usage(args)
    from publisher.store import open_store

    store = await open_store(settings, pool_size=1)
    try:
        who = operator_name(args.by)
        if args.command == "review":
            if args.published:
                answers = [await store.mark_published(
                    post_id, platform_post_id=args.platform_post_id, platform_url=args.url,
                    operator=who, note=args.note) for post_id in args.ids]
                return report(merge(answers), out, err, as_json=args.json)
            if args.not_published:
                answer = await store.requeue_posts(
                    args.ids, from_states=REVIEW_STATES, operator=who,
                    note=args.note or "a person checked: not published")
                return report(answer, out, err, as_json=args.json)
            listing = await store.list_review_posts(args.ids or None, platform=args.platform,
                                                    limit=args.limit)
            return show_review(listing, out, err, as_json=args.json)
        if args.posts_command == "requeue":
            return report(await store.requeue_posts(args.ids, from_states=None, operator=who,
                                                    note=args.note), out, err,
                          as_json=args.json)
        if args.posts_command == "cancel":
            return report(await store.cancel_posts(args.ids, operator=who, note=args.note),
                          out, err, as_json=args.json)
        answer = await store.retry_failed_posts(reason=args.reason, since=args.since,
                                                platform=args.platform, dry_run=args.dry_run,
                                                operator=who)
        return show_retry(answer, out, err, as_json=args.json)
    finally:
        await store.close()


def _check_usage(args: argparse.Namespace) -> None:
    if args.command != "review":
        if getattr(args, "posts_command", None) == "retry-failed" and not args.reason.strip():
            raise ConfigError("--reason must name some text of the error (it is matched "
                              "literally, case-insensitive)")
        return
    if (args.published or args.not_published) and not args.ids:
        raise ConfigError("--published and --not-published need the post id(s) decided")
    if (args.url or args.platform_post_id) and not args.published:
        raise ConfigError("--url and --platform-post-id go with --published")
    if (args.url or args.platform_post_id) and len(args.ids) != 1:
        raise ConfigError("--url and --platform-post-id name one post: give one id")


def merge(answers: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """One answer from several (mark_published takes one id per call)."""
    return {key: [item for answer in answers for item in answer.get(key) or []]
            for key in ("changed", "unchanged", "refused")}


def report(answer: Mapping[str, Any], out: TextIO, err: TextIO, *, as_json: bool) -> int:
    """Prints what changed (stdout) and each refusal with its reason (stderr); 1 if any
    post was refused."""
    refused = list(answer.get("refused") or [])
    if as_json:
        print(json.dumps(answer, indent=2, default=str), file=out)
    else:
        for item in answer.get("changed") or []:
            print(f"{item['id']}: {item['from']} -> {item['to']}", file=out)
        for item in answer.get("unchanged") or []:
            print(f"{item['id']}: unchanged, {item['reason']}", file=out)
        for item in refused:
            print(f"publisher: post {item['id']} refused: {item['reason']}", file=err)
    return 1 if refused else 0


def show_retry(answer: Mapping[str, Any], out: TextIO, err: TextIO, *, as_json: bool) -> int:
    """retry-failed's answer: how many matched, the first ids, what was requeued."""
    if as_json:
        print(json.dumps(answer, indent=2, default=str), file=out)
        result = answer.get("result") or {}
        return 1 if result.get("refused") else 0
    matched, ids = int(answer.get("matched") or 0), list(answer.get("ids") or [])
    shown = ", ".join(str(i) for i in ids) + (", ..." if matched > len(ids) else "")
    if answer.get("dry_run"):
        print(f"{matched} failed post(s) match; nothing was changed (dry run)"
              + (f": {shown}" if ids else ""), file=out)
        return 0
    print(f"{answer.get('requeued', 0)} of {matched} failed post(s) requeued"
          + (f": {shown}" if ids else ""), file=out)
    result = answer.get("result") or {}
    for item in result.get("refused") or []:  # changed by someone else meanwhile
        print(f"publisher: post {item['id']} refused: {item['reason']}", file=err)
    return 1 if result.get("refused") else 0


def show_review(listing: Mapping[str, Any], out: TextIO, err: TextIO, *,
                as_json: bool) -> int:
    """The posts under review with their evidence; 1 if an id asked for does not exist."""
    posts = [_safe_post(p) for p in listing.get("posts") or []]
    unknown = list(listing.get("unknown") or [])
    if as_json:
        print(json.dumps({**listing, "posts": posts}, indent=2, default=str), file=out)
    else:
        for post in posts:
            print("\n".join(describe(post)), file=out)
            print(file=out)
        print(f"{listing.get('total', 0)} post(s) in needs_review; {len(posts)} shown",
              file=out)
    for post_id in unknown:
        print(f"publisher: post {post_id}: no such post", file=err)
    return 1 if unknown else 0


def describe(post: Mapping[str, Any]) -> list[str]:
    """A post's evidence as lines of text."""
    account = post.get("account") or {}
    who = (f"{account.get('display_name') or '?'} ({account.get('external_id')}, "
           f"{account.get('status')})" if account else "no account")
    lines = [f"post {post['id']} [{post.get('status')}] {post.get('platform')} "
             f"{post.get('post_type')} on {who}"]
    content = (post.get("content") or "").replace("\n", " ")
    lines.append(f"  text: {content[:120]!r}")
    lines.append(f"  scheduled {post.get('scheduled_at')}; sending started "
                 f"{post.get('sending_started_at') or 'never'}; attempt "
                 f"{post.get('attempts')} of {post.get('max_attempts')}")
    lines.append(f"  platform said: {post.get('last_error') or '(nothing recorded)'}")
    state = post.get("publish_state") or {}
    lines.append(f"  reconciliation: checked {post.get('review_checks', 0)} time(s), last "
                 f"{post.get('review_checked_at') or 'never'}"
                 + (f"; publish_state {json.dumps(state, default=str)}" if state else ""))
    if post.get("locked_by"):
        lines.append(f"  held by {post['locked_by']} until {post.get('lease_expires_at')}")
    log_rows = list(post.get("attempt_log") or [])
    if log_rows:
        lines.append("  attempt log (newest last):")
        for row in log_rows[-ATTEMPTS_SHOWN:]:
            note = row.get("error") or json.dumps(row.get("detail") or {}, default=str)
            lines.append(f"    {row.get('recorded_at')} #{row.get('attempt')} "
                         f"{row.get('worker_id')} {row.get('outcome')} -> {row.get('status')}"
                         f"{'' if row.get('applied') else ' (fenced out)'}: {note[:200]}")
    if post.get("status") == "needs_review":
        lines.append(f"  decide: publisher review {post['id']} --published [--url U] | "
                     "--not-published")
    return lines


def _safe_post(post: Mapping[str, Any]) -> dict[str, Any]:
    """The post with the query strings of URLs in its publish_state dropped: a resumable
    upload session's address (YouTube) is enough to write to it."""
    state = post.get("publish_state")
    if not isinstance(state, dict):
        return dict(post)
    return {**post, "publish_state": {k: _without_query(v) for k, v in state.items()}}


def _without_query(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        parts = urlsplit(value)
        if parts.query or parts.fragment:
            return urlunsplit(parts._replace(query="", fragment="")) + "?..."
    return value

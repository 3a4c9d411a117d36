"""What the first run would do with the rows as they stand: publish, expire, fail, wait.

Counted with the run's own rules (prepare_due_posts, claim_due_posts, the schedule
resolver): a post in `scheduled` or `retrying` more than MAX_PUBLISH_DELAY_HOURS late is
expired; one due within that window is published, unless its platform is unknown or it has
no active account of its platform (then it fails); a `scheduled` post with neither
scheduled_at nor scheduled_local fails. Before the backfill of scheduled_at from a product
column (see doctor_checks.backfills) the times are read from that column, so the numbers
are the ones the operator will meet after following the report.
"""

from __future__ import annotations

from datetime import timedelta

from publisher.doctor_checks import Finding, Inspection, fetch_or_none, finding, listing
from publisher.doctor_schema import CLAIMABLE_STATES, Backfill
from publisher.settings import PLATFORMS

SECTION = "first run"


def _schedule_expression(ins: Inspection, fills: list[Backfill]) -> tuple[str | None, str]:
    """(SQL for a post's scheduled instant, what it is read from)."""
    columns = ins.tables["created_content"].columns
    sources = [columns[f.source].ident for f in fills
               if f.target == "scheduled_at" and f.statement]
    if "scheduled_at" in columns:
        if sources:
            return (f"coalesce(c.scheduled_at, c.{sources[0]})",
                    f"scheduled_at (or {sources[0]} where it is still empty)")
        return "c.scheduled_at", "scheduled_at"
    if sources:
        return f"c.{sources[0]}", f"{sources[0]} (as backfilled into scheduled_at)"
    return None, ""


async def first_run_findings(ins: Inspection, fills: list[Backfill]) -> list[Finding]:
    table = ins.tables.get("created_content")
    if table is None:
        return [finding(SECTION, "first_run.empty", "ok", "no posts yet: nothing to publish")]
    if "status" not in table.columns or "platform" not in table.columns:
        return [finding(SECTION, "first_run.unknown", "problem",
                        "created_content has no status or platform column: the first run's "
                        "work cannot be counted", blocking=True)]
    findings = await _unscheduled(ins)
    schedule, source = _schedule_expression(ins, fills)
    if schedule is None:
        findings.append(finding(SECTION, "first_run.unknown", "note",
                                "no column holds a post's scheduled time: the first run's "
                                "work cannot be counted"))
        return findings
    return findings + await _counts(ins, schedule, source)


async def _unscheduled(ins: Inspection) -> list[Finding]:
    """Posts in `scheduled` with no time at all: the run's schedule resolver fails them."""
    columns = ins.tables["created_content"].columns
    if "scheduled_at" not in columns or "scheduled_local" not in columns:
        rows = await fetch_or_none(ins.conn, "select count(*) as n from public.created_content "
                                             "where status = 'scheduled'")
        n = int(rows[0]["n"]) if rows else 0
        if n == 0:
            return []
        return [finding(SECTION, "first_run.unscheduled", "note",
                        f"after migrating, {n} post(s) in 'scheduled' have neither scheduled_at "
                        "nor scheduled_local until you backfill them: a run would fail them "
                        "('the post has neither scheduled_at nor scheduled_local')", rows=n)]
    rows = await fetch_or_none(
        ins.conn, "select count(*) as n from public.created_content where status = 'scheduled' "
                  "and scheduled_at is null and scheduled_local is null")
    n = int(rows[0]["n"]) if rows else 0
    if n == 0:
        return []
    return [finding(SECTION, "first_run.unscheduled", "problem",
                    f"{n} post(s) in 'scheduled' have neither scheduled_at nor scheduled_local: "
                    "the first run fails them for good; backfill them first with the "
                    "statements above",
                    blocking=True, rows=n)]


async def _counts(ins: Inspection, schedule: str, source: str) -> list[Finding]:
    columns = ins.tables["created_content"].columns
    due = f"greatest({schedule}, c.not_before)" if "not_before" in columns else schedule
    if "account_id" in columns and "social_accounts" in ins.tables:
        account_ok = ("exists (select 1 from public.social_accounts a where a.id = c.account_id"
                      " and a.status = 'active' and a.platform = c.platform)")
    else:
        account_ok = "false"  # no account can be linked yet
    rows = await fetch_or_none(ins.conn, f"""
        with posts as (
          select {schedule} as at, {due} as due, c.platform = any($2::text[]) as known,
                 {account_ok} as has_account
            from public.created_content c
           where c.status::text = any($3::text[])
        ), late as (
          select *, at < now() - make_interval(secs => $1 * 3600) as too_late from posts
        )
        select count(*) filter (where too_late) as expire,
               count(*) filter (where not too_late and due <= now() and known) as publish,
               count(*) filter (where not too_late and due <= now() and known
                                and not has_account) as no_account,
               count(*) filter (where not too_late and due <= now() and not known)
                 as unknown_platform,
               count(*) filter (where due > now()) as later,
               max(now() - due) filter (where not too_late and due <= now() and known)
                 as oldest
          from late
        """, ins.max_delay_hours, list(PLATFORMS), list(CLAIMABLE_STATES))  # noqa: S608 - catalog identifiers
    if rows is None:
        return [finding(SECTION, "first_run.unknown", "note",
                        "the posts could not be counted (is created_content readable by the "
                        "connected role?)")]
    r = rows[0]
    return _count_findings(ins, source, int(r["publish"]), int(r["expire"]),
                           int(r["no_account"]), int(r["unknown_platform"]), int(r["later"]),
                           r["oldest"])


def _count_findings(ins: Inspection, source: str, publish: int, expire: int, no_account: int,
                    unknown_platform: int, later: int,
                    oldest: timedelta | None) -> list[Finding]:
    hours = f"{ins.max_delay_hours:g}"
    late = f", the oldest {_ago(oldest)} late" if oldest is not None and publish else ""
    findings = [
        finding(SECTION, "first_run.publish", "note" if publish else "ok",
                f"would publish {publish} post(s) due now (within MAX_PUBLISH_DELAY_HOURS="
                f"{hours}){late}; times read from {source}", count=publish),
        finding(SECTION, "first_run.expire", "note" if expire else "ok",
                f"would expire {expire} post(s) more than {hours} h late", count=expire),
        finding(SECTION, "first_run.later", "ok",
                f"{later} post(s) are scheduled for later", count=later),
    ]
    if publish:
        findings.append(finding(
            SECTION, "first_run.backlog", "note",
            "to expire a backlog instead of publishing it, run the first run with a smaller "
            "MAX_PUBLISH_DELAY_HOURS (e.g. 1)", count=publish))
    if unknown_platform:
        findings.append(finding(
            SECTION, "first_run.unknown_platform", "note",
            f"would fail {unknown_platform} due post(s) whose platform is none of "
            f"{listing(PLATFORMS)}", count=unknown_platform))
    if no_account:
        link = _LINK_BY_OWNER if _can_link_by_owner(ins) else None
        findings.append(finding(
            SECTION, "first_run.no_account", "problem",
            f"{no_account} of the {publish} post(s) due now have no active account of their "
            "platform (account_id -> social_accounts): the first run fails them for good "
            "('the post has no connected account'); connect the accounts (`publisher "
            "connect-account --user-id ...`) and set account_id first"
            + (", e.g. by owner and platform where each owner has one account:" if link
               else ""), blocking=True, sql=(link,) if link else (), count=no_account))
    return findings


# Links posts to their owner's one account of the post's platform.
_LINK_BY_OWNER = (
    "update public.created_content c set account_id = a.id from public.social_accounts a "
    "where c.account_id is null and a.user_id = c.user_id and a.platform = c.platform and "
    "(select count(*) from public.social_accounts o where o.user_id = c.user_id "
    "and o.platform = c.platform) = 1;")


def _can_link_by_owner(ins: Inspection) -> bool:
    posts = ins.tables["created_content"].columns
    accounts = ins.tables["social_accounts"].columns if "social_accounts" in ins.tables else {}
    return ("user_id" in posts and "account_id" in posts and "user_id" in accounts) or (
        "user_id" in posts and not ins.migrated)


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // 1440} days"

"""`publisher status` and `publisher status --check`.

status: posts by status and platform, how many are due, the last run, and the seed's KPIs
over the last hour and the last day (posts per minute, success rate, platform error rate by
platform, expired, and the lateness of published posts as p50 / p95 / max), from
publisher_status and publisher_kpis (20261207000900_status.sql). `--json` prints the same
as one JSON object.

--check: what a monitor or a second cron job calls. publisher_alarms gathers the facts in one
statement; each alarm that fires becomes one line on stdout and the exit code is 1. When all
pass: one line "ok: ..." and exit 0. The thresholds are the ALERT_* settings. A database
that cannot be reached exits 1 as well (publisher.cli), so silence never looks healthy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from publisher.settings import Settings
from publisher.settings_ops import AlertSettings
from publisher.store import Store

KPI_WINDOWS_HOURS = (1.0, 24.0)
REAUTH_NAMED = 3  # accounts named in the needs_reauth line; the rest are counted


async def status_command(settings: Settings, *, check: bool, as_json: bool,
                         out: TextIO) -> int:
    from publisher.store import open_store

    store = await open_store(settings, pool_size=1)
    try:
        if check:
            return await check_command(store, settings.alerts, as_json=as_json, out=out)
        report = await status_report(store)
    finally:
        await store.close()
    out.write(json.dumps(report, indent=2, default=str) + "\n" if as_json
              else format_report(report))
    return 0


async def status_report(store: Store) -> dict[str, Any]:
    """publisher_status's counts and last run, with the KPIs under "kpis"."""
    return {**await store.status(), "kpis": await store.kpis(KPI_WINDOWS_HOURS)}


async def check_command(store: Store, alerts: AlertSettings, *, as_json: bool,
                        out: TextIO) -> int:
    facts = await store.alarms(
        silent_minutes=alerts.silent_minutes, overdue_minutes=alerts.overdue_minutes,
        review_hours=alerts.review_hours, failure_rate_percent=alerts.failure_rate_percent,
        failure_min_posts=alerts.failure_min_posts)
    problems = alarm_lines(facts)
    if as_json:
        out.write(json.dumps({"ok": not problems, "problems": problems, "alarms": facts},
                             default=str) + "\n")
    else:
        out.write("".join(f"{line}\n" for line in problems) if problems
                  else ok_line(facts) + "\n")
    return 1 if problems else 0


# --- the alarms: one line each -----------------------------------------------------------

def alarm_lines(facts: Mapping[str, Any]) -> list[str]:
    """One line per alarm that fires, in a fixed order."""
    lines = []
    for name, describe in _ALARMS:
        alarm = facts.get(name)
        if isinstance(alarm, Mapping) and alarm.get("firing"):
            lines.append(describe(alarm))
    return lines


def _silent(a: Mapping[str, Any]) -> str:
    since = ("no run has ever finished" if a.get("last_run_at") is None
             else f"no run has finished for {_duration(a['minutes'])}")
    return (f"silent: {since} (limit {_n(a['limit_minutes'])}) while {a['waiting']} "
            f"post(s) are due: is the cron job or worker running?")


def _overdue(a: Mapping[str, Any]) -> str:
    return (f"overdue: {a['count']} post(s) still queued more than "
            f"{_n(a['limit_minutes'])} minutes after their due time (the oldest due "
            f"{_duration(a['minutes'])} ago)")


def _review(a: Mapping[str, Any]) -> str:
    return (f"needs_review: {a['count']} post(s) in needs_review for more than "
            f"{_n(a['limit_hours'])} hours (the oldest {_n(a['hours'])} hours): a person must "
            f"check the platform and settle them (publisher review)")


def _reauth(a: Mapping[str, Any]) -> str:
    first = [e for e in a.get("first") or [] if isinstance(e, Mapping)]
    named = ", ".join(f"{e['platform']} {e['id']} ({e['posts']} post(s), next due "
                      f"{e['next_due_at']})" for e in first[:REAUTH_NAMED])
    more = int(a["accounts"]) - min(len(first), REAUTH_NAMED)
    return (f"needs_reauth: {a['accounts']} account(s) must be reconnected and have "
            f"{a['posts']} post(s) due within a day: {named}"
            + (f" and {more} more" if more > 0 else ""))


def _failure_rate(a: Mapping[str, Any]) -> str:
    ended = int(a["published"]) + int(a["failed"]) + int(a["needs_review"])
    return (f"failure_rate: {_n(a['percent'])} % of the {ended} post(s) that ended in the "
            f"last hour did not publish ({a['failed']} failed, {a['needs_review']} "
            f"needs_review; limit {_n(a['limit_percent'])} %)")


_ALARMS: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("silent", _silent), ("overdue", _overdue), ("review", _review), ("reauth", _reauth),
    ("failure_rate", _failure_rate))


def ok_line(facts: Mapping[str, Any]) -> str:
    """The one line printed when no alarm fires: the facts each alarm looked at."""
    silent, rate = facts["silent"], facts["failure_rate"]
    last = ("no run yet" if silent.get("last_run_at") is None
            else f"last run {_n(silent['minutes'])} min ago")
    ended = int(rate["published"]) + int(rate["failed"]) + int(rate["needs_review"])
    failing = "-" if rate.get("percent") is None else f"{_n(rate['percent'])} %"
    return (f"ok: {last}; {facts['overdue']['count']} overdue; {facts['review']['count']} "
            f"needs_review over {_n(facts['review']['limit_hours'])} h; "
            f"{facts['reauth']['accounts']} account(s) needing reauth with posts due; last "
            f"hour {ended} ended, {failing} not published")


# --- the report, for people ---------------------------------------------------------------

def format_report(report: Mapping[str, Any]) -> str:
    parts = [_posts_table(report.get("posts") or []),
             f"due now: {report.get('due_now', 0)}",
             _last_run(report.get("last_run"))]
    windows = (report.get("kpis") or {}).get("windows") or []
    if windows:
        parts.append(_kpi_table(windows))
        parts.append(_platform_table(windows))
    return "\n\n".join(p for p in parts if p) + "\n"


def _posts_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "posts: none"
    platforms = sorted({str(r["platform"]) for r in rows})
    counts = {(str(r["status"]), str(r["platform"])): int(r["count"]) for r in rows}
    statuses = sorted({s for s, _ in counts})
    table = [["posts", *platforms, "all"]]
    for status in statuses:
        row = [counts.get((status, p), 0) for p in platforms]
        table.append([status, *map(str, row), str(sum(row))])
    return _table(table)


def _last_run(run: Any) -> str:
    if not isinstance(run, Mapping):
        return "last run: none yet"
    summary = run.get("summary")
    summary = summary if isinstance(summary, Mapping) else {}
    counts = summary.get("by_status")
    outcomes = (", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                if isinstance(counts, Mapping) and counts else "nothing finished")
    text = (f"last run: #{run.get('id')} by {run.get('worker_id')}, finished "
            f"{run.get('finished_at')} after {_n(summary.get('wall_seconds'))} s: {outcomes}; "
            f"stopped: {summary.get('stopped_because') or '-'}")
    late = summary.get("lateness_seconds")
    if isinstance(late, Mapping) and late.get("count"):
        text += f"; lateness p50 / p95 / max {_lateness(late)}"
    return text


def _kpi_table(windows: Sequence[Mapping[str, Any]]) -> str:
    rows: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("runs", lambda w: str(w["runs"])),
        ("posts per minute (while running)", lambda w: _n(w.get("posts_per_minute"))),
        ("published", lambda w: str(w["published"])),
        ("failed", lambda w: str(w["failed"])),
        ("needs_review", lambda w: str(w["needs_review"])),
        ("expired", lambda w: str(w["expired"])),
        ("success rate", lambda w: _percent(w.get("success_rate"))),
        ("platform error rate", lambda w: _percent(w.get("error_rate"))),
        ("lateness p50 / p95 / max", lambda w: _lateness(w["lateness_seconds"])),
    ]
    header = ["KPIs", *(f"last {_hours(w['hours'])}" for w in windows)]
    return _table([header, *([name, *(cell(w) for w in windows)] for name, cell in rows)])


def _platform_table(windows: Sequence[Mapping[str, Any]]) -> str:
    """Per platform: error rate, success rate and lateness, for each window."""
    platforms = sorted({p for w in windows for p in w.get("platforms") or {}})
    if not platforms:
        return ""
    header = ["by platform"]
    for w in windows:
        span = _hours(w["hours"])
        header += [f"errors {span}", f"success {span}", f"lateness {span}"]
    table = [header]
    for platform in platforms:
        row = [platform]
        for w in windows:
            stats = (w.get("platforms") or {}).get(platform) or {}
            row += [_percent(stats.get("error_rate")), _percent(stats.get("success_rate")),
                    _lateness(stats.get("lateness_seconds") or {})]
        table.append(row)
    return _table(table)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                  for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows)


def _lateness(late: Mapping[str, Any]) -> str:
    if not late.get("count"):
        return "-"
    return f"{_n(late.get('p50'))} / {_n(late.get('p95'))} / {_n(late.get('max'))} s"


def _percent(rate: Any) -> str:
    return "-" if rate is None else f"{_n(round(float(rate) * 100, 1))} %"


def _hours(hours: Any) -> str:
    return f"{_n(hours)} h"


def _duration(minutes: Any) -> str:
    """Minutes up to two hours, then hours."""
    value = float(minutes)
    return f"{_n(value)} minutes" if value < 120 else f"{_n(round(value / 60, 1))} hours"


def _n(value: Any) -> str:
    """A number as people write it: 12, 12.5, 0.25; '-' for none."""
    if value is None:
        return "-"
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.3f}".rstrip("0")

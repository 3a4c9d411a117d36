"""Local wall-clock time + IANA zone -> UTC instant, correct across DST.

The rules (as users expect from a calendar): a time that does not exist because the clocks
sprang forward moves forward by the gap (02:30 on a spring-forward night in New York is
03:30 EDT); a time that happens twice because the clocks fell back is the first occurrence.

Whatever the stored values are (any text, any zone name, a year at either end of the
calendar), resolving them either returns an instant or raises ScheduleError with a reason
that names scheduled_local / scheduled_timezone: one post's data never stops a run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.errors import ScheduleError

SHOWN_CHARS = 60  # how much of a stored value a reason quotes


def shown(value: object) -> str:
    """A stored value as a reason quotes it: repr (so control characters and NUL bytes are
    escaped), cut to a readable length."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return repr(value[:SHOWN_CHARS]) + "..."
    return repr(value)


def zone(name: object) -> ZoneInfo:
    try:
        if not isinstance(name, str):
            raise TypeError(name)
        return ZoneInfo(name)
    # OSError: a name that is a directory of the zone database ('America') or too long
    # for a file name; ValueError: a path, a NUL byte, a file that is not a zone.
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ScheduleError(f"unknown time zone {shown(name)}: use an IANA name such as "
                            "'America/New_York'") from None


def _to_utc(aware: datetime) -> datetime:
    try:
        return aware.astimezone(UTC)
    except (OverflowError, ValueError):
        # Year 1 east of Greenwich, or 9999-12-31 west of it: the instant is outside the
        # calendar (years 1 to 9999) that can be stored.
        raise ScheduleError("its UTC instant falls outside the dates that can be scheduled "
                            "(years 1 to 9999)") from None


def _instant(local: datetime, tz: ZoneInfo) -> datetime:
    # fold=0 is the first occurrence of an ambiguous time; for a nonexistent time it applies
    # the offset in force before the gap, which lands the same distance past the gap.
    return _to_utc(local.replace(tzinfo=tz, fold=0))


def local_to_utc(local: datetime, zone_name: object) -> datetime:
    """The UTC instant of a naive local time in the named zone."""
    if local.tzinfo is not None:
        raise ScheduleError("a local schedule time must not carry its own offset")
    return _instant(local, zone(zone_name))


def is_nonexistent(local: datetime, zone_name: str) -> bool:
    """True when the clocks skip over this local time (a spring-forward gap)."""
    tz = zone(zone_name)
    round_trip = _to_utc(local.replace(tzinfo=tz)).astimezone(tz).replace(tzinfo=None)
    return round_trip != local


def resolve(local_text: object, zone_name: object) -> datetime:
    """Parses the stored local time (ISO text) and resolves it in the zone. Every failure
    is a ScheduleError naming the column at fault."""
    if local_text is None:
        raise ScheduleError("the post has neither scheduled_at nor scheduled_local")
    if zone_name is None or zone_name == "":
        raise ScheduleError("scheduled_local is set but scheduled_timezone is empty")
    text = local_text if isinstance(local_text, str) else str(local_text)
    try:
        # fromisoformat ignores a trailing NUL; no control character belongs in a time
        if not text.isprintable():
            raise ValueError(text)
        local = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(f"scheduled_local {shown(text)} is not a date and time") from None
    if local.tzinfo is not None:
        raise ScheduleError(f"scheduled_local {shown(text)} carries its own offset: it must "
                            "be a wall-clock time, the zone goes in scheduled_timezone")
    try:
        tz = zone(zone_name)
    except ScheduleError as exc:
        raise ScheduleError(f"scheduled_timezone: {exc}") from None
    try:
        return _instant(local, tz)
    except ScheduleError as exc:
        raise ScheduleError(f"scheduled_local {shown(text)} in scheduled_timezone "
                            f"{shown(zone_name)}: {exc}") from None


__all__ = ["is_nonexistent", "local_to_utc", "resolve", "shown", "zone"]

"""Local wall-clock time + IANA zone -> UTC instant, correct across DST.

The rules (as users expect from a calendar): a time that does not exist because the clocks
sprang forward moves forward by the gap (02:30 on a spring-forward night in New York is
03:30 EDT); a time that happens twice because the clocks fell back is the first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.errors import ScheduleError


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"unknown time zone {name!r}: use an IANA name such as "
                            "'America/New_York'") from None


def local_to_utc(local: datetime, zone_name: str) -> datetime:
    """The UTC instant of a naive local time in the named zone."""
    if local.tzinfo is not None:
        raise ScheduleError("a local schedule time must not carry its own offset")
    tz = zone(zone_name)
    # fold=0 is the first occurrence of an ambiguous time; for a nonexistent time it applies
    # the offset in force before the gap, which lands the same distance past the gap.
    instant = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return instant


def is_nonexistent(local: datetime, zone_name: str) -> bool:
    """True when the clocks skip over this local time (a spring-forward gap)."""
    tz = zone(zone_name)
    round_trip = local.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return round_trip != local


def resolve(local_text: str, zone_name: str | None) -> datetime:
    """Parses the stored local time (ISO text) and resolves it in the zone."""
    if not zone_name:
        raise ScheduleError("scheduled_local is set but scheduled_timezone is empty")
    try:
        local = datetime.fromisoformat(local_text)
    except ValueError:
        raise ScheduleError(f"scheduled_local {local_text!r} is not a date and time") from None
    return local_to_utc(local, zone_name)


__all__ = ["is_nonexistent", "local_to_utc", "resolve", "zone"]

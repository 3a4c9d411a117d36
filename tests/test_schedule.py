"""Local wall-clock time + IANA zone -> UTC instant, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.errors import ScheduleError
from publisher.schedule import is_nonexistent, local_to_utc, resolve, zone


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(("local", "zone_name", "expected"), [
    # New York: ordinary winter and summer times
    (datetime(2026, 1, 15, 9, 0), "America/New_York", utc(2026, 1, 15, 14, 0)),
    (datetime(2026, 7, 4, 9, 0), "America/New_York", utc(2026, 7, 4, 13, 0)),
    # spring forward: 02:30 does not exist; it moves forward by the gap to 03:30 EDT
    (datetime(2026, 3, 8, 2, 30), "America/New_York", utc(2026, 3, 8, 7, 30)),
    (datetime(2026, 3, 8, 3, 30), "America/New_York", utc(2026, 3, 8, 7, 30)),
    (datetime(2026, 3, 8, 1, 59), "America/New_York", utc(2026, 3, 8, 6, 59)),
    # fall back: 01:30 happens twice; the first occurrence (EDT) is taken
    (datetime(2026, 11, 1, 1, 30), "America/New_York", utc(2026, 11, 1, 5, 30)),
    (datetime(2026, 11, 1, 2, 30), "America/New_York", utc(2026, 11, 1, 7, 30)),
    # half-hour zone, no DST
    (datetime(2026, 6, 1, 9, 0), "Asia/Kolkata", utc(2026, 6, 1, 3, 30)),
    (datetime(2026, 1, 1, 0, 15), "Asia/Kolkata", utc(2025, 12, 31, 18, 45)),
    # Chatham: +12:45 in winter, +13:45 in summer
    (datetime(2026, 7, 1, 12, 0), "Pacific/Chatham", utc(2026, 6, 30, 23, 15)),
    (datetime(2026, 1, 15, 12, 0), "Pacific/Chatham", utc(2026, 1, 14, 22, 15)),
    # Chatham spring forward (27 Sep 2026, 02:45 -> 03:45): 03:00 becomes 04:00 CHADT
    (datetime(2026, 9, 27, 3, 0), "Pacific/Chatham", utc(2026, 9, 26, 14, 15)),
    # Chatham fall back (5 Apr 2026, 03:45 -> 02:45): 03:00 is first taken at +13:45
    (datetime(2026, 4, 5, 3, 0), "Pacific/Chatham", utc(2026, 4, 4, 13, 15)),
    (datetime(2026, 6, 1, 12, 0), "UTC", utc(2026, 6, 1, 12, 0)),
])
def test_local_to_utc(local: datetime, zone_name: str, expected: datetime) -> None:
    """The local time resolves to the expected instant (DST gaps forward, overlaps first)."""
    instant = local_to_utc(local, zone_name)
    assert instant == expected
    assert instant.utcoffset() == timedelta(0)


def test_spring_forward_lands_one_gap_later_on_the_wall_clock() -> None:
    """02:30 on New York's spring-forward night reads 03:30 on the wall clock."""
    instant = local_to_utc(datetime(2026, 3, 8, 2, 30), "America/New_York")
    wall = instant.astimezone(zone("America/New_York"))
    assert (wall.hour, wall.minute, wall.utcoffset()) == (3, 30, timedelta(hours=-4))


def test_fall_back_takes_the_earlier_of_the_two_instants() -> None:
    """Of the two 01:30s on New York's fall-back night, the earlier one is chosen."""
    first = local_to_utc(datetime(2026, 11, 1, 1, 30), "America/New_York")
    second = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=zone("America/New_York"))
    assert first < second.astimezone(UTC)
    assert second.astimezone(UTC) - first == timedelta(hours=1)


@pytest.mark.parametrize(("local", "zone_name", "expected"), [
    (datetime(2026, 3, 8, 2, 30), "America/New_York", True),
    (datetime(2026, 3, 8, 3, 30), "America/New_York", False),
    (datetime(2026, 11, 1, 1, 30), "America/New_York", False),
    (datetime(2026, 9, 27, 3, 0), "Pacific/Chatham", True),
    (datetime(2026, 6, 1, 9, 0), "Asia/Kolkata", False),
])
def test_is_nonexistent(local: datetime, zone_name: str, expected: bool) -> None:
    """Only times inside a spring-forward gap are nonexistent."""
    assert is_nonexistent(local, zone_name) is expected


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "EST5EDT/../x", "", "America/"])
def test_unknown_zone_raises_schedule_error_naming_it(name: str) -> None:
    """An unknown or malformed zone raises ScheduleError with the zone's name."""
    with pytest.raises(ScheduleError) as caught:
        local_to_utc(datetime(2026, 1, 1, 9, 0), name)
    assert repr(name) in str(caught.value)


def test_aware_local_time_is_refused() -> None:
    """A local time that carries its own offset is ambiguous in intent and refused."""
    with pytest.raises(ScheduleError, match="offset"):
        local_to_utc(datetime(2026, 1, 1, 9, 0, tzinfo=UTC), "Europe/Paris")


def test_resolve_parses_stored_text() -> None:
    """resolve() takes the stored ISO text (with T or space, with seconds) and the zone."""
    assert resolve("2026-03-08T02:30:00", "America/New_York") == utc(2026, 3, 8, 7, 30)
    assert resolve("2026-06-01 09:00", "Asia/Kolkata") == utc(2026, 6, 1, 3, 30)


@pytest.mark.parametrize("text", ["tomorrow at nine", "2026-13-01 09:00", "", "09:00"])
def test_resolve_bad_text_raises_schedule_error(text: str) -> None:
    """Text that is not a date and time raises ScheduleError quoting it."""
    with pytest.raises(ScheduleError, match="is not a date and time") as caught:
        resolve(text, "UTC")
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("zone_name", [None, ""])
def test_resolve_without_zone_raises_schedule_error(zone_name: str | None) -> None:
    """A local time without a zone cannot be resolved."""
    with pytest.raises(ScheduleError, match="scheduled_timezone"):
        resolve("2026-06-01 09:00", zone_name)


def test_resolve_without_local_time_names_both_columns() -> None:
    """No local time at all: the reason says neither schedule column is set."""
    with pytest.raises(ScheduleError, match="neither scheduled_at nor scheduled_local"):
        resolve(None, "UTC")


# -- issue 10, item 1: no stored value may escape as anything but a ScheduleError ----------

@pytest.mark.parametrize(("local", "zone_name"), [
    ("0001-01-01 00:00", "Asia/Tokyo"),              # before year 1 in UTC
    ("9999-12-31 23:00", "America/Los_Angeles"),     # after year 9999 in UTC
    ("0001-01-01T00:30:00", "Asia/Kolkata"),
    ("9999-12-31 23:59:59.999999", "Pacific/Pago_Pago"),
])
def test_out_of_range_local_time_fails_alone(local: str, zone_name: str) -> None:
    """A local time whose instant falls outside years 1..9999 raises ScheduleError (not
    OverflowError), naming both columns and quoting the values."""
    with pytest.raises(ScheduleError) as caught:
        resolve(local, zone_name)
    reason = str(caught.value)
    assert "scheduled_local" in reason
    assert "scheduled_timezone" in reason
    assert repr(local) in reason
    assert "outside the dates" in reason


def test_the_last_and_first_instants_still_resolve() -> None:
    """The edges that do fit resolve: year 1 west of UTC, 9999-12-31 east of it."""
    assert resolve("0001-01-01 00:00", "America/New_York") == utc(1, 1, 1, 4, 56, 2)
    assert resolve("9999-12-31 23:00", "Asia/Tokyo") == utc(9999, 12, 31, 14, 0)


@pytest.mark.parametrize(("local", "zone_name", "column"), [
    ("2026-06-01 09:00", "America", "scheduled_timezone"),          # a directory: OSError
    ("2026-06-01 09:00", "x" * 5000, "scheduled_timezone"),         # name too long: OSError
    ("2026-06-01 09:00", "zone.tab", "scheduled_timezone"),         # not a zone file
    ("2026-06-01 09:00", "Europe/Paris\x00", "scheduled_timezone"),
    ("2026-06-01 09:00", 42, "scheduled_timezone"),
    ("2026-06-01 09:00", " Europe/Paris", "scheduled_timezone"),
    ("2026-06-01T09:00:00+02:00", "Europe/Paris", "scheduled_local"),  # carries an offset
    ("2026-06-01T09:00:00Z", "UTC", "scheduled_local"),
    ("infinity", "UTC", "scheduled_local"),
    ("0044-03-15T00:00:00 BC", "Europe/Rome", "scheduled_local"),
    ("10000-01-01T00:00:00", "UTC", "scheduled_local"),
    ("2026-06-01 09:00\x00", "UTC", "scheduled_local"),
    ("\u200b", "UTC", "scheduled_local"),
    ("9" * 10_000, "UTC", "scheduled_local"),
    (["2026-06-01 09:00"], "UTC", "scheduled_local"),
])
def test_odd_values_raise_schedule_error_naming_the_column(local: object, zone_name: object,
                                                           column: str) -> None:
    """Odd text, zones, offsets, NUL bytes and years: a ScheduleError naming the column at
    fault, short, with no raw NUL (Postgres text cannot hold one)."""
    with pytest.raises(ScheduleError) as caught:
        resolve(local, zone_name)
    reason = str(caught.value)
    assert column in reason
    assert "\x00" not in reason
    assert len(reason) < 400


@settings(max_examples=300, derandomize=True, deadline=None)
@given(local=st.one_of(st.none(), st.text(), st.datetimes().map(lambda d: d.isoformat()),
                       st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="minutes"))),
       zone_name=st.one_of(st.none(), st.text(), st.sampled_from(
           ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Kiritimati",
            "Pacific/Pago_Pago", "America/New_York", "Pacific/Chatham", "America"])))
def test_resolve_never_raises_anything_else(local: str | None, zone_name: str | None) -> None:
    """Any stored text and zone: an aware UTC instant, or ScheduleError with a reason that
    names a schedule column and holds no NUL character."""
    try:
        instant = resolve(local, zone_name)
    except ScheduleError as exc:
        reason = str(exc)
        assert "scheduled_" in reason
        assert "\x00" not in reason
    else:
        assert instant.utcoffset() == timedelta(0)

"""Occurrence maths: cron in a time zone across DST, send_at, until, catch_up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.occurrences import MISSED_AFTER, CatchUp, Recurrence, until_instant

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
UTC_ZONE = ZoneInfo("UTC")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(at: datetime, zone: ZoneInfo = NY) -> str:
    return at.astimezone(zone).strftime("%m-%d %H:%M %Z")


def test_cron_runs_at_local_wall_time_across_spring_forward() -> None:
    daily_0900 = Recurrence(zone=NY, cron="0 9 * * *")
    got = daily_0900.upcoming(utc(2026, 3, 7, 0), 3)
    assert [local(at) for at in got] == ["03-07 09:00 EST", "03-08 09:00 EDT", "03-09 09:00 EDT"]
    # The UTC distance shrinks by the hour the clocks lost.
    assert got[1] - got[0] == timedelta(hours=23)


def test_nonexistent_time_on_spring_forward_day_runs_once_after_the_jump() -> None:
    daily_0230 = Recurrence(zone=NY, cron="30 2 * * *")
    got = daily_0230.upcoming(utc(2026, 3, 7, 0), 3)
    # 2026-03-08 02:30 does not exist in New York: it runs once, at 03:30 EDT.
    assert [local(at) for at in got] == ["03-07 02:30 EST", "03-08 03:30 EDT", "03-09 02:30 EDT"]


def test_shifted_gap_time_is_found_from_just_after_the_jump() -> None:
    daily_0230 = Recurrence(zone=NY, cron="30 2 * * *")
    just_after_jump = utc(2026, 3, 8, 7, 10)  # 03:10 EDT; 02:30 is shifted to 03:30
    assert daily_0230.next_after(just_after_jump) == utc(2026, 3, 8, 7, 30)


def test_repeated_time_on_fall_back_day_runs_once() -> None:
    daily_0130 = Recurrence(zone=NY, cron="30 1 * * *")
    got = daily_0130.upcoming(utc(2026, 10, 31, 12), 3)
    assert [local(at) for at in got] == ["11-01 01:30 EDT", "11-02 01:30 EST", "11-03 01:30 EST"]
    assert len(set(got)) == 3


def test_start_inside_the_repeated_hour_does_not_fire_its_first_pass_again() -> None:
    daily_0130 = Recurrence(zone=NY, cron="30 1 * * *")
    second_pass_0110 = utc(2026, 11, 1, 6, 10)  # 01:10 EST, after 01:30 EDT has been
    assert local(daily_0130.upcoming(second_pass_0110, 1)[0]) == "11-02 01:30 EST"
    assert daily_0130.latest_at_or_before(second_pass_0110) == utc(2026, 11, 1, 5, 30)


def test_two_wall_times_landing_on_one_instant_fire_once() -> None:
    # 02:30 (shifted to 03:30 by the gap) and 03:30 itself are the same instant.
    both = Recurrence(zone=NY, cron="30 2,3 * * *")
    got = both.upcoming(utc(2026, 3, 8, 0), 3)
    assert [local(at) for at in got] == ["03-08 03:30 EDT", "03-09 02:30 EDT", "03-09 03:30 EDT"]


def test_until_date_includes_its_whole_local_day() -> None:
    end = until_instant(date(2026, 6, 2), LONDON)
    weekly = Recurrence(zone=LONDON, cron="0 23 * * *", until=end)
    got = weekly.upcoming(utc(2026, 5, 31, 0), 10)
    assert [local(at, LONDON) for at in got] == [
        "05-31 23:00 BST",
        "06-01 23:00 BST",
        "06-02 23:00 BST",
    ]
    assert weekly.finished(got[-1], now=got[-1])
    assert not weekly.finished(got[-2], now=got[-2])


def test_send_at_has_one_occurrence() -> None:
    once = Recurrence(zone=NY, send_at=utc(2026, 12, 1, 14))
    assert once.upcoming(utc(2026, 11, 1), 5) == [utc(2026, 12, 1, 14)]
    assert once.upcoming(utc(2026, 12, 1, 14), 5) == []
    assert not once.finished(None, now=utc(2026, 11, 1))
    assert once.finished(utc(2026, 12, 1, 14), now=utc(2026, 12, 1, 14, 1))


def test_exactly_one_of_send_at_and_cron() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Recurrence(zone=NY)
    with pytest.raises(ValueError, match=r"schedule\.cron"):
        Recurrence(zone=NY, cron="61 * * * *")


# -- due: which occurrences a tick fires -----------------------------------------------

HOURLY_START = utc(2026, 5, 1, 0, 0, 30)


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("all", [utc(2026, 5, 1, h) for h in (1, 2, 3, 4, 5)]),
        ("latest", [utc(2026, 5, 1, 5)]),
        ("none", []),
    ],
)
def test_catch_up_after_downtime(catch_up: str, expected: list[datetime]) -> None:
    hourly = Recurrence(zone=UTC_ZONE, cron="0 * * * *", catch_up=catch_up)  # type: ignore[arg-type]
    # Down from just after 00:00 until 05:10: five occurrences were missed.
    due = hourly.due(None, started_at=HOURLY_START, now=utc(2026, 5, 1, 5, 10))
    assert due.fire == expected
    assert due.dropped == (1 if catch_up == "none" else 0)


def test_on_time_occurrence_fires_under_every_catch_up_policy() -> None:
    policies: tuple[CatchUp, ...] = ("all", "latest", "none")
    for catch_up in policies:
        hourly = Recurrence(zone=UTC_ZONE, cron="0 * * * *", catch_up=catch_up)
        due = hourly.due(utc(2026, 5, 1, 4), HOURLY_START, now=utc(2026, 5, 1, 5, 0, 1))
        assert due.fire == [utc(2026, 5, 1, 5)], catch_up


def test_nothing_fires_twice_or_before_the_start() -> None:
    hourly = Recurrence(zone=UTC_ZONE, cron="0 * * * *")
    assert hourly.due(utc(2026, 5, 1, 5), HOURLY_START, now=utc(2026, 5, 1, 5, 30)).fire == []
    # Started at 05:30: the 05:00 occurrence predates the campaign.
    assert hourly.due(None, utc(2026, 5, 1, 5, 30), now=utc(2026, 5, 1, 5, 31)).fire == []


def test_missed_send_at_fires_late_unless_catch_up_none() -> None:
    late = utc(2026, 12, 1, 14) + MISSED_AFTER * 3
    once = Recurrence(zone=UTC_ZONE, send_at=utc(2026, 12, 1, 14))
    assert once.due(None, utc(2026, 12, 1, 15), now=late).fire == [utc(2026, 12, 1, 14)]
    strict = Recurrence(zone=UTC_ZONE, send_at=utc(2026, 12, 1, 14), catch_up="none")
    assert strict.due(None, utc(2026, 11, 1), now=late).fire == []
    assert strict.finished(None, now=late)


def test_until_stops_catch_up() -> None:
    hourly = Recurrence(zone=UTC_ZONE, cron="0 * * * *", until=utc(2026, 5, 1, 2, 30))
    assert hourly.due(None, HOURLY_START, now=utc(2026, 5, 1, 9)).fire == [utc(2026, 5, 1, 2)]
    everything = Recurrence(
        zone=UTC_ZONE, cron="0 * * * *", until=utc(2026, 5, 1, 2), catch_up="all"
    )
    assert everything.due(None, HOURLY_START, now=utc(2026, 5, 1, 9)).fire == [
        utc(2026, 5, 1, 1),
        utc(2026, 5, 1, 2),
    ]

"""Per-recipient planning: send windows in local time, relative reminders, hand-over."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.definition import DefinitionError, load_definition
from campaigns.expand import SendPlan
from scheduler.planning import PlanRules, Relative, make_planner, plan_message, recipient_zones
from scheduler.rules import plan_rules
from scheduler.windows import Window, next_common_opening
from tests.seed import definition

NY = ZoneInfo("America/New_York")
UTC_ZONE = ZoneInfo("UTC")
NO_LENGTH = re.escape("schedule.window.end: must differ from start")
LA = ZoneInfo("America/Los_Angeles")
NYC_NUMBER = "+12125550123"  # New York
LA_NUMBER = "+13105550123"  # Los Angeles
WEEKDAYS = Window(time(9), time(20), frozenset(range(5)))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def rules(**kw: object) -> PlanRules:
    return PlanRules(zone=ZoneInfo("UTC"), **kw)  # type: ignore[arg-type]


def test_zone_comes_from_number_then_country_then_contact() -> None:
    assert recipient_zones(NYC_NUMBER, None, rules()) == [NY]
    assert recipient_zones(LA_NUMBER, None, rules()) == [LA]
    per_country = rules(country_zones={"US": ZoneInfo("America/Chicago")})
    assert recipient_zones(LA_NUMBER, None, per_country) == [ZoneInfo("America/Chicago")]
    assert recipient_zones(LA_NUMBER, "Europe/Paris", per_country) == [ZoneInfo("Europe/Paris")]
    # A number phonenumbers cannot place falls back to the campaign's zone.
    assert recipient_zones("+80012345678", None, rules()) == [ZoneInfo("UTC")]


def test_inside_the_window_sends_now() -> None:
    monday_1000_ny = utc(2026, 6, 1, 14)
    plan = plan_message(
        rules(window=WEEKDAYS), NYC_NUMBER, {}, None, monday_1000_ny, now=monday_1000_ny
    )
    assert plan == SendPlan()


def test_outside_the_window_is_deferred_to_the_local_opening_never_dropped() -> None:
    monday_2130_ny = utc(2026, 6, 2, 1, 30)  # Monday 18:30 in Los Angeles
    r = rules(window=WEEKDAYS)
    ny = plan_message(r, NYC_NUMBER, {}, None, monday_2130_ny, now=monday_2130_ny)
    la = plan_message(r, LA_NUMBER, {}, None, monday_2130_ny, now=monday_2130_ny)
    assert ny == SendPlan(not_before=utc(2026, 6, 2, 13))  # Tuesday 09:00 EDT
    assert la == SendPlan()  # still open in Los Angeles


def test_weekend_defers_to_monday_and_across_dst() -> None:
    saturday = utc(2026, 3, 7, 15)  # 10:00 EST, Saturday
    plan = plan_message(rules(window=WEEKDAYS), NYC_NUMBER, {}, None, saturday, now=saturday)
    assert plan.not_before == utc(2026, 3, 9, 13)  # Monday 09:00 EDT (clocks went forward)


def test_overnight_window() -> None:
    night = Window(time(22), time(6))
    assert night.is_open(utc(2026, 6, 2, 3), NY)  # 23:00
    assert night.is_open(utc(2026, 6, 2, 9), NY)  # 05:00
    assert not night.is_open(utc(2026, 6, 2, 11), NY)  # 07:00
    assert night.next_opening(utc(2026, 6, 2, 11), NY) == utc(2026, 6, 3, 2)


def test_window_opens_on_its_days_at_start_and_closes_at_end() -> None:
    monday = utc(2026, 11, 30)
    assert WEEKDAYS.is_open(monday.replace(hour=9), UTC_ZONE)
    assert WEEKDAYS.is_open(monday.replace(hour=19, minute=59), UTC_ZONE)
    assert not WEEKDAYS.is_open(monday.replace(hour=20), UTC_ZONE)
    assert not WEEKDAYS.is_open(monday.replace(hour=8, minute=59), UTC_ZONE)
    assert not WEEKDAYS.is_open(utc(2026, 12, 5, 12), UTC_ZONE)  # Saturday


def test_a_window_across_midnight_belongs_to_the_evening_it_starts() -> None:
    friday_night = Window(time(20), time(6), frozenset({4}))
    assert friday_night.is_open(utc(2026, 12, 4, 21), UTC_ZONE)  # Friday evening
    assert friday_night.is_open(utc(2026, 12, 5, 5), UTC_ZONE)  # early Saturday: Friday's
    assert not friday_night.is_open(utc(2026, 12, 5, 21), UTC_ZONE)  # Saturday evening
    assert not friday_night.is_open(utc(2026, 12, 4, 5), UTC_ZONE)  # Thursday's window


def test_a_window_of_no_length_is_refused_as_the_definition_refuses_it() -> None:
    with pytest.raises(ValueError, match=NO_LENGTH):
        Window(time(9), time(9))
    same = {"window": {"start": "09:00", "end": "09:00"}}
    with pytest.raises(DefinitionError, match=NO_LENGTH):
        load_definition(definition(["l"], schedule=same))


def test_several_zones_wait_until_open_in_all() -> None:
    morning = Window(time(9), time(13))
    got = next_common_opening(morning, utc(2026, 6, 1, 12), [NY, LA])
    assert got == utc(2026, 6, 1, 16)  # 12:00 in New York, 09:00 in Los Angeles
    assert next_common_opening(morning, got, [NY, LA]) == got
    # Never open together: fall back to the first zone rather than defer forever.
    tokyo = ZoneInfo("Asia/Tokyo")
    assert next_common_opening(morning, utc(2026, 6, 1, 18), [NY, tokyo]) == utc(2026, 6, 2, 13)


APPOINTMENTS = Relative(field="custom_1", offset=timedelta(hours=-24))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-05 15:00", utc(2026, 6, 4, 19)),  # local (New York) time
        ("2026-06-05T15:00:00+00:00", utc(2026, 6, 4, 15)),
        ("2026-06-05T15:00Z", utc(2026, 6, 4, 15)),
        (str(int(utc(2026, 6, 5, 15).timestamp())), utc(2026, 6, 4, 15)),
    ],
)
def test_reminder_is_due_at_the_field_time_plus_offset(value: str, expected: datetime) -> None:
    now = utc(2026, 6, 1, 12)
    plan = plan_message(
        rules(relative=APPOINTMENTS), NYC_NUMBER, {"custom_1": value}, None, now, now=now
    )
    assert plan == SendPlan(not_before=expected)


def test_reminder_in_the_past_or_unreadable_is_skipped_with_a_reason() -> None:
    now = utc(2026, 6, 5, 12)
    r = rules(relative=APPOINTMENTS)
    passed = plan_message(r, NYC_NUMBER, {"custom_1": "2026-06-05 15:00"}, None, now, now=now)
    assert passed.skip_reason is not None and "has passed" in passed.skip_reason
    bad = plan_message(r, NYC_NUMBER, {"custom_1": "next tuesday"}, None, now, now=now)
    assert bad.skip_reason == "custom_1: 'next tuesday' is not a date and time"
    empty = plan_message(r, NYC_NUMBER, {}, None, now, now=now)
    assert empty.skip_reason == "custom_1: empty, no time to remind of"


def test_reminder_inside_quiet_hours_is_deferred_to_the_opening() -> None:
    now = utc(2026, 6, 1, 12)
    r = rules(relative=APPOINTMENTS, window=WEEKDAYS)
    # Appointment Tuesday 08:00 New York: reminder Monday 08:00, before the window opens.
    plan = plan_message(r, NYC_NUMBER, {"custom_1": "2026-06-02 08:00"}, None, now, now=now)
    assert plan.not_before == utc(2026, 6, 1, 13)


def test_far_messages_are_handed_over_with_a_provider_schedule() -> None:
    now = utc(2026, 6, 1, 12)
    r = rules(relative=APPOINTMENTS, handover_after=timedelta(minutes=15))
    far = plan_message(r, NYC_NUMBER, {"custom_1": "2026-06-05T15:00Z"}, None, now, now=now)
    assert far == SendPlan(provider_schedule=int(utc(2026, 6, 4, 15).timestamp()))
    near = plan_message(r, NYC_NUMBER, {"custom_1": "2026-06-02T12:10Z"}, None, now, now=now)
    assert near == SendPlan(not_before=utc(2026, 6, 1, 12, 10))
    # Past the run's deadline: kept here, where it expires instead of going out late.
    late = plan_message(
        r,
        NYC_NUMBER,
        {"custom_1": "2026-06-05T15:00Z"},
        None,
        now,
        now=now,
        expires_at=utc(2026, 6, 2),
    )
    assert late == SendPlan(not_before=utc(2026, 6, 4, 15))


def test_planner_from_a_definition() -> None:
    defn = definition(
        ["customers"],
        schedule={
            "timezone": "Europe/London",
            "window": {"start": "09:00", "end": "20:00", "days": "mon-fri"},
        },
    )
    r = plan_rules(defn, handover_after=None)
    assert r.window == WEEKDAYS and r.zone == ZoneInfo("Europe/London")
    now = utc(2026, 6, 6, 12)  # Saturday
    planner = make_planner(r, now=now)
    assert planner is not None
    assert planner(NYC_NUMBER, {}, None, now) == SendPlan(not_before=utc(2026, 6, 8, 13))
    assert make_planner(plan_rules(definition(["x"]), None), now=now) is None

"""campaigns.definition: the schedule block (durations, times, windows, reminders)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from campaigns.definition import (
    DefinitionError,
    Relative,
    Schedule,
    definition_to_json,
    format_duration,
    load_definition,
    parse_days,
    parse_duration,
)


def with_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "t",
        "channel": "sms",
        "audience": {"lists": ["customers"]},
        "message": {"body": "Hi"},
        "schedule": schedule,
    }


def schedule_of(schedule: dict[str, Any]) -> Schedule:
    loaded = load_definition(with_schedule(schedule)).schedule
    assert loaded is not None
    return loaded


def errors_of(schedule: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(with_schedule(schedule))
    return caught.value.errors


@pytest.mark.parametrize(
    ("text", "delta", "canonical"),
    [
        ("30m", timedelta(minutes=30), "30m"),
        ("6h", timedelta(hours=6), "6h"),
        ("2d", timedelta(days=2), "2d"),
        ("-24h", timedelta(hours=-24), "-1d"),
        ("1h30m", timedelta(minutes=90), "1h30m"),
        ("+1w", timedelta(days=7), "7d"),
        ("45s", timedelta(seconds=45), "45s"),
        ("0m", timedelta(0), "0s"),
    ],
)
def test_durations(text: str, delta: timedelta, canonical: str) -> None:
    assert parse_duration(text) == delta
    assert format_duration(delta) == canonical
    assert parse_duration(canonical) == delta


@pytest.mark.parametrize("bad", ["30", "6 hours", "h", "", "1.5h", "-", 30])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_a_full_cron_schedule() -> None:
    s = schedule_of(
        {
            "cron": "0  9 * * mon",
            "timezone": "Europe/London",
            "until": "2027-06-01",
            "overlap": "queue",
            "catch_up": "all",
            "expires_after": "6h",
        }
    )
    assert (s.cron, s.overlap, s.catch_up) == ("0 9 * * mon", "queue", "all")
    assert s.expires_after == timedelta(hours=6)
    # A date includes the whole day, in the schedule's zone (BST on 1 June).
    assert s.last_occurrence_utc() == datetime(2027, 6, 1, 22, 59, 59, 999999, tzinfo=UTC)


def test_defaults_and_zone() -> None:
    s = schedule_of({"cron": "0 9 * * *"})
    assert (s.overlap, s.catch_up, s.timezone, s.zone().key) == ("skip", "latest", None, "UTC")
    assert s.last_occurrence_utc() is None


def test_send_at_needs_an_offset_or_a_timezone() -> None:
    s = schedule_of({"send_at": "2026-12-01T09:00", "timezone": "America/New_York"})
    assert s.send_at_utc() == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    s = schedule_of({"send_at": "2026-12-01T09:00+01:00"})
    assert s.send_at_utc() == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert errors_of({"send_at": "2026-12-01T09:00"}) == [
        "schedule.send_at: no UTC offset: add one (+01:00) or set timezone"
    ]
    assert errors_of({"send_at": "next tuesday"})[0].startswith("schedule.send_at: input should be")


def test_schedule_consistency_errors() -> None:
    assert errors_of({"send_at": "2026-12-01T09:00Z", "cron": "0 9 * * *"}) == [
        "schedule.cron: send_at and cron are mutually exclusive"
    ]
    assert errors_of(
        {"send_at": "2026-12-01T09:00Z", "until": "2027-01-01", "overlap": "queue"}
    ) == [
        "schedule.until: only with cron",
        "schedule.overlap: only with cron",
    ]
    assert errors_of({}) == [
        "schedule: empty: give send_at, cron, relative, window or expires_after"
    ]
    assert errors_of({"timezone": "UTC"}) == [
        "schedule: empty: give send_at, cron, relative, window or expires_after"
    ]


def test_field_errors_in_the_schedule() -> None:
    assert errors_of(
        {
            "cron": "0 9 * *",
            "timezone": "Mars/Olympus",
            "until": "soon",
            "overlap": "merge",
            "catch_up": "some",
            "expires_after": "-1h",
        }
    ) == [
        "schedule.cron: not a valid cron expression: '0 9 * *' (e.g. '0 9 * * mon')",
        "schedule.timezone: unknown time zone 'Mars/Olympus' "
        "(use an IANA name such as Europe/London)",
        "schedule.until: not a date or date-time: 'soon' (use e.g. 2027-06-01)",
        "schedule.overlap: input should be 'skip' or 'queue' (got 'merge')",
        "schedule.catch_up: input should be 'latest', 'none' or 'all' (got 'some')",
        "schedule.expires_after: must be longer than zero",
    ]


def test_days() -> None:
    assert parse_days("mon-fri") == {0, 1, 2, 3, 4}
    assert parse_days("sat,sun") == {5, 6}
    assert parse_days("fri-mon") == {4, 5, 6, 0}
    assert parse_days("Mon, wed-thu") == {0, 2, 3}
    with pytest.raises(ValueError, match="unknown day 'mo'"):
        parse_days("mo-fr")


def test_window_validation() -> None:
    w = schedule_of({"window": {"start": "9:00", "end": "20:00"}}).window
    assert w is not None
    assert (w.start, w.end, w.weekdays()) == (time(9), time(20), frozenset(range(7)))
    assert errors_of({"window": {"start": "20:00", "end": "20:00"}}) == [
        "schedule.window.end: must differ from start"
    ]
    assert errors_of({"window": {"start": "24:00", "end": "8pm", "days": "weekdays"}}) == [
        "schedule.window.start: not a time of day: '24:00' (use HH:MM, e.g. 09:00)",
        "schedule.window.end: not a time of day: '8pm' (use HH:MM, e.g. 09:00)",
        "schedule.window.days: unknown day 'weekdays' (use mon..sun, e.g. mon-fri or sat,sun)",
    ]


def test_relative_reminders() -> None:
    s = schedule_of({"relative": {"field": "custom_1", "offset": "-24h"}})
    assert s.relative == Relative(field="custom_1", offset=timedelta(days=-1))
    # What the field's time means at send time is scheduler.planning's rule (tested there).
    assert errors_of({"relative": {"field": "custom 1"}}) == [
        "schedule.relative.field: 'custom 1' is not a field name (letters, digits, underscore)"
    ]


def test_schedule_round_trips_through_json() -> None:
    schedule = {
        "cron": "0 9 * * mon",
        "timezone": "Europe/London",
        "until": "2027-06-01T12:00+01:00",
        "catch_up": "none",
        "relative": {"field": "custom_1", "offset": "-90m"},
        "expires_after": "1d6h",
        "window": {"start": "08:30", "end": "21:00", "days": "mon-sat"},
    }
    defn = load_definition(with_schedule(schedule))
    stored = definition_to_json(defn)
    assert stored["schedule"] == {
        **schedule,
        "until": "2027-06-01T12:00:00+01:00",
        "relative": {"field": "custom_1", "offset": "-1h30m"},
        "expires_after": "1d6h",
    }
    assert load_definition(stored) == defn


def test_a_cron_that_never_fires_and_an_out_of_range_duration_are_field_errors() -> None:
    assert errors_of({"cron": "0 9 31 2 *", "expires_after": "99999999999w"}) == [
        "schedule.cron: '0 9 31 2 *' never fires (no such date in any year)",
        "schedule.expires_after: out of range: at most 3650d",
    ]
    # A date that exists only in leap years still fires.
    assert schedule_of({"cron": "0 9 29 2 *"}).cron == "0 9 29 2 *"


def test_campaign_create_names_the_field_of_an_unusable_schedule(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from clarion.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nchannel: sms\naudience: {lists: [customers]}\n"
        "message: {body: Hi, from: Clarion}\n"
        "schedule: {cron: '0 9 31 2 *', expires_after: 99999999999w}\n"
    )
    result = CliRunner().invoke(
        app,
        ["campaign", "create", str(path)],
        env={"CLARION_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"},
    )
    assert result.exit_code == 1
    assert "schedule.cron: '0 9 31 2 *' never fires" in result.output
    assert "schedule.expires_after: out of range" in result.output
    assert "Traceback" not in result.output

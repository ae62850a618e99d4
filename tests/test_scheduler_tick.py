"""The tick with a controllable clock: send_at, cron across DST, catch-up, overlap,
deadlines, quiet hours deferring and releasing, reminders. No Celery, no waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Campaign, Message, Run
from campaigns.runs import create_campaign, pause_campaign
from config.settings import Settings
from scheduler.listing import upcoming, waiting
from scheduler.rules import planner_for_run
from scheduler.tick import tick
from tests.fakes import FakeProvider
from tests.seed import definition, seed_list, status_counts, us_numbers
from workers.dispatch import Dispatcher

NYC = ["+12125550101", "+12125550102"]  # New York numbers
LA = ["+13105550101"]  # Los Angeles


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def scheduled_campaign(url: str, schedule: dict[str, Any], started_at: datetime) -> int:
    with session_scope(url) as session:
        campaign = create_campaign(session, definition(["customers"], schedule=schedule))
        campaign.status, campaign.started_at = "active", started_at
        return campaign.id


def runs_of(url: str, campaign_id: int) -> list[tuple[datetime, str]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(Run.occurrence, Run.status)
            .where(Run.campaign_id == campaign_id)
            .order_by(Run.occurrence)
        ).all()
        return [(r.occurrence.replace(tzinfo=UTC), r.status) for r in rows]


def set_run(url: str, run_id: int, **values: Any) -> None:
    with session_scope(url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(**values))


def campaign_status(url: str, campaign_id: int) -> str:
    with session_scope(url) as session:
        return str(session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))


def expand_at(url: str, run_id: int, now: datetime, **settings_kw: Any) -> None:
    settings = Settings(database_url=url, **settings_kw)
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        campaign = session.get(Campaign, run.campaign_id)
        assert campaign is not None
        planner = planner_for_run(session, run, campaign.definition, settings, now=now)
        expand_run(session, run_id, planner=planner)


def dispatcher_at(url: str, clock: list[datetime]) -> tuple[Dispatcher, FakeProvider]:
    provider = FakeProvider()

    class Unlimited:
        def acquire(self, messages: int) -> float:
            return 0.0

        def penalise(self, retry_after: float | None) -> float:
            return 0.0

    dispatcher = Dispatcher(
        settings=Settings(database_url=url),
        client=provider,  # type: ignore[arg-type]
        limiter=Unlimited(),  # type: ignore[arg-type]
        clock=lambda: clock[0],
        sleep=lambda s: None,
    )
    return dispatcher, provider


def test_send_at_fires_once_at_its_time_with_its_deadline(db_url: str) -> None:
    seed_list(db_url, "customers", us_numbers(3))
    schedule = {
        "send_at": "2026-12-01T09:00",
        "timezone": "Europe/London",
        "expires_after": "2h",
    }
    cid = scheduled_campaign(db_url, schedule, started_at=utc(2026, 11, 30))
    settings = Settings(database_url=db_url)
    assert tick(settings, now=utc(2026, 12, 1, 8, 59, 59)).to_expand == []
    first = tick(settings, now=utc(2026, 12, 1, 9, 0, 0, 500000))
    again = tick(settings, now=utc(2026, 12, 1, 9, 0, 1))
    assert runs_of(db_url, cid) == [(utc(2026, 12, 1, 9), "scheduled")]
    assert len(first.to_expand) == 1 and again.to_expand == []
    with session_scope(db_url) as session:
        run = session.get(Run, first.to_expand[0])
        assert run is not None and run.expires_at is not None
        assert run.expires_at.replace(tzinfo=UTC) == utc(2026, 12, 1, 11)
    # Once its run is over, the campaign has nothing left to do.
    set_run(db_url, first.to_expand[0], status="completed")
    tick(settings, now=utc(2026, 12, 1, 9, 5))
    assert campaign_status(db_url, cid) == "finished"


def test_cron_across_dst_change_makes_one_run_per_day(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC)
    cid = scheduled_campaign(
        sqlite_url,
        {"cron": "30 2 * * *", "timezone": "America/New_York"},
        started_at=utc(2026, 3, 6, 12),
    )
    settings = Settings(database_url=sqlite_url)
    now = utc(2026, 3, 6, 12)
    while now < utc(2026, 3, 10, 12):  # tick every 20 minutes for four days
        for run_id in tick(settings, now=now).to_expand:
            set_run(sqlite_url, run_id, status="completed")
        now += timedelta(minutes=20)
    assert runs_of(sqlite_url, cid) == [
        (utc(2026, 3, 7, 7, 30), "completed"),  # 02:30 EST
        (utc(2026, 3, 8, 7, 30), "completed"),  # 02:30 does not exist: 03:30 EDT
        (utc(2026, 3, 9, 6, 30), "completed"),  # 02:30 EDT
        (utc(2026, 3, 10, 6, 30), "completed"),
    ]


def test_catch_up_after_downtime_queues_missed_runs_in_order(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC)
    cid = scheduled_campaign(
        sqlite_url, {"cron": "0 * * * *", "catch_up": "all"}, started_at=utc(2026, 5, 1, 0, 5)
    )
    settings = Settings(database_url=sqlite_url)
    # The scheduler was down from 00:05 to 03:20: 01:00, 02:00 and 03:00 were missed.
    result = tick(settings, now=utc(2026, 5, 1, 3, 20))
    assert [status for _, status in runs_of(sqlite_url, cid)] == ["scheduled"] * 3
    assert len(result.to_expand) == 1  # one at a time, oldest first
    first = result.to_expand[0]
    set_run(sqlite_url, first, last_activity_at=None)
    assert tick(settings, now=utc(2026, 5, 1, 3, 21)).to_expand == [first]
    set_run(sqlite_url, first, status="completed")
    nxt = tick(settings, now=utc(2026, 5, 1, 3, 22)).to_expand
    assert len(nxt) == 1 and nxt != [first]


def test_catch_up_latest_and_none(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC)
    latest = scheduled_campaign(sqlite_url, {"cron": "0 * * * *"}, utc(2026, 5, 1, 0, 5))
    none = scheduled_campaign(
        sqlite_url, {"cron": "0 * * * *", "catch_up": "none"}, utc(2026, 5, 1, 0, 5)
    )
    tick(Settings(database_url=sqlite_url), now=utc(2026, 5, 1, 3, 20))
    assert runs_of(sqlite_url, latest) == [(utc(2026, 5, 1, 3), "scheduled")]
    assert runs_of(sqlite_url, none) == []
    tick(Settings(database_url=sqlite_url), now=utc(2026, 5, 1, 4, 0, 2))
    assert runs_of(sqlite_url, none) == [(utc(2026, 5, 1, 4), "scheduled")]


def test_overlap_skip_records_the_occurrence_and_sends_nothing(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC)
    cid = scheduled_campaign(sqlite_url, {"cron": "0 * * * *"}, utc(2026, 5, 1, 0, 5))
    settings = Settings(database_url=sqlite_url)
    [first] = tick(settings, now=utc(2026, 5, 1, 1, 0, 1)).to_expand
    expand_at(sqlite_url, first, utc(2026, 5, 1, 1, 0, 1))  # and still sending an hour later
    assert tick(settings, now=utc(2026, 5, 1, 2, 0, 1)).to_expand == []
    assert runs_of(sqlite_url, cid) == [
        (utc(2026, 5, 1, 1), "sending"),
        (utc(2026, 5, 1, 2), "skipped"),
    ]
    set_run(sqlite_url, first, status="completed")
    assert tick(settings, now=utc(2026, 5, 1, 2, 30)).to_expand == []  # not fired late
    assert len(tick(settings, now=utc(2026, 5, 1, 3, 0, 1)).to_expand) == 1


def test_overlap_queue_waits_for_the_previous_run(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC)
    cid = scheduled_campaign(
        sqlite_url, {"cron": "0 * * * *", "overlap": "queue"}, utc(2026, 5, 1, 0, 5)
    )
    settings = Settings(database_url=sqlite_url)
    [first] = tick(settings, now=utc(2026, 5, 1, 1, 0, 1)).to_expand
    expand_at(sqlite_url, first, utc(2026, 5, 1, 1, 0, 1))
    assert tick(settings, now=utc(2026, 5, 1, 2, 0, 1)).to_expand == []
    assert [s for _, s in runs_of(sqlite_url, cid)] == ["sending", "scheduled"]
    set_run(sqlite_url, first, status="completed")
    assert len(tick(settings, now=utc(2026, 5, 1, 2, 5)).to_expand) == 1


def test_paused_campaign_gets_no_runs_and_until_finishes_it(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC)
    cid = scheduled_campaign(
        sqlite_url, {"cron": "0 * * * *", "until": "2026-05-01T02:00"}, utc(2026, 5, 1, 0, 5)
    )
    settings = Settings(database_url=sqlite_url)
    with session_scope(sqlite_url) as session:
        pause_campaign(session, cid)
    tick(settings, now=utc(2026, 5, 1, 1, 0, 1))
    assert runs_of(sqlite_url, cid) == []
    with session_scope(sqlite_url) as session:
        session.execute(update(Campaign).where(Campaign.id == cid).values(status="active"))
    [run] = tick(settings, now=utc(2026, 5, 1, 2, 0, 1)).to_expand
    set_run(sqlite_url, run, status="completed")
    tick(settings, now=utc(2026, 5, 1, 2, 1))
    assert campaign_status(sqlite_url, cid) == "finished"


def test_broken_schedule_pauses_the_campaign_with_the_reason(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC)
    cid = scheduled_campaign(sqlite_url, {"cron": "0 * * * *"}, utc(2026, 5, 1))
    with session_scope(sqlite_url) as session:
        campaign = session.get(Campaign, cid)
        assert campaign is not None
        campaign.definition = {**campaign.definition, "schedule": {"cron": "not cron"}}
    tick(Settings(database_url=sqlite_url), now=utc(2026, 5, 1, 1))
    with session_scope(sqlite_url) as session:
        campaign = session.get(Campaign, cid)
        assert campaign is not None and campaign.status == "paused"
        assert "schedule.cron" in (campaign.status_reason or "")


def test_quiet_hours_defer_and_release(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC + LA)
    window = {"start": "09:00", "end": "20:00", "days": "mon-fri"}
    cid = scheduled_campaign(
        sqlite_url, {"send_at": "2026-06-01T22:30:00-04:00", "window": window}, utc(2026, 6, 1)
    )
    settings = Settings(database_url=sqlite_url)
    fire = utc(2026, 6, 2, 2, 30)  # Monday 22:30 in New York, 19:30 in Los Angeles
    [run_id] = tick(settings, now=fire).to_expand
    expand_at(sqlite_url, run_id, fire, scheduler_handover_seconds=0)
    clock = [fire]
    dispatcher, provider = dispatcher_at(sqlite_url, clock)
    dispatcher.dispatch_once(run_id)
    assert [m["to"] for m in provider.sent] == LA  # inside its window: sent now
    outcome = dispatcher.dispatch_once(run_id)
    assert outcome.action == "wait"
    with session_scope(sqlite_url) as session:
        held = waiting(session, run_id, now=fire)
    assert (held.held, held.held_next) == (2, utc(2026, 6, 2, 13))  # Tuesday 09:00 EDT
    # Nothing is kicked before the window opens; the tick releases it when it does.
    assert run_id not in tick(settings, now=utc(2026, 6, 2, 12, 59)).to_dispatch
    assert run_id in tick(settings, now=utc(2026, 6, 2, 13, 0, 1)).to_dispatch
    clock[0] = utc(2026, 6, 2, 13, 0, 1)
    dispatcher.dispatch_once(run_id)
    assert sorted(m["to"] for m in provider.sent) == sorted(NYC + LA)
    dispatcher.dispatch_once(run_id)
    assert status_counts(sqlite_url, run_id) == {"sent": 3}
    assert runs_of(sqlite_url, cid)[0][1] == "completed"


def test_deadline_expires_messages_held_past_it(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC + LA)
    window = {"start": "09:00", "end": "20:00"}
    cid = scheduled_campaign(
        sqlite_url,
        {"send_at": "2026-06-02T02:30Z", "window": window, "expires_after": "3h"},
        utc(2026, 6, 1),
    )
    fire = utc(2026, 6, 2, 2, 30)
    [run_id] = tick(Settings(database_url=sqlite_url), now=fire).to_expand
    expand_at(sqlite_url, run_id, fire)
    clock = [fire]
    dispatcher, provider = dispatcher_at(sqlite_url, clock)
    dispatcher.dispatch_once(run_id)
    settings = Settings(database_url=sqlite_url)
    assert run_id not in tick(settings, now=utc(2026, 6, 2, 5, 29)).to_dispatch
    assert run_id in tick(settings, now=utc(2026, 6, 2, 5, 31)).to_dispatch  # deadline passed
    clock[0] = utc(2026, 6, 2, 5, 31)  # the window opens after the deadline (05:30)
    assert dispatcher.dispatch_once(run_id).action == "done"
    assert status_counts(sqlite_url, run_id) == {"sent": 1, "expired": 2}
    assert len(provider.sent) == 1
    assert runs_of(sqlite_url, cid)[0][1] == "completed"


def test_reminders_relative_to_a_contact_field(sqlite_url: str) -> None:
    now = utc(2026, 6, 1, 12)
    seed_list(sqlite_url, "customers", ["+12125550101"], {"custom_1": "2026-06-03 15:00"})
    seed_list(sqlite_url, "past", ["+12125550102"], {"custom_1": "2026-06-01 09:00"})
    seed_list(sqlite_url, "blank", ["+12125550103"], {"custom_1": ""})
    with session_scope(sqlite_url) as session:
        defn = definition(
            ["customers", "past", "blank"],
            schedule={"relative": {"field": "custom_1", "offset": "-24h"}},
        )
        campaign = create_campaign(session, defn)
        campaign.status, campaign.started_at = "active", now
        cid = campaign.id
    [run_id] = tick(Settings(database_url=sqlite_url), now=now).to_expand
    expand_at(sqlite_url, run_id, now, scheduler_handover_seconds=0)
    with session_scope(sqlite_url) as session:
        rows = {
            r.phone: (r.status, r.not_before, r.error)
            for r in session.execute(select(Message).where(Message.run_id == run_id)).scalars()
        }
    assert rows["+12125550101"][:2] == ("pending", utc(2026, 6, 2, 19))  # 15:00 EDT - 24h
    assert rows["+12125550102"][0] == "skipped" and "has passed" in str(rows["+12125550102"][2])
    assert rows["+12125550103"] == ("skipped", None, "custom_1: empty, no time to remind of")
    assert runs_of(sqlite_url, cid)[0][1] == "sending"


def test_far_reminders_are_handed_to_the_provider_with_a_schedule(sqlite_url: str) -> None:
    now = utc(2026, 6, 1, 12)
    seed_list(sqlite_url, "customers", ["+12125550101"], {"custom_1": "2026-06-03T15:00Z"})
    with session_scope(sqlite_url) as session:
        defn = definition(["customers"], schedule={"relative": {"field": "custom_1"}})
        campaign = create_campaign(session, defn)
        campaign.status, campaign.started_at = "active", now
    [run_id] = tick(Settings(database_url=sqlite_url), now=now).to_expand
    expand_at(sqlite_url, run_id, now)  # default: hand over beyond 15 minutes
    with session_scope(sqlite_url) as session:
        msg = session.scalars(select(Message).where(Message.run_id == run_id)).one()
        assert (msg.not_before, msg.provider_schedule) == (
            None,
            int(utc(2026, 6, 3, 15).timestamp()),
        )


def test_schedule_list_shows_next_occurrences_in_the_campaign_zone(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", NYC)
    cid = scheduled_campaign(
        sqlite_url,
        {"cron": "0 9 * * mon", "timezone": "America/New_York"},
        started_at=utc(2026, 3, 1),
    )
    with session_scope(sqlite_url) as session:
        [item] = upcoming(session, now=utc(2026, 3, 1), count=3)
    assert item.campaign_id == cid and item.kind == "cron" and item.zone == "America/New_York"
    assert [at.isoformat() for at in item.next] == [
        "2026-03-02T09:00:00-05:00",
        "2026-03-09T09:00:00-04:00",
        "2026-03-16T09:00:00-04:00",
    ]
    assert item.to_json()["next"][0] == "2026-03-02T09:00:00-05:00"


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(minutes=3)])
def test_unscheduled_campaign_with_only_a_window_gets_one_run(
    sqlite_url: str, offset: timedelta
) -> None:
    seed_list(sqlite_url, "customers", NYC)
    start = utc(2026, 6, 1, 12)
    cid = scheduled_campaign(
        sqlite_url, {"window": {"start": "09:00", "end": "17:00"}, "expires_after": "1d"}, start
    )
    settings = Settings(database_url=sqlite_url)
    tick(settings, now=start + offset)
    tick(settings, now=start + offset + timedelta(seconds=5))
    assert runs_of(sqlite_url, cid) == [(start, "scheduled")]


@pytest.mark.parametrize("ahead", [timedelta(milliseconds=50), timedelta(minutes=2)])
def test_a_run_started_on_a_host_whose_clock_is_ahead_is_due_at_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch, ahead: timedelta
) -> None:
    """The start and the tick read one clock, the database's: a host clock ahead of it
    (or SQLite's millisecond clock against Python's microseconds) must not leave a just
    started campaign's run waiting for a later tick."""
    from campaigns import clock as clock_module
    from campaigns.runs import start_campaign

    class AheadDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> AheadDatetime:  # type: ignore[override]
            return super().now(tz) + ahead  # type: ignore[return-value]

    seed_list(db_url, "customers", NYC)
    with session_scope(db_url) as session:
        cid = create_campaign(session, definition(["customers"])).id
    monkeypatch.setattr(clock_module, "datetime", AheadDatetime)
    with session_scope(db_url) as session:
        run = start_campaign(session, cid)
        assert run is not None
        run_id = run.id
    assert tick(Settings(database_url=db_url)).to_expand == [run_id]  # type: ignore[call-arg]

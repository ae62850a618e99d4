"""Opt-outs and quiet hours are checked right before each batch, not only at expansion:
a STOP that arrives after expansion suppresses the number, and a message whose send slips
past its window's end (a resume, a backlog, a retry) waits for the next opening."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from campaigns.db import session_scope
from campaigns.models import Message, Suppression
from config.settings import Settings
from scheduler.tick import tick
from tests.seed import seed_list, status_counts
from tests.test_scheduler_tick import LA, NYC, dispatcher_at, expand_at, scheduled_campaign, utc
from workers import reconcile


def test_a_stop_after_expansion_suppresses_the_number(db_url: str) -> None:
    seed_list(db_url, "customers", NYC + LA)
    scheduled_campaign(db_url, {"send_at": "2026-06-02T15:00Z"}, utc(2026, 6, 1))
    fire = utc(2026, 6, 2, 15)
    settings = Settings(database_url=db_url)
    [run_id] = tick(settings, now=fire).to_expand
    expand_at(db_url, run_id, fire)
    with session_scope(db_url) as session:
        session.add(Suppression(phone=NYC[0], reason="STOP reply"))
    dispatcher, provider = dispatcher_at(db_url, [fire])
    dispatcher.dispatch_once(run_id)
    assert sorted(m["to"] for m in provider.sent) == sorted([NYC[1], *LA])
    with session_scope(db_url) as session:
        status = session.scalar(select(Message.status).where(Message.phone == NYC[0]))
    assert status == "suppressed"
    dispatcher.dispatch_once(run_id)
    assert status_counts(db_url, run_id) == {"sent": 2, "suppressed": 1}


def _windowed_run(url: str) -> int:
    """A run to New York numbers with a 09:00-20:00 weekday window, expanded at its
    send_at, Monday 19:00 in New York (inside the window)."""
    seed_list(url, "customers", NYC)
    window = {"start": "09:00", "end": "20:00", "days": "mon-fri"}
    scheduled_campaign(
        url, {"send_at": "2026-06-01T19:00:00-04:00", "window": window}, utc(2026, 6, 1)
    )
    fire = utc(2026, 6, 1, 23)
    [run_id] = tick(Settings(database_url=url), now=fire).to_expand
    expand_at(url, run_id, fire, scheduler_handover_seconds=0)
    return run_id


def test_a_message_past_its_window_end_waits_for_the_next_opening(sqlite_url: str) -> None:
    run_id = _windowed_run(sqlite_url)
    # The send slips (a pause, a backlog) to 20:30 New York time, past the window's end.
    late = utc(2026, 6, 2, 0, 30)
    clock = [late]
    dispatcher, provider = dispatcher_at(sqlite_url, clock)
    dispatcher.dispatch_once(run_id)
    assert provider.sent == []
    with session_scope(sqlite_url) as session:
        rows = session.execute(
            select(Message.status, Message.not_before, Message.attempts).where(
                Message.run_id == run_id
            )
        ).all()
    # Back to pending, not an attempt, until Tuesday 09:00 in New York (13:00 UTC).
    assert {(s, nb, a) for s, nb, a in rows} == {("pending", utc(2026, 6, 2, 13), 0)}
    clock[0] = utc(2026, 6, 2, 13, 0, 1)
    dispatcher.dispatch_once(run_id)
    assert sorted(m["to"] for m in provider.sent) == sorted(NYC)


def test_a_look_up_that_ends_past_the_window_end_holds_the_batch_after_it(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's checks read the clock after the history look-ups that come before the
    claim (a slow provider's history can take minutes), not before them."""
    run_id = _windowed_run(sqlite_url)
    clock = [utc(2026, 6, 1, 23, 59, 30)]  # 19:59:30 in New York: 30 s left
    dispatcher, provider = dispatcher_at(sqlite_url, clock)

    def slow_look_up(*args: object, **kwargs: object) -> int:
        clock[0] = utc(2026, 6, 2, 0, 0, 30)  # it ends at 20:00:30, past the window's end
        return 1

    monkeypatch.setattr(reconcile, "settle_ripe", slow_look_up)
    dispatcher.dispatch_once(run_id)
    assert provider.sent == []
    assert status_counts(sqlite_url, run_id) == {"pending": len(NYC)}

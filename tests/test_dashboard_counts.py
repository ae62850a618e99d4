"""The dashboard's count cache: a page gets the last counts at once and a stale entry is
recounted in the background; a run that has ended shows its final counts with its status."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from api.dashboard.counts import ListCounts, RunCounts
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message, Run
from tests.seed import seed_campaign, seed_list, us_numbers


def _mark_sent(url: str, run_id: int, n: int) -> None:
    with session_scope(url) as session:
        ids = list(
            session.scalars(
                select(Message.id)
                .where(Message.run_id == run_id, Message.status == "pending")
                .limit(n)
            )
        )
        session.execute(update(Message).where(Message.id.in_(ids)).values(status="sent"))


def wait_until(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_stale_counts_are_served_then_recounted_and_final_ones_at_once(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", us_numbers(20))
    _, run_id = seed_campaign(sqlite_url, ["customers"])
    with session_scope(sqlite_url) as session:
        expand_run(session, run_id)
        session.execute(update(Run).where(Run.id == run_id).values(status="sending"))
    counts = RunCounts(sqlite_url, max_age=0.05)
    assert counts.get(run_id)["pending"] == 20  # first look: counted in the call

    _mark_sent(sqlite_url, run_id, 5)
    assert counts.get(run_id)["sent"] == 0  # fresh enough: no recount
    time.sleep(0.1)
    assert counts.get(run_id)["sent"] == 0  # stale: the last counts, a recount started
    wait_until(lambda: counts.get(run_id)["sent"] == 5)

    _mark_sent(sqlite_url, run_id, 15)
    with session_scope(sqlite_url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="completed"))
    # The run has ended: its final numbers come with its final status, not a second later.
    final = counts.get(run_id, "completed")
    assert final["sent"] == 20 and final["pending"] == 0
    with session_scope(sqlite_url) as session:  # kept for good: never recounted
        session.execute(update(Message).where(Message.run_id == run_id).values(status="failed"))
    time.sleep(0.1)
    assert counts.get(run_id, "completed")["sent"] == 20


def test_active_runs_are_counted_when_the_app_starts(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", us_numbers(7))
    _, run_id = seed_campaign(sqlite_url, ["customers"])
    with session_scope(sqlite_url) as session:
        expand_run(session, run_id)
        session.execute(update(Run).where(Run.id == run_id).values(status="sending"))
    counts = RunCounts(sqlite_url, max_age=60)
    counts.warm()
    wait_until(lambda: run_id in counts._cache)
    _mark_sent(sqlite_url, run_id, 7)
    assert counts.get(run_id)["pending"] == 7  # from the warm-up, not from this call


def test_list_counts_are_recounted_after_an_import(sqlite_url: str) -> None:
    list_id = seed_list(sqlite_url, "a", us_numbers(3))
    counts = ListCounts(sqlite_url, max_age=60)
    assert counts.get() == {list_id: 3}
    other = seed_list(sqlite_url, "b", us_numbers(2, start=100))
    assert counts.get() == {list_id: 3}  # within max_age
    counts.forget()
    assert counts.get() == {list_id: 3, other: 2}

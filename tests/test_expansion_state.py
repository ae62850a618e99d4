"""A run is complete only once its expansion has finished; an expansion that died is
redone on resume; a cancelled run's expansion writes nothing more. Plain functions, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.expansion_lease import LEASE_SECONDS
from campaigns.models import Message, Run
from campaigns.runs import cancel_campaign, finish_if_done, pause_campaign, resume_campaign
from config.settings import Settings
from scheduler.tick import tick
from tests.seed import seed_campaign, seed_list, status_counts, us_numbers


class ExpansionDied(Exception):
    pass


def _run(url: str, run_id: int) -> Run:
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def test_a_run_whose_expansion_died_is_not_complete_and_resume_expands_the_rest(
    db_url: str,
) -> None:
    seed_list(db_url, "a", us_numbers(10))
    campaign_id, run_id = seed_campaign(db_url, ["a"])

    def pause_then_die(_: int) -> None:
        with session_scope(db_url) as other:
            pause_campaign(other, campaign_id)
        raise ExpansionDied

    with session_scope(db_url) as session, pytest.raises(ExpansionDied):
        expand_run(session, run_id, chunk_size=4, progress=pause_then_die)
    assert _run(db_url, run_id).expanded_at is None
    with session_scope(db_url) as session:
        assert resume_campaign(session, campaign_id) == [run_id]
    # The dispatcher sends the four rows that exist ...
    with session_scope(db_url) as session:
        session.execute(update(Message).where(Message.run_id == run_id).values(status="sent"))
    # ... and must not take that for the end of the run.
    with session_scope(db_url) as session:
        assert finish_if_done(session, run_id) is False
    run = _run(db_url, run_id)
    assert run.status == "expanding"
    # Nothing shows progress: the scheduler's tick hands the run to an expansion again.
    later = utcnow() + timedelta(minutes=1)
    assert tick(Settings(database_url=db_url), now=later).to_expand == [run_id]
    with session_scope(db_url) as session:
        report = expand_run(session, run_id, chunk_size=4)
    assert report.messages == 10
    assert status_counts(db_url, run_id) == {"sent": 4, "pending": 6}
    run = _run(db_url, run_id)
    assert run.status == "sending" and run.expanded_at is not None
    with session_scope(db_url) as session:
        session.execute(update(Message).where(Message.run_id == run_id).values(status="sent"))
        assert finish_if_done(session, run_id) is True


def test_an_expansion_that_ends_while_paused_resumes_to_sending(db_url: str) -> None:
    seed_list(db_url, "a", us_numbers(10))
    campaign_id, run_id = seed_campaign(db_url, ["a"])
    paused = False

    def pause_once(_: int) -> None:
        nonlocal paused
        if not paused:
            paused = True
            with session_scope(db_url) as other:
                pause_campaign(other, campaign_id)

    with session_scope(db_url) as session:
        expand_run(session, run_id, chunk_size=4, progress=pause_once)
    run = _run(db_url, run_id)
    assert run.status == "paused" and run.expanded_at is not None
    assert status_counts(db_url, run_id) == {"pending": 10}
    with session_scope(db_url) as session:
        assert resume_campaign(session, campaign_id) == [run_id]
    assert _run(db_url, run_id).status == "sending"


def test_an_expansion_still_running_after_a_cancel_writes_nothing_more(db_url: str) -> None:
    seed_list(db_url, "a", us_numbers(10))
    campaign_id, run_id = seed_campaign(db_url, ["a"])

    def cancel(_: int) -> None:
        with session_scope(db_url) as other:
            cancel_campaign(other, campaign_id)

    with session_scope(db_url) as session:
        expand_run(session, run_id, chunk_size=4, progress=cancel)
    assert status_counts(db_url, run_id) == {"cancelled": 4}
    with session_scope(db_url) as session:
        assert session.scalar(select(Run.status).where(Run.id == run_id)) == "cancelled"


def _lease(url: str, run_id: int, owner: str | None, until: datetime | None) -> None:
    with session_scope(url) as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(expansion_owner=owner, expansion_until=until)
        )


def test_a_run_is_handed_to_a_new_expansion_once_the_lease_of_the_last_one_lapses(
    db_url: str,
) -> None:
    seed_list(db_url, "a", us_numbers(10))
    _, run_id = seed_campaign(db_url, ["a"])
    settings = Settings(database_url=db_url)
    now = utcnow()
    # An expansion at work (its lease renewed a moment ago), as a worker killed mid-chunk
    # leaves it: no tick hands the run to a second one ...
    until = now + timedelta(seconds=LEASE_SECONDS)
    _lease(db_url, run_id, "a-worker", until)
    assert tick(settings, now=now).to_expand == []
    assert tick(settings, now=until - timedelta(seconds=0.1)).to_expand == []
    # ... until the lease lapses: a few seconds, not the old 20 s without activity.
    assert tick(settings, now=until + timedelta(seconds=0.1)).to_expand == [run_id]
    # The kick promises the expansion it enqueued: the next ticks wait for it.
    assert tick(settings, now=until + timedelta(seconds=1)).to_expand == []
    with session_scope(db_url) as session:
        report = expand_run(session, run_id, chunk_size=4)
    assert report.messages == 10


def test_an_expansion_that_lost_its_lease_to_another_stops_writing(db_url: str) -> None:
    seed_list(db_url, "a", us_numbers(10))
    _, run_id = seed_campaign(db_url, ["a"])

    def stalled_past_its_lease(_: int) -> None:
        # Another expansion took the run over meanwhile.
        _lease(db_url, run_id, "another", utcnow() + timedelta(minutes=1))

    with session_scope(db_url) as session:
        expand_run(session, run_id, chunk_size=4, progress=stalled_past_its_lease)
    assert status_counts(db_url, run_id) == {"pending": 4}
    assert _run(db_url, run_id).status == "expanding"
    # And while the other holds it, a third does nothing.
    with session_scope(db_url) as session:
        assert expand_run(session, run_id, chunk_size=4).messages == 4
    assert status_counts(db_url, run_id) == {"pending": 4}


@pytest.mark.parametrize("alive", [False, True])
def test_resume_hands_a_run_whose_expansion_died_to_a_new_one_at_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch, alive: bool
) -> None:
    from workers import control

    seed_list(db_url, "a", us_numbers(10))
    campaign_id, run_id = seed_campaign(db_url, ["a"])
    with session_scope(db_url) as session, pytest.raises(ExpansionDied):
        expand_run(session, run_id, chunk_size=4, progress=_pause(db_url, campaign_id))
    assert _run(db_url, run_id).status == "paused"
    if alive:  # still writing while paused: resume leaves it to finish
        _lease(db_url, run_id, "a-worker", utcnow() + timedelta(seconds=LEASE_SECONDS))
    else:  # killed while paused, its lease lapsed
        _lease(db_url, run_id, "a-worker", utcnow() - timedelta(seconds=1))
    expansions: list[int] = []
    kicks: list[int] = []
    monkeypatch.setattr(control, "_enqueue_expansion", expansions.append)
    monkeypatch.setattr(control, "_kick", kicks.append)
    control.resume(Settings(database_url=db_url), campaign_id)
    assert kicks == [run_id]
    assert expansions == ([] if alive else [run_id])


def _pause(url: str, campaign_id: int):  # type: ignore[no-untyped-def]
    """A progress callback: the campaign is paused after the first chunk, and the
    expansion dies at the second."""
    calls = 0

    def progress(_: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            with session_scope(url) as other:
                pause_campaign(other, campaign_id)
        else:
            raise ExpansionDied

    return progress


def test_an_expansion_whose_turn_is_over_stops_after_a_chunk_and_the_next_goes_on(
    db_url: str,
) -> None:
    """A worker with one slot: an expansion that has had its turn stops after the chunk it
    wrote (the run stays expanding, the rows written are sendable), so a queued dispatch
    turn may run; the next expansion takes up from there and finishes the run."""
    from sqlalchemy import func, select

    from campaigns.models import Message

    seed_list(db_url, "a", us_numbers(10))
    _, run_id = seed_campaign(db_url, ["a"])
    with session_scope(db_url) as session:
        first = expand_run(session, run_id, chunk_size=4, turn_seconds=0)
        written = session.scalar(select(func.count()).where(Message.run_id == run_id))
        run = session.get(Run, run_id)
        assert run is not None and run.status == "expanding" and run.expanded_at is None
    assert first.yielded and written == 4
    with session_scope(db_url) as session:
        rest = expand_run(session, run_id, chunk_size=4)
        run = session.get(Run, run_id)
        assert run is not None and run.status == "sending"
    assert not rest.yielded and rest.messages == 10 and rest.duplicates_removed == 0


def test_a_turn_that_ends_promises_the_run_to_the_next_turn(db_url: str) -> None:
    """The worker's expansion ends its first turn after its first chunk and leaves the run
    promised to the next turn, as a kick does: the tick hands it to no other expansion
    meanwhile, and the next turn takes it up and finishes it."""
    from clicksend.client import ClickSendClient
    from workers import runner

    seed_list(db_url, "a", us_numbers(10))
    _, run_id = seed_campaign(db_url, ["a"])
    settings = Settings(database_url=db_url)
    # Local lists and a body: no ClickSend request is made.
    client = ClickSendClient("http://127.0.0.1:9", "u", "k", timeout=1)
    kicked: list[int] = []
    with session_scope(db_url) as session:
        first = runner.expand(
            session,
            run_id,
            settings,
            client,
            on_first_chunk=lambda: kicked.append(1),
            turn_seconds=0,
        )
    assert first.yielded and kicked == [1]
    assert tick(settings).to_expand == []  # promised to the next turn
    with session_scope(db_url) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.status == "expanding" and run.expansion_owner is None
        rest = runner.expand(session, run_id, settings, client, turn_seconds=60)
        run = session.get(Run, run_id)
        assert run is not None and run.status == "sending"
    assert not rest.yielded and rest.messages == 10

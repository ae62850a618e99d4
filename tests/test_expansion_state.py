"""A run is complete only once its expansion has finished; an expansion that died is
redone on resume; a cancelled run's expansion writes nothing more. Plain functions, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
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

"""Campaign and run lifecycle."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message, Run
from campaigns.runs import (
    CampaignError,
    cancel_campaign,
    create_campaign,
    create_run,
    finish_if_done,
    get_campaign,
    pause_campaign,
    resume_campaign,
    start_campaign,
)
from tests.seed import definition, seed_campaign, seed_list, us_numbers


def test_unknown_list_is_refused_and_nothing_is_created(sqlite_url: str) -> None:
    seed_list(sqlite_url, "customers", us_numbers(1))
    with (
        session_scope(sqlite_url) as session,
        pytest.raises(CampaignError, match=r"audience\.lists: unknown list 'vips'"),
    ):
        create_campaign(session, definition(["customers", "vips"]))
    with session_scope(sqlite_url) as session:
        assert session.scalars(select(Run)).all() == []


def test_a_second_fire_of_the_same_occurrence_makes_no_run(db_url: str) -> None:
    seed_list(db_url, "a", us_numbers(1))
    at = utcnow()
    with session_scope(db_url) as session:
        campaign = create_campaign(session, definition(["a"]))
        first = create_run(session, campaign, at)
        second = create_run(session, campaign, at)
    assert first is not None and second is None


def test_start_only_from_draft(sqlite_url: str) -> None:
    seed_list(sqlite_url, "a", us_numbers(1))
    campaign_id, _ = seed_campaign(sqlite_url, ["a"])
    with session_scope(sqlite_url) as session, pytest.raises(CampaignError, match="not a draft"):
        start_campaign(session, campaign_id)


def test_pause_resume_cancel(sqlite_url: str) -> None:
    seed_list(sqlite_url, "a", us_numbers(4))
    campaign_id, run_id = seed_campaign(sqlite_url, ["a"])
    with session_scope(sqlite_url) as session:
        expand_run(session, run_id)
        assert pause_campaign(session, campaign_id) == [run_id]
    with session_scope(sqlite_url) as session:
        assert session.get(Run, run_id).status == "paused"  # type: ignore[union-attr]
        assert resume_campaign(session, campaign_id) == [run_id]
    with session_scope(sqlite_url) as session:
        assert session.get(Run, run_id).status == "sending"  # type: ignore[union-attr]
        with pytest.raises(CampaignError, match="not paused"):
            resume_campaign(session, campaign_id)
    with session_scope(sqlite_url) as session:
        assert cancel_campaign(session, campaign_id) == [run_id]
    with session_scope(sqlite_url) as session:
        statuses = set(session.scalars(select(Message.status).where(Message.run_id == run_id)))
        assert statuses == {"cancelled"}
        assert get_campaign(session, campaign_id).status == "cancelled"
        assert finish_if_done(session, run_id) is False  # cancelled runs are not 'completed'
        with pytest.raises(CampaignError, match="cannot pause"):
            pause_campaign(session, campaign_id)

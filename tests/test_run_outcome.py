"""How a run ends: one whose every message failed is not a plain "completed"; an
unscheduled campaign is finished when its one run ends."""

from __future__ import annotations

from sqlalchemy import insert

from campaigns.db import session_scope
from campaigns.models import Campaign, ContactList, Message, Run, table
from campaigns.runs import create_campaign, finish_if_done, set_run_status, start_campaign


def _run_with(db_url: str, statuses: list[str], schedule: dict[str, str] | None = None) -> int:
    with session_scope(db_url) as session:
        session.add(ContactList(name="l"))
        session.flush()
        definition = {
            "name": "c",
            "channel": "sms",
            "audience": {"lists": ["l"]},
            "message": {"body": "Hi"},
        }
        if schedule:
            definition["schedule"] = schedule  # type: ignore[assignment]
        campaign = create_campaign(session, definition)
        run = start_campaign(session, campaign.id)
        assert run is not None
        set_run_status(session, run.id, "sending", expected=("scheduled",))
        run.expanded_at = run.created_at
        session.execute(
            insert(table(Message)),
            [
                {
                    "run_id": run.id,
                    "phone": f"+1201555{i:04d}",
                    "status": s,
                    "error": "INVALID_RECIPIENT" if s == "failed" else None,
                }
                for i, s in enumerate(statuses)
            ],
        )
        return run.id


def test_a_run_whose_every_message_failed_is_failed(db_url: str) -> None:
    run_id = _run_with(db_url, ["failed", "failed", "suppressed"])
    with session_scope(db_url) as session:
        assert finish_if_done(session, run_id)
    with session_scope(db_url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert run.status == "failed"
        assert run.status_reason == "every message failed (2: INVALID_RECIPIENT)"


def test_a_run_with_some_sent_is_completed_and_its_campaign_finished(db_url: str) -> None:
    run_id = _run_with(db_url, ["sent", "failed"])
    with session_scope(db_url) as session:
        assert finish_if_done(session, run_id)
    with session_scope(db_url) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.status == "completed"
        assert run.status_reason == "1 of 2 messages failed"
        campaign = session.get(Campaign, run.campaign_id)
        assert campaign is not None and campaign.status == "finished"

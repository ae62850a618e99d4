"""One campaign that cannot be timed does not stop the scheduler's tick for the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Campaign, Message, Run
from campaigns.runs import create_campaign
from config.settings import Settings
from scheduler import tick as tick_module
from scheduler.tick import tick
from tests.seed import definition, seed_campaign, seed_list, us_numbers

NOW = datetime(2026, 12, 1, 9, 0, 30, tzinfo=UTC)


def _scheduled(url: str, name: str, schedule: dict[str, Any]) -> int:
    # Stored as an older version (or a direct database edit) could have stored it:
    # `campaign create` now refuses these schedules.
    with session_scope(url) as session:
        campaign = create_campaign(session, definition(["customers"], schedule=schedule, name=name))
        campaign.status, campaign.started_at = "active", NOW - timedelta(days=1)
        return campaign.id


def _campaign(url: str, campaign_id: int) -> Campaign:
    with session_scope(url) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign


def test_a_failing_campaign_is_marked_and_the_rest_of_the_tick_goes_on(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_list(db_url, "customers", us_numbers(3))
    never = _scheduled(db_url, "never", {"cron": "0 9 31 2 *"})
    forever = _scheduled(
        db_url, "forever", {"send_at": "2026-12-01T09:00Z", "expires_after": "99999999999w"}
    )
    explodes = _scheduled(db_url, "explodes", {"send_at": "2026-12-01T09:00Z"})
    good = _scheduled(db_url, "good", {"send_at": "2026-12-01T09:00Z"})
    # A run of another campaign with a claim whose lease has run out.
    _, stale_run = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, stale_run)
        session.execute(
            update(Message)
            .where(Message.run_id == stale_run)
            .values(status="claimed", claim_token="dead", lease_until=NOW - timedelta(minutes=5))
        )

    real_timing = tick_module.campaign_timing

    def timing(defn: Any) -> Any:
        if defn["name"] == "explodes":
            raise RuntimeError("database hiccup while timing")
        return real_timing(defn)

    monkeypatch.setattr(tick_module, "campaign_timing", timing)
    result = tick(Settings(database_url=db_url), now=NOW)

    assert result.leases_recovered == 3
    with session_scope(db_url) as session:
        assert session.scalars(select(Run.campaign_id).where(Run.campaign_id == good)).all()
    for campaign_id, field in ((never, "schedule.cron"), (forever, "schedule.expires_after")):
        campaign = _campaign(db_url, campaign_id)
        assert campaign.status == "paused"
        assert campaign.status_reason is not None and field in campaign.status_reason
    broken = _campaign(db_url, explodes)
    # A failure that is not the schedule's fault leaves the campaign active (the next tick
    # tries again) with the error stored.
    assert broken.status == "active"
    assert broken.error is not None and "database hiccup while timing" in broken.error


def test_campaign_status_shows_why_a_campaign_is_stuck(tmp_path: Path) -> None:
    from clarion.cli import app

    url = f"sqlite:///{tmp_path}/c.db"
    from campaigns.migrate import upgrade

    upgrade(url)
    seed_list(url, "customers", us_numbers(1))
    never = _scheduled(url, "never", {"cron": "0 9 31 2 *"})
    tick(Settings(database_url=url), now=NOW)
    result = CliRunner().invoke(
        app, ["campaign", "status", str(never)], env={"CLARION_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    assert "paused" in result.output
    assert "schedule.cron" in result.output and "never fires" in result.output


def test_the_api_shows_the_stored_error(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.apiclient import api_client

    seed_list(sqlite_url, "customers", us_numbers(1))
    explodes = _scheduled(sqlite_url, "explodes", {"send_at": "2026-12-01T09:00Z"})

    def timing(defn: Any) -> Any:
        raise RuntimeError("database hiccup while timing")

    monkeypatch.setattr(tick_module, "campaign_timing", timing)
    tick(Settings(database_url=sqlite_url), now=NOW)
    with api_client(sqlite_url) as client:
        answer = client.get(f"/api/v1/campaigns/{explodes}").json()
    assert answer["status"] == "active"
    assert answer["error"] == "RuntimeError: database hiccup while timing"

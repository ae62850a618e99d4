"""A provider that cannot be reached at all pauses the campaign with the reason (as a 401
does) instead of failing every message once its retries are used up; resumed once it is
back, the run sends everything."""

from __future__ import annotations

import time

from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Campaign, Run
from campaigns.runs import resume_campaign
from config.settings import Settings
from sandbox.server import start_in_thread
from tests.seed import seed_campaign, seed_list, status_counts, us_numbers
from workers.context import build_context


def _drain(dispatcher: object, run_id: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        action = dispatcher.dispatch_once(run_id).action  # type: ignore[attr-defined]
        if action in ("done", "stopped"):
            return str(action)
        time.sleep(0.02)
    raise AssertionError("the run did not settle")


def test_an_unreachable_provider_pauses_the_campaign(db_url: str) -> None:
    seed_list(db_url, "customers", us_numbers(5))
    campaign_id, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
    nowhere = Settings(
        database_url=db_url,
        sandbox_url="http://127.0.0.1:1/v3",
        max_attempts=3,
        retry_base_seconds=0.01,
        retry_max_seconds=0.05,
    )
    assert _drain(build_context(nowhere).dispatcher, run_id) == "stopped"
    with session_scope(db_url) as session:
        campaign = session.get(Campaign, campaign_id)
        run = session.get(Run, run_id)
        assert campaign is not None and run is not None
        assert campaign.status == "paused" and run.status == "paused"
        assert "cannot reach the provider" in (campaign.status_reason or "")
    assert status_counts(db_url, run_id) == {"pending": 5}

    sandbox = start_in_thread()
    try:
        with session_scope(db_url) as session:
            resume_campaign(session, campaign_id)
        back = Settings(database_url=db_url, sandbox_url=sandbox.base_url)
        assert _drain(build_context(back).dispatcher, run_id) == "done"
    finally:
        sandbox.stop()
    assert status_counts(db_url, run_id) == {"sent": 5}

"""Cancel before and after provider-side scheduling, against the sandbox over HTTP:
the ledger shows that cancelled messages are never delivered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from campaigns.cancel import cancel_at_provider
from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Campaign, Run
from campaigns.runs import cancel_campaign, create_campaign, start_campaign
from config.settings import Settings
from sandbox.server import SandboxHandle, start_in_thread
from scheduler.listing import waiting
from scheduler.rules import planner_for_run
from scheduler.tick import tick
from tests.seed import definition, seed_list, status_counts
from workers.context import cancel_campaign_at_provider, provider_client
from workers.dispatch import Dispatcher

PHONES = ["+12125550101", "+12125550102", "+12125550103"]


class Unlimited:
    def acquire(self, messages: int) -> float:
        return 0.0

    def penalise(self, retry_after: float | None) -> float:
        return 0.0


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread()
    yield handle
    handle.stop()


def _settings(url: str, sandbox: SandboxHandle, **kw: Any) -> Settings:
    return Settings(
        database_url=url,
        provider="sandbox",
        sandbox_url=sandbox.base_url,
        sandbox_username=sandbox.state.config.username,
        sandbox_api_key=SecretStr(sandbox.state.config.api_key),
        **kw,
    )


def _reminder_run(settings: Settings, channel: str = "sms") -> tuple[int, int, str]:
    """A reminder campaign due in three days, expanded and dispatched to the sandbox."""
    url = settings.database_url
    appointment = (utcnow() + timedelta(days=3)).isoformat()
    seed_list(url, "customers", PHONES, {"custom_1": appointment})
    extra: dict[str, Any] = {"channel": channel} if channel != "sms" else {}
    with session_scope(url) as session:
        defn = definition(
            ["customers"], schedule={"relative": {"field": "custom_1", "offset": "-1h"}}, **extra
        )
        if channel == "voice":
            defn["message"] = {"body": "Hi {first_name}, see you soon", "voice": "female"}
        cid = create_campaign(session, defn).id
    with session_scope(url) as session:
        assert start_campaign(session, cid) is None  # scheduled: the tick makes its run
    [run_id] = tick(settings).to_expand
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        key = run.key
        planner = planner_for_run(session, run, defn, settings)
        expand_run(session, run_id, planner=planner)
    client = provider_client(settings)
    dispatcher = Dispatcher(settings=settings, client=client, limiter=Unlimited())  # type: ignore[arg-type]
    for _ in range(5):
        if dispatcher.dispatch_once(run_id).action == "done":
            break
    client.close()
    return cid, run_id, key


def _ledger(sandbox: SandboxHandle, key: str) -> dict[str, Any]:
    answer = httpx.get(f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": key})
    return dict(answer.json())


@pytest.mark.parametrize("one_by_one", [False, True])
def test_cancel_after_provider_side_scheduling(
    sqlite_url: str, sandbox: SandboxHandle, one_by_one: bool
) -> None:
    settings = _settings(sqlite_url, sandbox)
    cid, run_id, key = _reminder_run(settings)
    # Handed over with a schedule three days out: the run is done on our side.
    assert status_counts(sqlite_url, run_id) == {"sent": 3}
    assert _ledger(sandbox, key)["accepted_total"] == 3
    with session_scope(sqlite_url) as session:
        assert waiting(session, run_id).at_provider == 3
    with session_scope(sqlite_url) as session:
        assert cancel_campaign(session, cid) == []  # nothing left here to stop
    with session_scope(sqlite_url) as session, provider_client(settings) as client:
        report = cancel_at_provider(session, client, cid, one_by_one=one_by_one)
    assert (report.held_here, report.at_provider) == (0, 3)
    assert report.to_json()["cancelled_at_provider"] == 3
    assert status_counts(sqlite_url, run_id) == {"cancelled": 3}
    with session_scope(sqlite_url) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.status == "cancelled"
    # Past the schedule: the sandbox never delivers them.
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 4 * 86400})
    ledger = _ledger(sandbox, key)
    assert (ledger["cancelled_total"], ledger["delivered_total"]) == (3, 0)
    # Again: harmless, nothing more to cancel.
    assert cancel_campaign_at_provider(settings, cid).at_provider == 0


def test_cancel_voice_at_the_provider(sqlite_url: str, sandbox: SandboxHandle) -> None:
    settings = _settings(sqlite_url, sandbox)
    cid, run_id, key = _reminder_run(settings, channel="voice")
    assert status_counts(sqlite_url, run_id) == {"sent": 3}
    with session_scope(sqlite_url) as session:
        cancel_campaign(session, cid)
    assert cancel_campaign_at_provider(settings, cid).at_provider == 3
    assert _ledger(sandbox, key)["cancelled_total"] == 3


def test_cancel_before_provider_side_scheduling(sqlite_url: str, sandbox: SandboxHandle) -> None:
    settings = _settings(sqlite_url, sandbox, scheduler_handover_seconds=0)
    cid, run_id, key = _reminder_run(settings)
    # Held here (no hand-over): nothing reached the provider yet.
    assert status_counts(sqlite_url, run_id) == {"pending": 3}
    with session_scope(sqlite_url) as session:
        assert cancel_campaign(session, cid) == [run_id]
    report = cancel_campaign_at_provider(settings, cid)
    assert (report.held_here, report.at_provider) == (3, 0)
    assert status_counts(sqlite_url, run_id) == {"cancelled": 3}
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 4 * 86400})
    assert _ledger(sandbox, key)["accepted_total"] == 0
    with session_scope(sqlite_url) as session:
        campaign = session.get(Campaign, cid)
        assert campaign is not None and campaign.status == "cancelled"


def test_one_by_one_cancel_goes_on_past_an_error_and_records_what_it_cancelled(
    sqlite_url: str, sandbox: SandboxHandle
) -> None:
    from sqlalchemy import select, update

    from campaigns.models import Message

    settings = _settings(sqlite_url, sandbox)
    cid, run_id, key = _reminder_run(settings)
    with session_scope(sqlite_url) as session:
        ids = list(
            session.scalars(select(Message.id).where(Message.run_id == run_id).order_by(Message.id))
        )
        # The provider does not know the second message (its cancel answers 404).
        session.execute(
            update(Message).where(Message.id == ids[1]).values(provider_message_id="NO-SUCH-ID")
        )
        cancel_campaign(session, cid)
    with session_scope(sqlite_url) as session, provider_client(settings) as client:
        report = cancel_at_provider(session, client, cid, one_by_one=True)
    assert report.at_provider == 2
    [outcome] = report.runs
    assert outcome.provider_error is not None and "1 of 3" in outcome.provider_error
    assert status_counts(sqlite_url, run_id) == {"cancelled": 2, "sent": 1}
    with session_scope(sqlite_url) as session:
        left = session.scalars(
            select(Message.provider_message_id).where(
                Message.run_id == run_id, Message.status == "sent"
            )
        ).all()
    assert left == ["NO-SUCH-ID"]
    assert _ledger(sandbox, key)["cancelled_total"] == 2

"""The SkillBoss notify path (one hub call per recipient) against the sandbox's hub front:
each call takes its own turn of the limit, rows are settled as their calls return, a
failure touches only its own row, and a pause stops the batch between calls."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from campaigns.db import session_scope
from campaigns.models import Campaign, Message, Run
from campaigns.runs import create_campaign, start_campaign
from clicksend.client import ClickSendClient
from clicksend.errors import NotFoundError
from clicksend.skillboss import SkillBossClient
from config.settings import Settings, get_settings
from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread
from tests.seed import seed_list, status_counts, us_numbers
from workers import runner
from workers.dispatch import Dispatcher
from workers.ratelimit import LocalRateLimiter


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread(SandboxConfig())
    try:
        yield handle
    finally:
        handle.stop()


class CountingLimiter(LocalRateLimiter):
    """Unlimited; records each turn taken, and runs ``on_turn`` before granting it."""

    def __init__(self) -> None:
        super().__init__(account="hub", requests_per_second=0, messages_per_second=0)
        self.turns: list[int] = []
        self.on_turn: Any = None

    def acquire(self, messages: int) -> float:
        if messages:
            self.turns.append(messages)
            if self.on_turn is not None:
                self.on_turn(len(self.turns))
        return super().acquire(messages)


def _notify_run(
    url: str, phones: list[str], sandbox: SandboxHandle, **extra: Any
) -> tuple[int, str]:
    seed_list(url, "a", phones)
    definition = {
        "name": "reminder",
        "channel": "sms",
        "provider": "skillboss",
        "audience": {"lists": ["a"]},
        "message": {"template_id": "tmpl_reminder", "variables": {"name": "{first_name}"}},
        **extra,
    }
    with session_scope(url) as session:
        campaign = create_campaign(session, definition)
        run = start_campaign(session, campaign.id)
        assert run is not None
        with ClickSendClient(sandbox.base_url, "sandbox", "sandbox-key", timeout=5) as client:
            runner.expand(session, run.id, get_settings(), client)
        return run.id, run.key


def _dispatcher(
    url: str, sandbox: SandboxHandle, limiter: LocalRateLimiter, **settings_kw: Any
) -> Dispatcher:
    settings = Settings(database_url=url, retry_base_seconds=0.001, **settings_kw)
    client = ClickSendClient(sandbox.base_url, "sandbox", "sandbox-key", timeout=5)
    hub = SkillBossClient(sandbox.root_url, "sandbox-skillboss-key", timeout=5)
    return Dispatcher(settings=settings, client=client, limiter=limiter, hub=hub)


def _ledger(sandbox: SandboxHandle, key: str) -> dict[str, Any]:
    return dict(
        httpx.get(
            f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": key}, timeout=10
        ).json()
    )


def _drain(dispatcher: Dispatcher, run_id: int) -> None:
    for _ in range(200):
        outcome = dispatcher.dispatch_once(run_id)
        if outcome.action in ("done", "stopped"):
            return
        with session_scope(dispatcher.settings.database_url) as session:
            session.execute(update(Message).values(not_before=None))


def test_each_hub_call_takes_its_own_turn_of_the_limit(
    sqlite_url: str, sandbox: SandboxHandle
) -> None:
    phones = us_numbers(12)
    run_id, key = _notify_run(sqlite_url, phones, sandbox)
    limiter = CountingLimiter()
    _drain(_dispatcher(sqlite_url, sandbox, limiter), run_id)
    assert limiter.turns == [1] * 12
    assert _ledger(sandbox, key)["by_recipient"] == {p: 1 for p in phones}
    assert status_counts(sqlite_url, run_id) == {"sent": 12}


def test_a_5xx_fails_only_its_own_row_and_the_rest_are_sent(
    sqlite_url: str, sandbox: SandboxHandle
) -> None:
    phones = us_numbers(40)
    run_id, key = _notify_run(sqlite_url, phones, sandbox)
    sandbox.state.reconfigure({"error_rate": 0.1, "seed": 5})
    _drain(_dispatcher(sqlite_url, sandbox, CountingLimiter()), run_id)
    errors = httpx.get(f"{sandbox.root_url}/_sandbox/stats", timeout=10).json()["errors_injected"]
    assert errors > 0
    counts = status_counts(sqlite_url, run_id)
    # A 5xx leaves its own message's outcome unknown (no history to look in: failed, never
    # resent); the recipients after it in the batch were never attempted and are sent.
    assert counts == {"sent": 40 - errors, "failed": errors}
    ledger = _ledger(sandbox, key)
    assert ledger["duplicates"] == []
    assert len(ledger["by_recipient"]) == 40 - errors


def test_a_pause_stops_the_batch_between_calls(sqlite_url: str, sandbox: SandboxHandle) -> None:
    phones = us_numbers(30)
    run_id, key = _notify_run(sqlite_url, phones, sandbox)
    limiter = CountingLimiter()

    def pause_at_fifth(turn: int) -> None:
        if turn == 5:
            with session_scope(sqlite_url) as session:
                campaign_id = session.scalar(select(Run.campaign_id).where(Run.id == run_id))
                session.execute(update(Run).where(Run.id == run_id).values(status="paused"))
                session.execute(
                    update(Campaign).where(Campaign.id == campaign_id).values(status="paused")
                )

    limiter.on_turn = pause_at_fifth
    dispatcher = _dispatcher(sqlite_url, sandbox, limiter)
    assert dispatcher.dispatch_once(run_id).action == "stopped"
    # The fifth call had its turn when the pause came; nothing after it left.
    assert len(_ledger(sandbox, key)["by_recipient"]) == 4
    with session_scope(sqlite_url) as session:
        rows = session.execute(
            select(Message.status, Message.attempts).where(Message.run_id == run_id)
        ).all()
    assert sorted(set(rows)) == [("pending", 0), ("sent", 1)]
    assert status_counts(sqlite_url, run_id) == {"sent": 4, "pending": 26}


def test_a_rejected_call_fails_only_its_own_row(
    sqlite_url: str, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call the hub refuses as a whole (a 404) fails its own recipient; the recipients
    after it in the batch were never attempted and go back to pending, not to failed."""
    phones = us_numbers(5)
    run_id, _ = _notify_run(sqlite_url, phones, sandbox)
    dispatcher = _dispatcher(sqlite_url, sandbox, CountingLimiter())
    assert dispatcher.hub is not None
    real = dispatcher.hub.notify_send
    calls: list[str] = []

    def refuse_the_third(template_id: str, to: str, *args: Any, **kw: Any) -> dict[str, Any]:
        calls.append(to)
        if len(calls) == 3:
            raise NotFoundError("no such template", status_code=404)
        return real(template_id, to, *args, **kw)

    monkeypatch.setattr(dispatcher.hub, "notify_send", refuse_the_third)
    dispatcher.dispatch_once(run_id)
    assert len(calls) == 3
    with session_scope(sqlite_url) as session:
        rows = dict(
            session.execute(
                select(Message.phone, Message.status).where(Message.run_id == run_id)
            ).all()
        )
    assert [rows[p] for p in calls] == ["sent", "sent", "failed"]
    assert status_counts(sqlite_url, run_id) == {"sent": 2, "failed": 1, "pending": 2}


def test_a_run_cap_holds_though_the_hub_answers_no_price(
    db_url: str, sandbox: SandboxHandle
) -> None:
    """The hub's answer carries no price, so each message sent through it counts toward
    the run's spend at the price table's estimate (0.025 here); else the spend stayed at
    nothing and a capped run went on past its cap."""
    phones = us_numbers(20)
    run_id, key = _notify_run(db_url, phones, sandbox, budget={"run": "0.30"})
    _drain(_dispatcher(db_url, sandbox, CountingLimiter(), batch_size=5), run_id)
    sent = len(_ledger(sandbox, key)["by_recipient"])
    with session_scope(db_url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        status, reason, spent = run.status, run.status_reason or "", run.spent
    # Two batches of five (0.25); the third would take the spend to 0.375.
    assert sent == 10
    assert spent == Decimal("0.2500")
    assert status == "paused"
    assert "budget: the run cap of 0.30 would be crossed" in reason

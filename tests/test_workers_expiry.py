"""A run past its deadline (expires_after) with messages whose outcome is unknown or
still claimed: they are looked up at the provider (the sandbox, over HTTP), what was not
sent is expired, the run finishes, and the next occurrence of an `overlap: skip` cron
campaign is sent rather than skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from campaigns.claims import Claimed
from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.definition import load_definition
from campaigns.expand import expand_run
from campaigns.models import Campaign, Message, Run
from campaigns.runs import create_campaign
from clicksend.client import ClickSendClient
from config.settings import Settings
from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread
from scheduler.tick import tick
from tests.seed import definition, seed_list, status_counts, us_numbers
from workers.context import account_limiter
from workers.dispatch import Dispatcher
from workers.sender import send_batch

pytestmark = pytest.mark.services


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread(SandboxConfig(api_key="expiry-key"))
    yield handle
    handle.stop()


def _rows(url: str, run_id: int) -> list[Claimed]:
    with session_scope(url) as session:
        return [
            Claimed(id=m.id, phone=m.phone, body=m.body, attempts=m.attempts)
            for m in session.scalars(
                select(Message).where(Message.run_id == run_id).order_by(Message.id)
            )
        ]


def _set(url: str, ids: list[int], **values: object) -> None:
    with session_scope(url) as session:
        session.execute(update(Message).where(Message.id.in_(ids)).values(**values))


def _run_status(url: str, run_id: int) -> str | None:
    with session_scope(url) as session:
        return session.scalar(select(Run.status).where(Run.id == run_id))


def test_an_expired_run_settles_its_unknown_and_claimed_rows_and_finishes(
    pg_url: str, sandbox: SandboxHandle
) -> None:
    phones = us_numbers(8)
    seed_list(pg_url, "customers", phones)
    # Hourly, at the minute just gone: one occurrence is due now and the next is an hour
    # away, so the run cannot meet a second occurrence (every minute, it did whenever the
    # minute turned during the test).
    last_minute = (utcnow() - timedelta(minutes=1)).minute
    schedule = {"cron": f"{last_minute} * * * *", "overlap": "skip", "expires_after": "30s"}
    with session_scope(pg_url) as session:
        campaign = create_campaign(session, definition(["customers"], schedule=schedule))
        campaign.status, campaign.started_at = "active", utcnow() - timedelta(minutes=2)
        campaign_id = campaign.id
        defn = load_definition(campaign.definition)
    settings = Settings(
        database_url=pg_url,
        sandbox_url=sandbox.base_url,
        sandbox_api_key="expiry-key",
        reconcile_after_seconds=0,
        reconcile_grace_seconds=0,
        lease_seconds=5,
        http_timeout_seconds=2,
    )
    now = utcnow()
    tick(settings, now=now)
    with session_scope(pg_url) as session:
        run = session.scalars(select(Run).where(Run.campaign_id == campaign_id)).one()
        run_id, key = run.id, run.key
        expand_run(session, run_id)
    rows = _rows(pg_url, run_id)
    sent_unknown, lost_unknown = rows[0:2], rows[2:4]
    sent_claimed, lost_claimed = rows[4:5], rows[5:6]
    # These left (the provider has them) but their answers were lost.
    with ClickSendClient(sandbox.base_url, "sandbox", "expiry-key", timeout=10) as client:
        send_batch(client, defn, key, [*sent_unknown, *sent_claimed])
    attempted = utcnow()
    _set(
        pg_url,
        [r.id for r in [*sent_unknown, *lost_unknown]],
        status="unknown",
        attempted_at=attempted,
    )
    # Claimed by a worker that died: the lease runs out after the deadline.
    _set(
        pg_url,
        [r.id for r in [*sent_claimed, *lost_claimed]],
        status="claimed",
        claim_token="dead-worker",
        attempted_at=attempted,
        lease_until=attempted + timedelta(seconds=1),
    )
    with session_scope(pg_url) as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(expires_at=attempted - timedelta(seconds=1))
        )
    time.sleep(1.5)  # past the dead worker's lease

    with ClickSendClient(sandbox.base_url, "sandbox", "expiry-key", timeout=10) as client:
        dispatcher = Dispatcher(settings=settings, client=client, limiter=account_limiter(settings))
        for _ in range(20):
            result = tick(settings)
            for kicked in [run_id, *result.to_dispatch]:
                dispatcher.dispatch_once(kicked)
            if _run_status(pg_url, run_id) != "sending":
                break
            time.sleep(0.2)

    assert _run_status(pg_url, run_id) == "completed"
    assert status_counts(pg_url, run_id) == {"sent": 3, "expired": 5}
    with session_scope(pg_url) as session:
        found = set(
            session.scalars(
                select(Message.phone).where(Message.run_id == run_id, Message.status == "sent")
            )
        )
    assert found == {r.phone for r in [*sent_unknown, *sent_claimed]}

    # The next occurrence is sent, not skipped because the expired run was still open.
    tick(settings, now=utcnow() + timedelta(hours=1))
    with session_scope(pg_url) as session:
        statuses = list(
            session.scalars(
                select(Run.status).where(Run.campaign_id == campaign_id).order_by(Run.id)
            )
        )
        assert session.get(Campaign, campaign_id) is not None
    assert statuses[0] == "completed"
    assert "skipped" not in statuses[1:] and len(statuses) == 2


def test_a_cancelled_run_still_looks_up_its_unknown_rows(
    pg_url: str, sandbox: SandboxHandle
) -> None:
    from campaigns.runs import cancel_campaign
    from tests.seed import seed_campaign

    seed_list(pg_url, "customers", us_numbers(6))
    campaign_id, run_id = seed_campaign(pg_url, ["customers"])
    settings = Settings(
        database_url=pg_url,
        sandbox_url=sandbox.base_url,
        sandbox_api_key="expiry-key",
        reconcile_after_seconds=0,
        reconcile_grace_seconds=0,
        lease_seconds=5,
        http_timeout_seconds=2,
    )
    with session_scope(pg_url) as session:
        expand_run(session, run_id)
        run = session.get(Run, run_id)
        assert run is not None
        key = run.key
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        defn = load_definition(campaign.definition)
    rows = _rows(pg_url, run_id)
    with ClickSendClient(sandbox.base_url, "sandbox", "expiry-key", timeout=10) as client:
        send_batch(client, defn, key, rows[0:2])
    attempted = utcnow()
    # Two left (their answers were lost), one did not; one is held by a worker that died.
    _set(pg_url, [r.id for r in rows[0:3]], status="unknown", attempted_at=attempted)
    _set(
        pg_url,
        [rows[3].id],
        status="claimed",
        claim_token="dead-worker",
        attempted_at=attempted,
        lease_until=attempted + timedelta(seconds=1),
    )
    with session_scope(pg_url) as session:
        assert cancel_campaign(session, campaign_id) == [run_id]
    time.sleep(1.5)  # past the dead worker's lease
    # With no dispatch chain left, the scheduler's tick kicks one for the look-ups.
    assert tick(settings, now=utcnow() + timedelta(minutes=1)).to_dispatch == [run_id]

    with ClickSendClient(sandbox.base_url, "sandbox", "expiry-key", timeout=10) as client:
        dispatcher = Dispatcher(settings=settings, client=client, limiter=account_limiter(settings))
        for _ in range(20):
            tick(settings)
            dispatcher.dispatch_once(run_id)
            if not {"unknown", "claimed"} & set(status_counts(pg_url, run_id)):
                break
            time.sleep(0.2)

    # The counts are true: what the provider has is 'sent', the rest 'cancelled'.
    assert status_counts(pg_url, run_id) == {"sent": 2, "cancelled": 4}
    assert _run_status(pg_url, run_id) == "cancelled"


class ExpansionDied(Exception):
    pass


def _expiring_run(pg_url: str, sandbox: SandboxHandle) -> tuple[Settings, int]:
    seed_list(pg_url, "customers", us_numbers(12))
    schedule = {"cron": "* * * * *", "expires_after": "1h"}
    with session_scope(pg_url) as session:
        campaign = create_campaign(session, definition(["customers"], schedule=schedule))
        campaign.status, campaign.started_at = "active", utcnow() - timedelta(minutes=2)
        campaign_id = campaign.id
    settings = Settings(
        database_url=pg_url,
        sandbox_url=sandbox.base_url,
        sandbox_api_key="expiry-key",
        reconcile_after_seconds=0,
        reconcile_grace_seconds=0,
        lease_seconds=5,
        http_timeout_seconds=2,
    )
    [run_id] = tick(settings).to_expand
    assert run_id == _run_id(pg_url, campaign_id)
    return settings, run_id


def _run_id(url: str, campaign_id: int) -> int:
    with session_scope(url) as session:
        return int(session.scalars(select(Run.id).where(Run.campaign_id == campaign_id)).one())


def _deadline_passes(url: str, run_id: int) -> None:
    with session_scope(url) as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(expires_at=utcnow() - timedelta(seconds=1))
        )


def _dispatch_until_finished(settings: Settings, sandbox: SandboxHandle, run_id: int) -> None:
    with ClickSendClient(sandbox.base_url, "sandbox", "expiry-key", timeout=10) as client:
        dispatcher = Dispatcher(settings=settings, client=client, limiter=account_limiter(settings))
        for _ in range(10):
            result = tick(settings)
            for kicked in {run_id, *result.to_dispatch}:
                dispatcher.dispatch_once(kicked)
            if _run_status(settings.database_url, run_id) not in ("expanding", "sending"):
                break
            time.sleep(0.2)
    assert _run_status(settings.database_url, run_id) == "completed"


def test_a_run_past_its_deadline_stops_expanding_and_finishes(
    pg_url: str, sandbox: SandboxHandle
) -> None:
    settings, run_id = _expiring_run(pg_url, sandbox)
    chunks = 0

    def deadline_passes(_: int) -> None:
        nonlocal chunks
        chunks += 1
        if chunks == 1:
            _deadline_passes(pg_url, run_id)
            tick(settings)  # the scheduler's tick, while the expansion goes on

    with session_scope(pg_url) as session:
        expand_run(session, run_id, chunk_size=4, progress=deadline_passes)
    # Nothing more is written past the deadline: the rows that exist are expired.
    assert status_counts(pg_url, run_id) == {"pending": 4}
    _dispatch_until_finished(settings, sandbox, run_id)
    assert status_counts(pg_url, run_id) == {"expired": 4}


def test_a_run_past_its_deadline_whose_expansion_died_finishes(
    pg_url: str, sandbox: SandboxHandle
) -> None:
    settings, run_id = _expiring_run(pg_url, sandbox)

    def dies(_: int) -> None:
        raise ExpansionDied

    with session_scope(pg_url) as session, pytest.raises(ExpansionDied):
        expand_run(session, run_id, chunk_size=4, progress=dies)
    _deadline_passes(pg_url, run_id)
    # No expansion is needed to end it: the run finishes with what was written.
    _dispatch_until_finished(settings, sandbox, run_id)
    assert status_counts(pg_url, run_id) == {"expired": 4}

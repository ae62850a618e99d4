"""Budget caps, the canary and the frequency cap, in the dispatch of a run against a
scripted provider (real databases, no Celery)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from campaigns.budget import set_budget
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Campaign, Message, Run
from campaigns.runs import (
    create_campaign,
    create_run,
    get_campaign,
    resume_campaign,
    start_campaign,
)
from config.settings import Settings
from tests.fakes import FakeProvider
from tests.seed import definition, seed_campaign, seed_list, status_counts, us_numbers
from tests.test_workers_dispatch import RecordingLimiter
from workers.dispatch import Dispatcher


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _chain(
    settings: Settings, provider: FakeProvider, limiter: RecordingLimiter, clock: Clock
) -> Dispatcher:
    """One dispatch chain's dispatcher, when a test runs two against the same provider."""
    return Dispatcher(
        settings=settings,
        client=provider,  # type: ignore[arg-type]
        limiter=limiter,  # type: ignore[arg-type]
        sleep=lambda s: None,
        clock=clock,
    )


def _dispatcher(url: str, clock: Clock | None = None, **settings_kw: Any) -> Any:
    provider = FakeProvider()
    limiter = RecordingLimiter()
    settings = Settings(database_url=url, reconcile_after_seconds=0, **settings_kw)
    dispatcher = Dispatcher(
        settings=settings,
        client=provider,  # type: ignore[arg-type]
        limiter=limiter,  # type: ignore[arg-type]
        sleep=lambda s: None,
        clock=clock or Clock(),
    )
    return dispatcher, provider, limiter


def _setup(url: str, count: int, **extra: Any) -> tuple[int, int, list[str]]:
    phones = us_numbers(count)
    seed_list(url, "customers", phones)
    campaign_id, run_id = seed_campaign(url, ["customers"], **extra)
    with session_scope(url) as session:
        expand_run(session, run_id)
    return campaign_id, run_id, phones


def _drain(dispatcher: Dispatcher, run_id: int, clock: Clock, limit: int = 60) -> list[str]:
    """Dispatch until done or stopped; a wait moves the clock on by its length."""
    actions = []
    for _ in range(limit):
        outcome = dispatcher.dispatch_once(run_id)
        actions.append(outcome.action)
        if outcome.action in ("done", "stopped"):
            break
        if outcome.action == "wait":
            clock.now += timedelta(seconds=outcome.delay)
    return actions


def _run(url: str, run_id: int) -> Run:
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


# -- budget ---------------------------------------------------------------------------


def test_run_pauses_before_the_batch_that_would_cross_its_cap(db_url: str) -> None:
    # 25 recipients in batches of 10 at 0.025 each: 0.25 a batch. With a cap of 0.60 the
    # third batch (0.50 + 0.25 > 0.60) must not leave.
    campaign_id, run_id, _ = _setup(db_url, 25, budget={"run": "0.60"})
    clock = Clock()
    dispatcher, provider, limiter = _dispatcher(db_url, clock, batch_size=10)
    actions = _drain(dispatcher, run_id, clock)
    assert actions == ["again", "again", "stopped"]
    assert provider.requests == 2 and limiter.granted == [10, 10]
    assert status_counts(db_url, run_id) == {"sent": 20, "pending": 5}
    run = _run(db_url, run_id)
    assert run.status == "paused" and run.spent == Decimal("0.5000")
    assert run.status_reason is not None
    assert "run cap of 0.60" in run.status_reason and "spent 0.5000" in run.status_reason
    with session_scope(db_url) as session:
        assert get_campaign(session, campaign_id).status_reason == run.status_reason
        # Raised, then resumed: the rest goes.
        set_budget(session, campaign_id, run=Decimal("1.00"))
        resume_campaign(session, campaign_id)
    assert _drain(dispatcher, run_id, clock)[-1] == "done"
    assert status_counts(db_url, run_id) == {"sent": 25}
    assert _run(db_url, run_id).spent == Decimal("0.6250")


def test_a_price_table_below_the_providers_price_does_not_let_a_run_cross_its_cap(
    db_url: str,
) -> None:
    # The provider charges 0.025 a message, the local table says 0.0125: batches of 10 are
    # 0.25 charged and estimated at 0.125. With a cap of 0.70, the table alone lets the
    # third batch leave (0.50 + 0.125 <= 0.70) and the run is charged 0.75. Once the
    # provider's price of a batch is known, the next batches are estimated at it.
    campaign_id, run_id, _ = _setup(db_url, 40, budget={"run": "0.70"})
    clock = Clock()
    dispatcher, provider, _ = _dispatcher(
        db_url, clock, batch_size=10, price_table='{"sms": {"default": 0.0125}}'
    )
    assert _drain(dispatcher, run_id, clock) == ["again", "again", "stopped"]
    assert provider.requests == 2
    run = _run(db_url, run_id)
    assert run.status == "paused" and run.spent == Decimal("0.5000")
    assert run.status_reason is not None
    # The batch that did not leave, at the provider's price (twice the table's).
    assert "costs about 0.2500" in run.status_reason
    # A raised cap and a resume: the rest goes, at the price learnt.
    with session_scope(db_url) as session:
        set_budget(session, campaign_id, run=Decimal("1.00"))
        resume_campaign(session, campaign_id)
    assert _drain(dispatcher, run_id, clock)[-1] == "done"
    assert _run(db_url, run_id).spent == Decimal("1.0000")


def test_until_a_price_is_learnt_one_batch_at_a_time_leaves(db_url: str) -> None:
    """Two chains of a capped run: while no answer has taught the run the provider's price,
    a second batch waits for the first's instead of leaving on the table's price. Here
    (the provider 0.025 a message, the table 0.0125, batches of 10, a cap of 0.40) both
    first batches leaving together were charged 0.50."""
    _, run_id, _ = _setup(db_url, 40, budget={"run": "0.40"})
    clock = Clock()
    provider = FakeProvider()
    settings = Settings(
        database_url=db_url,
        reconcile_after_seconds=0,
        batch_size=10,
        price_table='{"sms": {"default": 0.0125}}',
    )

    def dispatcher(limiter: RecordingLimiter) -> Dispatcher:
        return _chain(settings, provider, limiter, clock)

    other = dispatcher(RecordingLimiter())
    waited: list[str] = []
    # The second chain's batch is claimed and checked while the first's is about to leave.
    this = dispatcher(
        _InterleavingLimiter(lambda: waited.append(other.dispatch_once(run_id).action))
    )
    assert this.dispatch_once(run_id).action == "again"
    assert waited == ["wait"]
    assert provider.requests == 1
    # Then at the price learnt from the first batch (0.25 each), the next would cross it.
    assert _drain(other, run_id, clock)[-1] == "stopped"
    run = _run(db_url, run_id)
    assert run.status == "paused"
    assert run.spent == Decimal("0.2500")
    assert status_counts(db_url, run_id) == {"sent": 10, "pending": 30}


def test_campaign_cap_counts_every_run(sqlite_url: str) -> None:
    # A recurring campaign: its cap holds over all its runs.
    seed_list(sqlite_url, "customers", us_numbers(10))
    clock = Clock()
    with session_scope(sqlite_url) as session:
        campaign = create_campaign(
            session,
            definition(["customers"], budget={"campaign": "0.40"}, schedule={"cron": "0 9 * * *"}),
        )
        assert start_campaign(session, campaign.id) is None  # the scheduler makes the runs
        first = create_run(session, campaign, clock.now - timedelta(days=1))
        second = create_run(session, campaign, clock.now)
        assert first is not None and second is not None
        first_id, second_id = first.id, second.id
    with session_scope(sqlite_url) as session:
        expand_run(session, first_id)
        expand_run(session, second_id)
    dispatcher, provider, _ = _dispatcher(sqlite_url, clock)
    assert _drain(dispatcher, first_id, clock)[-1] == "done"  # 0.25 of 0.40
    assert _drain(dispatcher, second_id, clock) == ["stopped"]
    assert provider.requests == 1
    reason = _run(sqlite_url, second_id).status_reason or ""
    assert "campaign cap of 0.40" in reason and "spent 0.2500" in reason


def test_spend_is_the_providers_price(sqlite_url: str) -> None:
    _, run_id, phones = _setup(sqlite_url, 4)
    clock = Clock()
    dispatcher, provider, _ = _dispatcher(sqlite_url, clock)
    provider.script = [{phones[0]: "INVALID_RECIPIENT"}]  # refused: price 0
    _drain(dispatcher, run_id, clock)
    assert _run(sqlite_url, run_id).spent == Decimal("0.0750")


# -- canary ---------------------------------------------------------------------------


def test_canary_pauses_when_its_slice_fails_too_often(db_url: str) -> None:
    canary = {"first": 10, "wait": "5m", "max_failure_rate": "10%"}
    campaign_id, run_id, phones = _setup(db_url, 100, canary=canary)
    clock = Clock()
    dispatcher, provider, limiter = _dispatcher(db_url, clock)
    provider.script = [{phones[0]: "INVALID_RECIPIENT", phones[1]: "INVALID_RECIPIENT"}]
    actions = _drain(dispatcher, run_id, clock)
    assert limiter.granted == [10]  # the slice, then nothing
    assert actions[-1] == "stopped"
    assert status_counts(db_url, run_id) == {"sent": 8, "failed": 2, "pending": 90}
    run = _run(db_url, run_id)
    assert run.status == "paused" and run.canary_state == "failed"
    assert run.status_reason == (
        "canary: 2 of 10 messages failed (20.0%), more than the 10.0% allowed; "
        "resume to send the rest anyway"
    )
    # The wait was served: the verdict came 5 minutes after the slice went.
    assert clock.now - Clock().now >= timedelta(minutes=5)
    with session_scope(db_url) as session:
        resume_campaign(session, campaign_id)
    assert _drain(dispatcher, run_id, clock)[-1] == "done"
    assert status_counts(db_url, run_id) == {"sent": 98, "failed": 2}
    assert _run(db_url, run_id).canary_state == "passed"


def test_canary_goes_on_when_the_slice_is_healthy(sqlite_url: str) -> None:
    _, run_id, _ = _setup(sqlite_url, 50, canary={"first": "10%", "wait": "1m"})
    clock = Clock()
    dispatcher, _, limiter = _dispatcher(sqlite_url, clock, batch_size=20)
    actions = _drain(dispatcher, run_id, clock)
    assert actions[-1] == "done"
    assert limiter.granted == [5, 20, 20, 5]  # 10% of 50 first, then full batches
    assert status_counts(sqlite_url, run_id) == {"sent": 50}
    assert _run(sqlite_url, run_id).canary_state == "passed"


def test_canary_counts_failed_receipts(sqlite_url: str) -> None:
    _, run_id, _ = _setup(sqlite_url, 40, canary={"first": 4, "wait": "10m"})
    clock = Clock()
    dispatcher, _, limiter = _dispatcher(sqlite_url, clock)
    assert dispatcher.dispatch_once(run_id).action == "again"  # the slice went
    waiting = dispatcher.dispatch_once(run_id)
    assert (waiting.action, waiting.delay) == ("wait", 600)
    # During the wait a receipt says one of the four was not delivered (status 301).
    with session_scope(sqlite_url) as session:
        first = session.scalars(select(Message).where(Message.status == "sent")).first()
        assert first is not None
        first.delivery_status = "failed"
    clock.now += timedelta(minutes=10)
    assert dispatcher.dispatch_once(run_id).action == "stopped"
    assert "1 of 4 messages failed (25.0%)" in (_run(sqlite_url, run_id).status_reason or "")
    assert limiter.granted == [4]


def test_canary_counts_a_slice_claimed_by_another_worker(sqlite_url: str) -> None:
    """Another worker has claimed part of the slice and not sent it yet: this one claims
    only the rest, so the slice is not claimed twice over."""
    from campaigns import claims

    _, run_id, _ = _setup(sqlite_url, 40, canary={"first": 10, "wait": "10m"})
    clock = Clock()
    dispatcher, _, limiter = _dispatcher(sqlite_url, clock)
    with session_scope(sqlite_url) as session:
        lease = clock.now + timedelta(minutes=2)
        assert (
            len(
                claims.claim_batch(
                    session, run_id, 6, token="other", lease_until=lease, now=clock.now
                )
            )
            == 6
        )
    assert dispatcher.dispatch_once(run_id).action == "again"
    assert limiter.granted == [4]
    assert status_counts(sqlite_url, run_id) == {"claimed": 6, "sent": 4, "pending": 30}


# -- frequency cap ----------------------------------------------------------------------


def _earlier_messages(url: str, sends: list[tuple[str, datetime]]) -> None:
    """Messages other campaigns sent before (a campaign and run for each)."""
    with session_scope(url) as session:
        for i, (phone, at) in enumerate(sends):
            other = Campaign(name=f"other-{i}", channel="sms", definition={}, status="finished")
            session.add(other)
            session.flush()
            run = Run(campaign_id=other.id, occurrence=at, key=f"other-{i}", status="completed")
            session.add(run)
            session.flush()
            session.execute(
                insert(Message),
                [
                    {
                        "run_id": run.id,
                        "phone": phone,
                        "body": "earlier",
                        "status": "sent",
                        "sent_at": at,
                    }
                ],
            )


def test_frequency_cap_defers_over_all_campaigns(db_url: str) -> None:
    clock = Clock()
    phones = us_numbers(3)
    hour = timedelta(hours=1)
    _earlier_messages(
        db_url,
        [
            (phones[0], clock.now - 20 * hour),
            (phones[0], clock.now - 2 * hour),
            (phones[1], clock.now - 3 * hour),  # one only: under the cap
            (phones[2], clock.now - 30 * hour),  # outside the window
            (phones[2], clock.now - 26 * hour),
        ],
    )
    seed_list(db_url, "customers", phones)
    _, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
    dispatcher, provider, _ = _dispatcher(db_url, clock, frequency_cap="2/24h")
    assert dispatcher.dispatch_once(run_id).action == "again"
    assert sorted(m["to"] for m in provider.sent) == sorted(phones[1:])
    with session_scope(db_url) as session:
        held = session.scalars(
            select(Message).where(Message.run_id == run_id, Message.phone == phones[0])
        ).one()
        assert held.status == "pending"
        # Free once the older of the two leaves the 24-hour window: 4 hours from now.
        assert held.not_before is not None
        assert held.not_before.astimezone(UTC) == clock.now + 4 * hour
        assert held.error == "frequency cap: 2 messages in the last 1d"
    clock.now += 4 * hour
    assert _drain(dispatcher, run_id, clock)[-1] == "done"
    assert provider.count_to(phones[0]) == 1


class _InterleavingLimiter(RecordingLimiter):
    """Runs ``between`` once, at the first grant: after this chain's checks, before its
    request leaves (where another worker's whole batch can happen)."""

    def __init__(self, between: Any) -> None:
        super().__init__()
        self.between = between

    def acquire(self, messages: int) -> float:
        between, self.between = self.between, None
        if between is not None:
            between()
        return super().acquire(messages)


def _two_runs_at_once(
    url: str, provider: FakeProvider, policy: str = "defer"
) -> tuple[list[str], dict[tuple[int, str], datetime]]:
    """Two campaigns reach the same three numbers at once, under a cap of one a day: the
    second run's whole first batch goes while the first run's batch is past its checks
    but not sent yet. Then both runs are sent to the end; returns when each (run, number)
    was sent (runs in start order)."""
    clock = Clock()
    phones = us_numbers(3)
    seed_list(url, "customers", phones)
    _, first = seed_campaign(url, ["customers"], name="blast")
    _, second = seed_campaign(url, ["customers"], name="reminder")
    for run_id in (first, second):
        with session_scope(url) as session:
            expand_run(session, run_id)
    settings = Settings(
        database_url=url,
        reconcile_after_seconds=0,
        frequency_cap="1/24h",
        frequency_policy=policy,
    )

    def dispatcher(limiter: RecordingLimiter) -> Dispatcher:
        return _chain(settings, provider, limiter, clock)

    other = dispatcher(RecordingLimiter())
    this = dispatcher(_InterleavingLimiter(lambda: other.dispatch_once(second)))
    this.dispatch_once(first)
    # The race itself: no number got a second message within the day.
    assert max(provider.count_to(phone) for phone in phones) == 1
    assert _drain(other, second, clock)[-1] == "done"
    assert _drain(this, first, clock)[-1] == "done"
    with session_scope(url) as session:
        sent_at = {
            (1 if run_id == first else 2, phone): at.astimezone(UTC)
            for run_id, phone, at in session.execute(
                select(Message.run_id, Message.phone, Message.sent_at).where(
                    Message.status == "sent"
                )
            )
        }
    return phones, sent_at


def test_frequency_cap_counts_a_message_another_run_has_in_flight(db_url: str) -> None:
    """The second run's check must count the first run's message, claimed and past its
    own check but not sent yet."""
    provider = FakeProvider()
    phones, sent_at = _two_runs_at_once(db_url, provider)
    for phone in phones:
        assert provider.count_to(phone) == 2, phone
        # One a day: the second run's message waited a day after the first's.
        assert sent_at[2, phone] - sent_at[1, phone] >= timedelta(hours=24), phone


@pytest.mark.parametrize("policy", ["defer", "skip"])
def test_a_message_held_for_another_that_then_fails_goes_a_minute_later(
    db_url: str, policy: str
) -> None:
    """Held back only by another run's unsettled message, which the provider refuses: the
    number is not over its cap, and whatever the policy, its message goes at the next
    look, not a day later and not skipped."""
    start = Clock().now
    provider = FakeProvider(script=[{us_numbers(1)[0]: "INVALID_RECIPIENT"}])
    phones, sent_at = _two_runs_at_once(db_url, provider, policy)
    refused = phones[0]
    assert (1, refused) not in sent_at
    assert start < sent_at[2, refused] <= start + timedelta(minutes=5)
    for phone in phones[1:]:
        assert (1, phone) in sent_at
        if policy == "defer":
            assert sent_at[2, phone] - sent_at[1, phone] >= timedelta(hours=24), phone
        else:
            assert (2, phone) not in sent_at, phone


@pytest.mark.parametrize(
    ("status", "days_ago", "held"),
    [
        ("claimed", 3, True),  # a retry leaving now: its first attempt was days ago
        ("unknown", 0, True),  # perhaps accepted, moments ago
        ("unknown", 3, False),  # perhaps accepted, but outside the window
    ],
)
def test_frequency_cap_counts_unsettled_messages_by_when_they_may_have_left(
    db_url: str, status: str, days_ago: int, held: bool
) -> None:
    clock = Clock()
    phones = us_numbers(1)
    _earlier_messages(db_url, [(phones[0], clock.now)])
    with session_scope(db_url) as session:
        # The other campaign's message: not sent, but claimed now or of unknown outcome.
        session.execute(
            update(Message)
            .where(Message.phone == phones[0])
            .values(
                status=status,
                sent_at=None,
                attempted_at=clock.now - timedelta(days=days_ago),
                claim_token="another-worker" if status == "claimed" else None,
            )
        )
    seed_list(db_url, "customers", phones)
    _, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
    dispatcher, provider, _ = _dispatcher(db_url, clock, frequency_cap="1/24h")
    dispatcher.dispatch_once(run_id)
    assert provider.count_to(phones[0]) == (0 if held else 1)


def test_frequency_cap_counts_each_unsettled_message(db_url: str) -> None:
    """Under a cap of 3, one message sent and two of other runs still on the wire make
    three: a fourth waits, though neither of the two is sent yet."""
    clock = Clock()
    phone = us_numbers(1)[0]
    _earlier_messages(db_url, [(phone, clock.now - timedelta(hours=1))] * 3)
    with session_scope(db_url) as session:
        claimed = session.scalars(
            select(Message.id).where(Message.phone == phone).order_by(Message.id).offset(1)
        ).all()
        for i, message_id in enumerate(claimed):
            session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(status="claimed", sent_at=None, claim_token=f"worker-{i}")
            )
    seed_list(db_url, "customers", [phone])
    _, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
    dispatcher, provider, _ = _dispatcher(db_url, clock, frequency_cap="3/24h")
    dispatcher.dispatch_once(run_id)
    assert provider.count_to(phone) == 0


def test_frequency_cap_skip_policy(sqlite_url: str) -> None:
    clock = Clock()
    phones = us_numbers(2)
    _earlier_messages(sqlite_url, [(phones[0], clock.now - timedelta(minutes=5))])
    seed_list(sqlite_url, "customers", phones)
    _, run_id = seed_campaign(sqlite_url, ["customers"])
    with session_scope(sqlite_url) as session:
        expand_run(session, run_id)
    dispatcher, provider, _ = _dispatcher(
        sqlite_url, clock, frequency_cap="1/1h", frequency_policy="skip"
    )
    assert _drain(dispatcher, run_id, clock)[-1] == "done"
    assert [m["to"] for m in provider.sent] == [phones[1]]
    assert status_counts(sqlite_url, run_id) == {"sent": 1, "skipped": 1}


def test_budget_command_raises_the_cap_and_names_bad_values(
    sqlite_url: str, monkeypatch: Any
) -> None:
    from typer.testing import CliRunner

    from clarion.cli import app
    from config.settings import reset_settings

    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    reset_settings()
    campaign_id, _, _ = _setup(sqlite_url, 1, budget={"run": "0.60"})
    ok = CliRunner().invoke(app, ["campaign", "budget", str(campaign_id), "--campaign", "5"])
    assert ok.exit_code == 0, ok.output
    with session_scope(sqlite_url) as session:
        stored = get_campaign(session, campaign_id).definition["budget"]
    assert stored == {"campaign": "5", "run": "0.60"}
    bad = CliRunner().invoke(app, ["campaign", "budget", str(campaign_id), "--run", "-1"])
    assert bad.exit_code == 1 and "budget.run" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(app, ["campaign", "budget", str(campaign_id), "--run", "lots"])
    assert bad.exit_code == 1 and "amount" in bad.output

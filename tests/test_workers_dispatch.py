"""Dispatch of one run against a scripted provider: every failure path, no Celery."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select, update

from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Campaign, Claim, Message, Run
from clicksend.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    NoAnswerError,
    RateLimitedError,
    ServerError,
)
from config.settings import Settings
from tests.fakes import FakeProvider
from tests.seed import seed_campaign, seed_list, status_counts, us_numbers
from workers.dispatch import Dispatcher


@dataclass
class RecordingLimiter:
    waits: list[float] = field(default_factory=list)
    penalties: list[float | None] = field(default_factory=list)
    granted: list[int] = field(default_factory=list)

    def acquire(self, messages: int) -> float:
        if self.waits:
            return self.waits.pop(0)
        self.granted.append(messages)
        return 0.0

    def penalise(self, retry_after: float | None) -> float:
        self.penalties.append(retry_after)
        return retry_after or 5.0

    def stats(self) -> dict[str, float]:
        return {}


def _setup(
    url: str, phones: list[str], **settings_kw: object
) -> tuple[Dispatcher, FakeProvider, RecordingLimiter, int]:
    seed_list(url, "customers", phones)
    _, run_id = seed_campaign(url, ["customers"])
    with session_scope(url) as session:
        expand_run(session, run_id)
    provider = FakeProvider()
    limiter = RecordingLimiter()
    settings = Settings(
        database_url=url, reconcile_after_seconds=0, retry_base_seconds=0.001, **settings_kw
    )  # type: ignore[arg-type]
    dispatcher = Dispatcher(
        settings=settings, client=provider, limiter=limiter, sleep=lambda s: None
    )  # type: ignore[arg-type]
    return dispatcher, provider, limiter, run_id


def _drain(dispatcher: Dispatcher, run_id: int, limit: int = 50) -> list[str]:
    actions = []
    for _ in range(limit):
        outcome = dispatcher.dispatch_once(run_id)
        actions.append(outcome.action)
        if outcome.action in ("done", "stopped"):
            break
        if outcome.action == "wait":
            # the test's clock does not move; make everything due now
            with session_scope(dispatcher.settings.database_url) as session:
                session.execute(
                    update(Message).where(Message.run_id == run_id).values(not_before=None)
                )
    return actions


def _run_status(url: str, run_id: int) -> str:
    with session_scope(url) as session:
        return str(session.scalar(select(Run.status).where(Run.id == run_id)))


def test_batches_of_batch_size_and_results_recorded(db_url: str) -> None:
    phones = us_numbers(25)
    dispatcher, provider, limiter, run_id = _setup(db_url, phones, batch_size=10)
    actions = _drain(dispatcher, run_id)
    assert actions[-1] == "done"
    assert provider.requests == 3
    assert limiter.granted == [10, 10, 5]
    assert sorted(m["to"] for m in provider.sent) == sorted(phones)
    assert all(m["custom_string"].startswith("clarion-") for m in provider.sent)
    assert status_counts(db_url, run_id) == {"sent": 25}
    assert _run_status(db_url, run_id) == "completed"
    with session_scope(db_url) as session:
        row = session.scalars(select(Message).where(Message.run_id == run_id)).first()
        assert row is not None and row.provider_message_id and row.parts == 1 and row.attempts == 1


def test_permanent_status_fails_at_once_and_others_are_sent(sqlite_url: str) -> None:
    phones = us_numbers(5)
    dispatcher, provider, _, run_id = _setup(sqlite_url, phones)
    provider.script = [{phones[0]: "INVALID_RECIPIENT"}]
    _drain(dispatcher, run_id)
    assert status_counts(sqlite_url, run_id) == {"sent": 4, "failed": 1}
    assert provider.requests == 1
    with session_scope(sqlite_url) as session:
        failed = session.scalars(select(Message).where(Message.status == "failed")).one()
    assert failed.phone == phones[0] and failed.error == "INVALID_RECIPIENT"


def test_a_throttled_message_is_retried_without_counting_an_attempt(sqlite_url: str) -> None:
    phones = us_numbers(3)
    dispatcher, provider, _, run_id = _setup(sqlite_url, phones, max_attempts=2)
    provider.script = [{phones[0]: "THROTTLED"}] * 4
    _drain(dispatcher, run_id)
    assert status_counts(sqlite_url, run_id) == {"sent": 3}
    with session_scope(sqlite_url) as session:
        attempts = session.scalar(select(Message.attempts).where(Message.phone == phones[0]))
    # Four THROTTLED answers with max_attempts=2: none of them was an attempt.
    assert attempts == 1


def test_429_gives_batch_back_without_an_attempt_and_blocks(sqlite_url: str) -> None:
    phones = us_numbers(3)
    dispatcher, provider, limiter, run_id = _setup(sqlite_url, phones)
    provider.script = [RateLimitedError("Too many requests", status_code=429, retry_after=7.0)]
    first = dispatcher.dispatch_once(run_id)
    assert first.action == "wait" and first.delay == 7.0
    assert limiter.penalties == [7.0]
    with session_scope(sqlite_url) as session:
        rows = session.scalars(select(Message).where(Message.run_id == run_id)).all()
        assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
        assert session.get(Run, run_id).rate_limited == 1  # type: ignore[union-attr]
    _drain(dispatcher, run_id)
    assert status_counts(sqlite_url, run_id) == {"sent": 3}
    assert len(provider.sent) == 3


def test_transient_errors_retry_then_fail_with_reason(sqlite_url: str) -> None:
    phones = us_numbers(2)
    dispatcher, provider, _, run_id = _setup(sqlite_url, phones, max_attempts=3)
    provider.script = [{p: "INTERNAL_ERROR" for p in phones}] * 10
    _drain(dispatcher, run_id)
    # Each row backs off with its own jitter, so the retries may leave in separate requests.
    assert 3 <= provider.requests <= 6
    with session_scope(sqlite_url) as session:
        rows = session.scalars(select(Message).where(Message.run_id == run_id)).all()
    assert {r.status for r in rows} == {"failed"}
    assert all(r.attempts == 3 and "after 3 attempts" in (r.error or "") for r in rows)
    assert provider.sent == []


def test_a_provider_never_reached_pauses_instead_of_failing(sqlite_url: str) -> None:
    phones = us_numbers(2)
    dispatcher, provider, _, run_id = _setup(sqlite_url, phones, max_attempts=3)
    provider.script = [ConnectionFailedError("connection refused")] * 10
    _drain(dispatcher, run_id)
    # Tried again until the retry schedule's waits (0.001 + 0.002 s here) have passed.
    assert 2 <= provider.requests < 10
    with session_scope(sqlite_url) as session:
        rows = session.scalars(select(Message).where(Message.run_id == run_id)).all()
        run = session.get(Run, run_id)
        assert run is not None and run.status == "paused"
        assert "cannot reach the provider" in (run.status_reason or "")
    # Never seen by the provider: no try of theirs is used up.
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
    assert provider.sent == []


def _outage_then_resume(url: str, phones: list[str], after: list[object]) -> FakeProvider:
    """The provider cannot be reached until the run pauses itself; then it is back, the
    campaign is resumed, and its answers are ``after``."""
    from campaigns.runs import resume_campaign

    dispatcher, provider, _, run_id = _setup(url, phones, max_attempts=3)
    provider.script = [ConnectionFailedError("connection refused")] * 50
    assert _drain(dispatcher, run_id)[-1] == "stopped"
    assert provider.sent == []
    provider.script = list(after)
    with session_scope(url) as session:
        campaign_id = session.scalar(select(Run.campaign_id).where(Run.id == run_id))
        assert campaign_id is not None
        resume_campaign(session, campaign_id)
    assert _drain(dispatcher, run_id)[-1] == "done"
    assert status_counts(url, run_id) == {"sent": len(phones)}
    return provider


def test_an_outage_uses_up_none_of_a_messages_tries(sqlite_url: str) -> None:
    """Requests that never reached the provider are not tries: after the outage's pause
    and a resume, a message still has every try for a transient error of its own."""
    phones = us_numbers(2)
    provider = _outage_then_resume(
        sqlite_url, phones, [{phones[0]: "INTERNAL_ERROR"}, {phones[0]: "INTERNAL_ERROR"}]
    )
    assert all(provider.count_to(p) == 1 for p in phones)


def test_a_blip_after_an_outage_does_not_pause_the_run_again(sqlite_url: str) -> None:
    """The outage's clock starts again after the pause: one refused connection after the
    resume is retried, not taken for the same outage."""
    phones = us_numbers(2)
    provider = _outage_then_resume(sqlite_url, phones, [ConnectionFailedError("reset")])
    assert all(provider.count_to(p) == 1 for p in phones)


def test_transient_error_then_success_is_sent_once(sqlite_url: str) -> None:
    phones = us_numbers(4)
    dispatcher, provider, _, run_id = _setup(sqlite_url, phones)
    provider.script = [ConnectionFailedError("reset"), {phones[1]: "INTERNAL_ERROR"}]
    _drain(dispatcher, run_id)
    assert status_counts(sqlite_url, run_id) == {"sent": 4}
    assert all(provider.count_to(p) == 1 for p in phones)
    with session_scope(sqlite_url) as session:
        run = session.get(Run, run_id)
        # Answered since: a later refused connection starts an outage's clock afresh.
        assert run is not None and run.unreachable_since is None


@pytest.mark.parametrize(
    "error",
    [
        NoAnswerError("read timeout"),
        ServerError("bad gateway", status_code=502),
    ],
)
def test_accepted_then_lost_answer_is_settled_by_lookup_not_resent(
    db_url: str, error: Exception
) -> None:
    phones = us_numbers(6)
    dispatcher, provider, limiter, run_id = _setup(db_url, phones)
    provider.script = [("accept-then", error)]
    _drain(dispatcher, run_id)
    assert provider.history_calls >= 1
    # each look-up took a turn of the shared limit (a request carrying no messages)
    assert limiter.granted.count(0) == provider.history_calls
    assert status_counts(db_url, run_id) == {"sent": 6}
    assert all(provider.count_to(p) == 1 for p in phones), "a message was sent twice"


def test_lost_request_not_found_in_history_is_sent_again(db_url: str) -> None:
    phones = us_numbers(3)
    dispatcher, provider, _, run_id = _setup(db_url, phones)
    provider.script = [NoAnswerError("connection closed before the request was processed")]
    _drain(dispatcher, run_id)
    assert status_counts(db_url, run_id) == {"sent": 3}
    assert all(provider.count_to(p) == 1 for p in phones)
    with session_scope(db_url) as session:
        assert set(session.scalars(select(Message.attempts).where(Message.run_id == run_id))) == {2}


def test_authentication_failure_pauses_the_campaign(sqlite_url: str) -> None:
    dispatcher, provider, _, run_id = _setup(sqlite_url, us_numbers(3))
    provider.script = [AuthenticationError("Invalid credentials", status_code=401)]
    assert dispatcher.dispatch_once(run_id).action == "stopped"
    assert status_counts(sqlite_url, run_id) == {"pending": 3}
    with session_scope(sqlite_url) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.status == "paused"
        campaign = session.get(Campaign, run.campaign_id)
        assert campaign is not None and campaign.status == "paused"
        assert "credentials" in (campaign.status_reason or "")


def test_insufficient_credit_pauses_and_keeps_messages(sqlite_url: str) -> None:
    phones = us_numbers(3)
    dispatcher, provider, _, run_id = _setup(sqlite_url, phones)
    provider.script = [{phones[2]: "INSUFFICIENT_CREDIT"}]
    dispatcher.dispatch_once(run_id)
    assert status_counts(sqlite_url, run_id) == {"sent": 2, "pending": 1}
    assert _run_status(sqlite_url, run_id) == "paused"
    assert dispatcher.dispatch_once(run_id).action == "stopped"
    assert provider.requests == 1


def test_bad_request_fails_the_batch_with_the_providers_message(sqlite_url: str) -> None:
    dispatcher, provider, _, run_id = _setup(sqlite_url, us_numbers(2))
    provider.script = [BadRequestError("bad", status_code=400, response_msg="Invalid from address")]
    _drain(dispatcher, run_id)
    with session_scope(sqlite_url) as session:
        errors = set(session.scalars(select(Message.error).where(Message.run_id == run_id)))
    assert errors == {"request rejected by the provider: Invalid from address"}


def test_paused_run_sends_nothing(sqlite_url: str) -> None:
    dispatcher, provider, _, run_id = _setup(sqlite_url, us_numbers(3))
    with session_scope(sqlite_url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="paused"))
    assert dispatcher.dispatch_once(run_id).action == "stopped"
    assert provider.requests == 0


def test_cancel_during_rate_limit_wait_releases_claim_as_cancelled(sqlite_url: str) -> None:
    dispatcher, provider, limiter, run_id = _setup(sqlite_url, us_numbers(3))

    def cancel_then_sleep(_: float) -> None:
        with session_scope(sqlite_url) as session:
            session.execute(update(Run).where(Run.id == run_id).values(status="cancelled"))

    limiter.waits = [0.5]
    dispatcher.sleep = cancel_then_sleep
    assert dispatcher.dispatch_once(run_id).action == "stopped"
    assert provider.requests == 0
    assert status_counts(sqlite_url, run_id) == {"cancelled": 3}


def test_long_rate_limit_wait_gives_the_claim_back(sqlite_url: str) -> None:
    dispatcher, provider, limiter, run_id = _setup(sqlite_url, us_numbers(3))
    limiter.waits = [30.0]
    outcome = dispatcher.dispatch_once(run_id)
    assert (outcome.action, outcome.delay) == ("wait", 30.0)
    assert status_counts(sqlite_url, run_id) == {"pending": 3}
    assert provider.requests == 0


def test_deadline_expires_pending_messages(sqlite_url: str) -> None:
    from campaigns.clock import utcnow

    dispatcher, provider, _, run_id = _setup(sqlite_url, us_numbers(3))
    with session_scope(sqlite_url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(expires_at=utcnow()))
    assert dispatcher.dispatch_once(run_id).action == "done"
    assert status_counts(sqlite_url, run_id) == {"expired": 3}
    assert provider.requests == 0


def test_limiter_outage_gives_the_batch_back(sqlite_url: str) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    dispatcher, provider, limiter, run_id = _setup(sqlite_url, us_numbers(3))

    def down(messages: int) -> float:
        raise RedisConnectionError("Connection refused")

    limiter.acquire = down  # type: ignore[method-assign]
    outcome = dispatcher.dispatch_once(run_id)
    assert outcome.action == "wait" and outcome.delay > dispatcher.max_inline_wait
    assert provider.requests == 0
    assert status_counts(sqlite_url, run_id) == {"pending": 3}


def test_every_claim_row_is_gone_when_its_batch_is_settled(db_url: str) -> None:
    """A claim's row lives until its rows are settled or given back, whatever the request
    met, so the claims table stays one row per batch in flight; rows that were sent or
    failed carry when their request left."""
    phones = us_numbers(6)
    dispatcher, provider, limiter, run_id = _setup(db_url, phones, batch_size=3)
    provider.script = [
        RateLimitedError("Too many requests", status_code=429, retry_after=1.0),
        {phones[0]: "INVALID_RECIPIENT", phones[1]: "THROTTLED"},
        NoAnswerError("no answer"),
    ]
    limiter.waits = [30.0]  # the first claim is given back before its request
    for _ in range(30):
        outcome = dispatcher.dispatch_once(run_id)
        with session_scope(db_url) as session:
            assert session.scalar(select(func.count()).select_from(Claim)) == 0
            session.execute(update(Message).where(Message.run_id == run_id).values(not_before=None))
        if outcome.action in ("done", "stopped"):
            break
    assert status_counts(db_url, run_id) == {"sent": 5, "failed": 1}
    with session_scope(db_url) as session:
        attempted = session.scalars(select(Message.attempted_at).where(Message.run_id == run_id))
        assert None not in set(attempted)

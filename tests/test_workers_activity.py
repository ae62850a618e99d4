"""What a batch leaves on its run's row: the spend and the last activity (written by one
statement per batch), and the chain's promise to be back, on the database's clock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from campaigns.budget import record_spend
from campaigns.clock import as_utc, db_now
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Run
from config.settings import Settings
from tests.fakes import FakeProvider
from tests.seed import seed_campaign, seed_list, us_numbers
from workers.dispatch import Dispatcher


class _Limiter:
    def acquire(self, messages: int) -> float:
        return 0.0

    def penalise(self, retry_after: float | None) -> float:
        return 5.0


def _dispatcher(url: str, count: int) -> tuple[Dispatcher, int]:
    seed_list(url, "customers", us_numbers(count))
    _, run_id = seed_campaign(url, ["customers"])
    with session_scope(url) as session:
        expand_run(session, run_id)
    settings = Settings(database_url=url, batch_size=10)  # type: ignore[call-arg]
    dispatcher = Dispatcher(
        settings=settings,
        client=FakeProvider(),  # type: ignore[arg-type]
        limiter=_Limiter(),  # type: ignore[arg-type]
        sleep=lambda s: None,
    )
    return dispatcher, run_id


def _run_row(url: str, run_id: int) -> tuple[Decimal, object]:
    with session_scope(url) as session:
        spent, last = session.execute(
            select(Run.spent, Run.last_activity_at).where(Run.id == run_id)
        ).one()
        return Decimal(spent), as_utc(last)


def test_a_recorded_batch_adds_its_spend_and_stamps_the_run_on_the_db_clock(
    db_url: str,
) -> None:
    dispatcher, run_id = _dispatcher(db_url, 10)
    with session_scope(db_url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(last_activity_at=None))
        before = db_now(session)
    outcome = dispatcher.dispatch_once(run_id)
    with session_scope(db_url) as session:
        after = db_now(session)
    assert outcome.sent == 10
    spent, last = _run_row(db_url, run_id)
    assert spent == Decimal("0.2500")  # ten messages at the provider's 0.0250
    # The result's stamp (not the promise made before the request, which lies a request's
    # timeout ahead) is the run's last activity.
    assert last is not None and before <= last <= after  # type: ignore[operator]


def test_a_batch_that_cost_nothing_still_stamps_the_run(db_url: str) -> None:
    _, run_id = _dispatcher(db_url, 1)
    with session_scope(db_url) as session:
        stamp = db_now(session)
        record_spend(session, run_id, [Decimal("0"), None], also={"last_activity_at": stamp})
    spent, last = _run_row(db_url, run_id)
    assert spent == Decimal("0") and last == stamp


def test_a_promise_is_the_db_clock_plus_the_delay_and_never_moves_back(db_url: str) -> None:
    dispatcher, run_id = _dispatcher(db_url, 1)
    with session_scope(db_url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(last_activity_at=None))
        before = db_now(session)
    dispatcher.expect_back(run_id, 30)
    with session_scope(db_url) as session:
        after = db_now(session)
    _, promised = _run_row(db_url, run_id)
    assert promised is not None
    assert before + timedelta(seconds=30) <= promised <= after + timedelta(seconds=30)  # type: ignore[operator]
    dispatcher.expect_back(run_id, 1)  # an earlier promise leaves the later one
    assert _run_row(db_url, run_id)[1] == promised

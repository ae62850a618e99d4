"""Exactly once where two writers meet on one claim: a fence whose commit waits on
another lock, a fence whose clock is read before SQLite's write lock is granted, two
lease recoveries at once. Each interleaving is forced with locks held by the test, and
the outcome is read from the database and the sandbox's ledger."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update

from campaigns import claims
from campaigns.clock import as_utc, db_now
from campaigns.db import session_factory, session_scope
from campaigns.expand import expand_run
from campaigns.models import Claim, Message, Run
from clicksend.client import ClickSendClient
from config.settings import Settings
from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread
from tests.seed import seed_campaign, seed_list, us_numbers
from workers.dispatch import Dispatcher
from workers.ratelimit import LocalRateLimiter

pytestmark = [pytest.mark.services]


def _expanded_run(url: str, count: int) -> int:
    seed_list(url, "customers", us_numbers(count))
    _, run_id = seed_campaign(url, ["customers"])
    with session_scope(url) as session:
        expand_run(session, run_id)
    return run_id


def _states(url: str, run_id: int) -> dict[int, tuple[str, str | None]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(Message.id, Message.status, Message.claim_token).where(Message.run_id == run_id)
        ).all()
    return {r.id: (r.status, r.claim_token) for r in rows}


def _until(condition: Any, what: str, timeout: float = 30) -> None:
    """Wait for a condition the test can observe (a lock wait, the clock passing a time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _waiting_on_a_lock(url: str, fragment: str) -> bool:
    """A PostgreSQL backend runs a statement containing ``fragment`` and waits on a lock."""
    with session_scope(url) as session:
        return bool(
            session.scalar(
                select(func.count())
                .select_from(text("pg_stat_activity"))
                .where(
                    text("wait_event_type = 'Lock'"),
                    text("query ILIKE :q").bindparams(q=f"%{fragment}%"),
                )
            )
        )


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread(SandboxConfig(api_key="interleave-key"))
    try:
        yield handle
    finally:
        handle.stop()


def _sent_to(sandbox: SandboxHandle, key: str) -> dict[str, int]:
    ledger = httpx.get(
        f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": key}, timeout=60
    ).json()
    return dict(ledger["by_recipient"])


def test_a_fence_whose_commit_waits_on_the_runs_row_sends_nothing_after_its_lease(
    pg_url: str, sandbox: SandboxHandle
) -> None:
    """Between the fence's check and the request, the worker writes the run's row (the
    chain's promise to be back). If that write waits on a lock (another chain recording
    its batch, the tick) past the claim's lease, the request must not leave: the lease
    was checked for the whole request, and recovery sorts the rows by it."""
    run_id = _expanded_run(pg_url, 5)
    settings = Settings(database_url=pg_url, batch_size=5, lease_seconds=4, http_timeout_seconds=1)
    worker = Dispatcher(
        settings=settings,
        client=ClickSendClient(sandbox.base_url, "sandbox", "interleave-key", timeout=1),
        limiter=LocalRateLimiter(account="i", requests_per_second=0, messages_per_second=0),
    )
    # Another transaction has written the run's row (as a chain recording its batch
    # does) and not committed yet: the worker's write to it waits.
    holder = session_factory(pg_url)()
    holder.execute(update(Run).where(Run.id == run_id).values(rate_limited=Run.rate_limited))
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(worker.dispatch_once(run_id)))
    thread.start()
    try:
        _until(lambda: _waiting_on_a_lock(pg_url, "UPDATE runs"), "the worker to wait on the run")
        with session_scope(pg_url) as session:
            lease_end = session.scalar(select(func.max(Claim.lease_until)))
        assert lease_end is not None
        # The lock is held until the claim's lease has run out by the database's clock.
        _until(lambda: _pg_now(pg_url) > lease_end, "the claim's lease to end")
    finally:
        holder.rollback()
        holder.close()
        thread.join(30)
    assert not thread.is_alive()
    key = _run_key(pg_url, run_id)
    assert _sent_to(sandbox, key) == {}, "a request left after its claim's lease had ended"
    assert {s for s, _ in _states(pg_url, run_id).values()} == {"pending"}


def _pg_now(url: str) -> datetime:
    with session_scope(url) as session:
        return db_now(session)


def _run_key(url: str, run_id: int) -> str:
    with session_scope(url) as session:
        key = session.scalar(select(Run.key).where(Run.id == run_id))
    assert key is not None
    return str(key)


def test_a_fence_on_sqlite_reads_the_clock_once_it_may_write(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has one writer: a fence waits for the write lock while another connection
    writes (an import, an expansion chunk). The lease must be checked against the time
    the fence gets to write, not the time it began waiting; a claim whose lease ran short
    meanwhile sends nothing."""
    run_id = _expanded_run(sqlite_url, 2)
    need = 1.0
    with session_scope(sqlite_url) as session:
        now = db_now(session)
        lease_end = now + timedelta(seconds=need + 1.0)
        claims.claim_batch(session, run_id, 2, token="waits", lease_until=lease_end, now=now)
    path = sqlite_url.removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None, timeout=30)
    writer.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    entered = threading.Event()
    real_fence = claims.fence

    def fence(*args: Any, **kwargs: Any) -> datetime | None:
        entered.set()
        return real_fence(*args, **kwargs)

    monkeypatch.setattr(claims, "fence", fence)
    result: list[datetime | None] = []

    def worker() -> None:
        with session_scope(sqlite_url) as session:
            result.append(claims.fence(session, "waits", need_seconds=need))

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert entered.wait(30)
        # The write lock is held until less than ``need`` of the lease is left.
        _until(
            lambda: datetime.now(lease_end.tzinfo) > lease_end - timedelta(seconds=need / 2),
            "the lease to run short",
        )
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        thread.join(30)
    assert result == [None], "the fence passed on a clock read before it could write"


def test_two_lease_recoveries_at_once_recover_a_claim_once(pg_url: str) -> None:
    """The scheduler's lock elects the beat that enqueues ticks, but a tick runs on any
    worker, so two ticks (a late one and the next) can recover leases at the same time:
    the second waits on the first's claim rows and finds them gone."""
    run_id = _expanded_run(pg_url, 4)
    make = session_factory(pg_url)
    with make() as session:
        now = db_now(session)
        claims.claim_batch(
            session, run_id, 2, token="sent", lease_until=now + timedelta(seconds=30), now=now
        )
        claims.claim_batch(
            session, run_id, 2, token="unsent", lease_until=now + timedelta(seconds=30), now=now
        )
        left = claims.fence(session, "sent", need_seconds=1, now=now)
        session.commit()
    later = now + timedelta(seconds=31)
    first = make()
    assert claims.expire_leases(first, later, grace_seconds=10) == 4
    second: list[int] = []

    def recover() -> None:
        with make() as session:
            second.append(claims.expire_leases(session, later, grace_seconds=10))
            session.commit()

    thread = threading.Thread(target=recover)
    thread.start()
    try:
        _until(lambda: _waiting_on_a_lock(pg_url, "DELETE FROM claims"), "the second recovery")
    finally:
        first.commit()
        first.close()
        thread.join(30)
    assert second == [0]
    with session_scope(pg_url) as session:
        rows = session.execute(
            select(Message.status, Message.attempted_at, Message.not_before).where(
                Message.run_id == run_id, Message.status == "unknown"
            )
        ).all()
        assert session.scalar(select(func.count()).select_from(Claim)) == 0
    assert [(r.attempted_at, r.not_before) for r in rows] == [
        (left, now + timedelta(seconds=40))
    ] * 2
    assert sorted(s for s, _ in _states(pg_url, run_id).values()) == [
        "pending",
        "pending",
        "unknown",
        "unknown",
    ]


def test_a_cancelled_runs_claim_recovered_before_its_request_ends_cancelled(db_url: str) -> None:
    """A worker claimed rows and died before its request; the campaign is cancelled (its
    pending rows become cancelled, the claimed ones are left to their claim). When the
    lease ends, recovery gives them back to pending: the cancelled run must still get a
    chain that marks them cancelled, or they stay pending for ever."""
    from campaigns.runs import cancel_campaign
    from scheduler.tick import tick

    seed_list(db_url, "customers", us_numbers(3))
    campaign_id, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
    with session_scope(db_url) as session:
        now = db_now(session)
        claims.claim_batch(
            session, run_id, 2, token="died", lease_until=now + timedelta(seconds=30), now=now
        )
    with session_scope(db_url) as session:
        assert cancel_campaign(session, campaign_id) == [run_id]
    settings = Settings(database_url=db_url)
    later = now + timedelta(seconds=31)
    result = tick(settings, now=later)
    assert result.leases_recovered == 2
    assert result.to_dispatch == [run_id]
    # The chain sends nothing (the run is cancelled); it only settles the rows.
    dispatcher = Dispatcher(
        settings=settings,
        client=ClickSendClient("http://127.0.0.1:9", "nobody", "no-key", timeout=1),
        limiter=LocalRateLimiter(account="c", requests_per_second=0, messages_per_second=0),
    )
    assert dispatcher.dispatch_once(run_id).action == "done"
    assert {s for s, _ in _states(db_url, run_id).values()} == {"cancelled"}


def test_a_chunk_committing_while_the_deadline_ends_its_expansion_is_expired_with_the_rest(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tick ends the expansion of a run past its deadline while a chunk is between
    its check of the run and its commit: the tick waits for the chunk (the chunk's check
    holds the run's row), the chunk's rows are expired with the others, and nothing is
    written after the run was marked expanded."""
    from campaigns import expand
    from campaigns.runs import create_campaign
    from campaigns.stats import status_counts
    from scheduler.tick import tick
    from tests.seed import definition

    seed_list(pg_url, "customers", us_numbers(12))
    schedule = {"cron": "0 * * * *", "expires_after": "1h"}
    with session_scope(pg_url) as session:
        campaign = create_campaign(session, definition(["customers"], schedule=schedule))
        campaign.status = "active"
        campaign.started_at = db_now(session) - timedelta(hours=2)
    settings = Settings(database_url=pg_url)
    [run_id] = tick(settings).to_expand
    with session_scope(pg_url) as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(expires_at=db_now(session) - timedelta(seconds=1))
        )

    checked = threading.Event()
    go_on = threading.Event()
    calls = 0
    real_still_wanted = expand._still_wanted

    def still_wanted(session: Any, run: int, owner: str) -> bool:
        nonlocal calls
        wanted = real_still_wanted(session, run, owner)
        calls += 1
        if calls == 2:  # the second chunk, checked and not yet committed
            checked.set()
            go_on.wait(30)
        return wanted

    monkeypatch.setattr(expand, "_still_wanted", still_wanted)

    def expansion() -> None:
        with session_scope(pg_url) as session:
            expand_run(session, run_id, chunk_size=4)

    expanding = threading.Thread(target=expansion)
    expanding.start()
    ticking = threading.Thread(target=lambda: tick(settings))
    try:
        assert checked.wait(30)
        ticking.start()
        _until(lambda: _waiting_on_a_lock(pg_url, "UPDATE runs"), "the tick to wait on the run")
    finally:
        go_on.set()
        expanding.join(30)
        if ticking.ident is not None:
            ticking.join(30)
    with session_scope(pg_url) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.status == "sending" and run.expanded_at is not None
        assert status_counts(session, run_id) == {"pending": 8}
    # The chain finishes the run: every row written, the late chunk's too, is expired.
    dispatcher = Dispatcher(
        settings=settings,
        client=ClickSendClient("http://127.0.0.1:9", "nobody", "no-key", timeout=1),
        limiter=LocalRateLimiter(account="e", requests_per_second=0, messages_per_second=0),
    )
    assert dispatcher.dispatch_once(run_id).action == "done"
    with session_scope(pg_url) as session:
        assert session.scalar(select(Run.status).where(Run.id == run_id)) == "completed"
        assert status_counts(session, run_id) == {"expired": 8}


def test_lease_recovery_costs_the_same_whatever_the_number_of_cancelled_runs(
    db_url: str,
) -> None:
    """Every tick recovers leases; cancelled runs (looked at for rows claimed before the
    claims table) pile up for ever, so the statements a recovery sends must not grow with
    them. Rows claimed with no claim row are still found in each of them."""
    from sqlalchemy import event

    from campaigns.db import get_engine
    from campaigns.runs import cancel_campaign

    def recovery_statements(cancelled: int) -> tuple[int, int]:
        for i in range(cancelled):
            seed_list(db_url, f"l{cancelled}-{i}", us_numbers(1, start=1000 * cancelled + i))
            campaign_id, run_id = seed_campaign(db_url, [f"l{cancelled}-{i}"])
            with session_scope(db_url) as session:
                expand_run(session, run_id)
                # Claimed before claims had rows, then cancelled: left to lease recovery.
                session.execute(
                    update(Message)
                    .where(Message.run_id == run_id)
                    .values(
                        status="claimed", claim_token=f"old-{run_id}", lease_until=db_now(session)
                    )
                )
                cancel_campaign(session, campaign_id)
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        engine = get_engine(db_url)
        event.listen(engine, "before_cursor_execute", count)
        try:
            with session_scope(db_url) as session:
                recovered = claims.expire_leases(
                    session, db_now(session) + timedelta(seconds=1), grace_seconds=10
                )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements), recovered

    few, recovered_few = recovery_statements(1)
    many, recovered_many = recovery_statements(20)
    assert (recovered_few, recovered_many) == (1, 20)
    # One look-up statement plus one update per dead lease, not a statement per run.
    quiet, _ = recovery_statements(0)
    with session_scope(db_url) as session:
        cancelled = session.scalar(select(func.count()).where(Run.status == "cancelled"))
    assert cancelled == 21
    assert many - recovered_many == few - recovered_few == quiet


def test_rows_moved_out_of_a_claim_before_its_fence_are_left_alone_by_its_recovery(
    db_url: str,
) -> None:
    """Right before the request, one row of the claim is suppressed (an opt-out arrived
    after expansion) and one deferred (a send window, the frequency cap); the fence then
    covers the rest, and the worker dies during the request. Recovery makes only the row
    that left 'unknown': the suppressed row stays suppressed, the deferred one keeps its
    time."""
    from campaigns.models import Suppression

    run_id = _expanded_run(db_url, 3)
    with session_scope(db_url) as session:
        first = session.scalar(
            select(Message.phone).where(Message.run_id == run_id).order_by(Message.id)
        )
        session.add(Suppression(phone=first, reason="STOP"))
    with session_scope(db_url) as session:
        now = db_now(session)
        opted_out, later, leaving = claims.claim_batch(
            session, run_id, 3, token="moved", lease_until=now + timedelta(seconds=30), now=now
        )
    assert (opted_out.opted_out, later.opted_out, leaving.opted_out) == (True, False, False)
    with session_scope(db_url) as session:
        batch = claims.drop_suppressed(session, [opted_out, later, leaving], token="moved")
        assert batch == [later, leaving]
        until = now + timedelta(hours=1)
        claims.defer(session, "moved", [claims.Hold(later.id, until, "send window")])
    with session_scope(db_url) as session:
        left = claims.fence(session, "moved", need_seconds=1, now=now)
        assert left is not None
    with session_scope(db_url) as session:
        recovered = claims.expire_leases(session, now + timedelta(seconds=31), grace_seconds=10)
        assert recovered == 1
    with session_scope(db_url) as session:
        rows = {
            r.id: (r.status, r.not_before)
            for r in session.execute(
                select(Message.id, Message.status, Message.not_before).where(
                    Message.run_id == run_id
                )
            )
        }
    assert rows[opted_out.id][0] == "suppressed"
    assert rows[later.id][0] == "pending"
    deferred_until = as_utc(rows[later.id][1])
    assert deferred_until is not None
    assert abs((deferred_until - until).total_seconds()) < 0.01
    assert rows[leaving.id][0] == "unknown"

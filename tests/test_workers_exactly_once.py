"""Exactly once against the failures a chaos test of crashes does not produce: a provider
that is slow rather than silent, a worker that outlived its lease, a worker whose clock is
wrong. PostgreSQL, the sandbox over HTTP on loopback and its ledger as the witness."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from campaigns import clock as clock_module
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message, Run
from clicksend.client import ClickSendClient
from config.settings import Settings
from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread
from scheduler.tick import tick
from tests.procs import CLARION, processes, scaled_env, wait_for
from tests.seed import seed_campaign, seed_list, status_counts, us_numbers
from workers.dispatch import Dispatcher
from workers.ratelimit import LocalRateLimiter

pytestmark = [pytest.mark.services]


def _ledger(sandbox: SandboxHandle, key: str) -> dict[str, Any]:
    return dict(
        httpx.get(
            f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": key}, timeout=60
        ).json()
    )


def _run(url: str, run_id: int) -> Run:
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        session.expunge(run)
        return run


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread(SandboxConfig(api_key="once-key"))
    try:
        yield handle
    finally:
        handle.stop()


def _client(sandbox: SandboxHandle, timeout: float) -> ClickSendClient:
    return ClickSendClient(sandbox.base_url, "sandbox", "once-key", timeout=timeout)


def _expanded_run(url: str, phones: list[str]) -> int:
    seed_list(url, "customers", phones)
    _, run_id = seed_campaign(url, ["customers"])
    with session_scope(url) as session:
        expand_run(session, run_id)
    return run_id


def _drive(dispatcher: Dispatcher, run_id: int, timeout: float = 60) -> None:
    """Run one dispatch chain until the run is over, sleeping through its waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = dispatcher.dispatch_once(run_id)
        if outcome.action == "wait":
            time.sleep(min(outcome.delay, 0.5))
        elif outcome.action in ("done", "stopped"):
            if _run(dispatcher.settings.database_url, run_id).status not in ("sending",):
                return
            time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {_run(dispatcher.settings.database_url, run_id)}")


# -- 1. a slow provider is not a silent one -------------------------------------------


@pytest.mark.slow
def test_requests_held_past_the_client_timeout_are_never_sent_twice(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """5% of requests are held longer than the client waits, then accepted: each of
    20,000 recipients is accepted exactly once."""
    phones = us_numbers(20_000)
    seed_list(pg_url, "customers", phones)
    campaign_id, _ = seed_campaign(pg_url, ["customers"])
    config = SandboxConfig(api_key="once-key", hold_rate=0.05, hold_seconds=3.0, seed=3)
    handle = start_in_thread(config)
    try:
        env = scaled_env(
            pg_url,
            redis_prefix,
            handle,
            CLARION_BATCH_SIZE="100",
            CLARION_HTTP_TIMEOUT_SECONDS="1",
            CLARION_LEASE_SECONDS="8",
            CLARION_RECONCILE_AFTER_SECONDS="0.5",
            CLARION_RECONCILE_GRACE_SECONDS="5",
            CLARION_RETRY_BASE_SECONDS="0.2",
            CLARION_RETRY_MAX_SECONDS="2",
        )
        worker = ["worker", "-c", "1", "--loglevel", "WARNING"]
        with processes(
            env,
            worker,
            [*worker, "--hostname", "second@%h"],
            ["scheduler", "--loglevel", "WARNING"],
            log_dir=tmp_path,
        ):
            with session_scope(pg_url) as session:
                run_id = session.scalar(select(Run.id).where(Run.campaign_id == campaign_id))
            assert run_id is not None
            wait_for(
                lambda: _run(pg_url, run_id).status in ("completed", "failed"),
                400,
                what="completion",
            )
        stats = httpx.get(f"{handle.root_url}/_sandbox/stats", timeout=30).json()
        assert stats["holds_injected"] > 0
        ledger = _ledger(handle, _run(pg_url, run_id).key)
        assert ledger["duplicates"] == []
        assert ledger["by_recipient"] == {p: 1 for p in phones}
        assert status_counts(pg_url, run_id) == {"sent": len(phones)}
    finally:
        handle.stop()


# -- 2. a worker that outlived its lease must not send --------------------------------


class StallingLimiter(LocalRateLimiter):
    """Stops the first request's caller inside the limiter (a long stall, a VM pause)
    until the test lets it go."""

    def __init__(self) -> None:
        super().__init__(account="stall", requests_per_second=0, messages_per_second=0)
        self.stalled = threading.Event()
        self.go_on = threading.Event()

    def acquire(self, messages: int) -> float:
        if messages and not self.stalled.is_set():
            self.stalled.set()
            self.go_on.wait(60)
        return super().acquire(messages)


def test_a_worker_stalled_past_its_lease_sends_nothing(pg_url: str, sandbox: SandboxHandle) -> None:
    phones = us_numbers(30)
    run_id = _expanded_run(pg_url, phones)
    settings = Settings(
        database_url=pg_url,
        batch_size=10,
        lease_seconds=5,
        http_timeout_seconds=1,
        reconcile_after_seconds=0,
        reconcile_grace_seconds=0,
        retry_base_seconds=0.01,
    )  # type: ignore[call-arg]
    stalling = StallingLimiter()
    stalled = Dispatcher(settings=settings, client=_client(sandbox, 1), limiter=stalling)
    healthy = Dispatcher(
        settings=settings,
        client=_client(sandbox, 1),
        limiter=LocalRateLimiter(account="ok", requests_per_second=0, messages_per_second=0),
    )
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(stalled.dispatch_once(run_id)))
    worker.start()
    try:
        assert stalling.stalled.wait(30)
        with session_scope(pg_url) as session:
            held = set(
                session.scalars(
                    select(Message.phone).where(
                        Message.run_id == run_id, Message.status == "claimed"
                    )
                )
            )
        assert len(held) == 10
        time.sleep(settings.lease_seconds + 0.5)
        assert tick(settings).leases_recovered == 10
        # Another worker takes the recovered rows over and sends them.
        deadline = time.monotonic() + 30
        while not held <= set(_ledger(sandbox, _run(pg_url, run_id).key)["by_recipient"]):
            assert time.monotonic() < deadline, "the recovered rows were never resent"
            if healthy.dispatch_once(run_id).action == "wait":
                time.sleep(0.2)
    finally:
        stalling.go_on.set()
        worker.join(30)
    _drive(healthy, run_id)
    ledger = _ledger(sandbox, _run(pg_url, run_id).key)
    assert ledger["duplicates"] == []
    assert ledger["by_recipient"] == {p: 1 for p in phones}
    assert status_counts(pg_url, run_id) == {"sent": 30}


def test_a_lease_shorter_than_the_http_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match=r"CLARION_LEASE_SECONDS.*CLARION_HTTP_TIMEOUT_SECONDS"):
        Settings(lease_seconds=20, http_timeout_seconds=30)


def test_the_command_line_refuses_a_short_lease_in_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "CLARION_DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
        "CLARION_LEASE_SECONDS": "10",
        "CLARION_HTTP_TIMEOUT_SECONDS": "30",
    }
    done = subprocess.run(
        [*CLARION, "campaign", "status", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "CLARION_LEASE_SECONDS" in lines[0] and "CLARION_HTTP_TIMEOUT_SECONDS" in lines[0]
    assert "Traceback" not in done.stderr


# -- 3. clocks -----------------------------------------------------------------------


@pytest.mark.parametrize("skew_minutes", [-2, 2])
def test_a_worker_with_a_skewed_clock_sends_each_message_once(
    pg_url: str, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch, skew_minutes: int
) -> None:
    skew = timedelta(minutes=skew_minutes)

    class SkewedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> SkewedDatetime:  # type: ignore[override]
            return super().now(tz) + skew  # type: ignore[return-value]

    phones = us_numbers(20)
    run_id = _expanded_run(pg_url, phones)
    # This worker's wall clock is off; PostgreSQL's and the provider's are right.
    monkeypatch.setattr(clock_module, "datetime", SkewedDatetime)
    settings = Settings(
        database_url=pg_url,
        lease_seconds=30,
        http_timeout_seconds=2,
        reconcile_after_seconds=0.2,
        reconcile_grace_seconds=0.5,
        retry_base_seconds=0.01,
    )  # type: ignore[call-arg]
    dispatcher = Dispatcher(
        settings=settings,
        client=_client(sandbox, 2),
        limiter=LocalRateLimiter(account="skew", requests_per_second=0, messages_per_second=0),
    )
    sandbox.state.reconfigure({"drop_rate": 1.0})  # accepted, answer lost: look-up needed
    first = dispatcher.dispatch_once(run_id)
    assert first.action == "again"
    with session_scope(pg_url) as session:
        real_now = session.scalar(select(func.now()))
        times = session.execute(
            select(Message.status, Message.attempted_at).where(Message.run_id == run_id)
        ).all()
    assert {status for status, _ in times} == {"unknown"}
    for _, attempted in times:
        assert abs((attempted - real_now).total_seconds()) < 30, "attempt time off the db clock"
    sandbox.state.reconfigure({"drop_rate": 0.0})
    _drive(dispatcher, run_id)
    ledger = _ledger(sandbox, _run(pg_url, run_id).key)
    assert ledger["duplicates"] == []
    assert ledger["by_recipient"] == {p: 1 for p in phones}
    assert status_counts(pg_url, run_id) == {"sent": 20}


def test_a_claim_of_a_skewed_worker_is_not_recovered_early(
    pg_url: str, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose clock is 2 minutes slow takes a 120 s lease: the lease still runs
    120 s by the database's clock, so the tick does not take the claim away at once."""

    class SlowDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> SlowDatetime:  # type: ignore[override]
            return super().now(tz) - timedelta(minutes=2)  # type: ignore[return-value]

    run_id = _expanded_run(pg_url, us_numbers(5))
    settings = Settings(database_url=pg_url, lease_seconds=120, http_timeout_seconds=2)
    stalling = StallingLimiter()
    worker = Dispatcher(settings=settings, client=_client(sandbox, 2), limiter=stalling)
    monkeypatch.setattr(clock_module, "datetime", SlowDatetime)
    thread = threading.Thread(target=lambda: worker.dispatch_once(run_id))
    thread.start()
    try:
        assert stalling.stalled.wait(30)
        monkeypatch.setattr(clock_module, "datetime", datetime)
        assert tick(settings).leases_recovered == 0
    finally:
        stalling.go_on.set()
        thread.join(30)
    assert status_counts(pg_url, run_id) == {"sent": 5}

"""Exactly-once under crashes, broker loss, provider faults and rate limits, with real
worker processes, PostgreSQL, Redis and the sandbox's ledger as the witness."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from campaigns.db import session_scope
from campaigns.models import Message, Run
from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread
from tests.procs import broker_url, clarion, processes, scaled_env, wait_for
from tests.seed import definition, seed_list, status_counts, us_numbers

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _ledger(sandbox: SandboxHandle, key: str) -> dict[str, Any]:
    return dict(
        httpx.get(
            f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": key}, timeout=60
        ).json()
    )


def _sandbox_stats(sandbox: SandboxHandle) -> dict[str, Any]:
    return dict(httpx.get(f"{sandbox.root_url}/_sandbox/stats", timeout=30).json())


def _create(db_url: str, phones: list[str]) -> int:
    from campaigns.runs import create_campaign

    seed_list(db_url, "customers", phones)
    with session_scope(db_url) as session:
        return create_campaign(session, definition(["customers"])).id


def _run(db_url: str, campaign_id: int) -> Run:
    with session_scope(db_url) as session:
        run = session.scalars(select(Run).where(Run.campaign_id == campaign_id)).first()
        assert run is not None
        return run


def _status(db_url: str, campaign_id: int) -> str | None:
    with session_scope(db_url) as session:
        return session.scalar(select(Run.status).where(Run.campaign_id == campaign_id))


def _sent(db_url: str, run_id: int) -> int:
    return status_counts(db_url, run_id).get("sent", 0)


def _assert_exactly_once(
    db_url: str, sandbox: SandboxHandle, campaign_id: int, phones: list[str]
) -> Run:
    run = _run(db_url, campaign_id)
    assert run.status == "completed"
    assert status_counts(db_url, run.id) == {"sent": len(phones)}
    ledger = _ledger(sandbox, run.key)
    assert ledger["duplicates"] == []
    assert ledger["by_recipient"] == {p: 1 for p in phones}
    return run


@contextmanager
def _sandbox(**config: Any) -> Iterator[SandboxHandle]:
    handle = start_in_thread(SandboxConfig(api_key="resilience-key", **config))
    try:
        yield handle
    finally:
        handle.stop()


def _start_sending(env: dict[str, str], db_url: str, campaign_id: int) -> int:
    """`clarion campaign start`, then wait until the run is sending; returns its id."""
    clarion(env, "campaign", "start", str(campaign_id))
    return int(
        wait_for(
            lambda: _status(db_url, campaign_id) == "sending" and _run(db_url, campaign_id).id,
            60,
            what="sending",
        )
    )


WORKER = ["worker", "-c", "1", "--loglevel", "WARNING"]
SCHEDULER = ["scheduler", "--loglevel", "WARNING"]
FAST = {
    "CLARION_LEASE_SECONDS": "8",
    "CLARION_HTTP_TIMEOUT_SECONDS": "5",
    "CLARION_RECONCILE_GRACE_SECONDS": "2",
    "CLARION_RECONCILE_AFTER_SECONDS": "0.5",
    "CLARION_RETRY_BASE_SECONDS": "0.2",
    "CLARION_RETRY_MAX_SECONDS": "2",
}


def test_kill_9_of_workers_mid_run_loses_and_duplicates_nothing(
    pg_url: str, redis_prefix: str, broker: str, tmp_path: Path
) -> None:
    """A killed worker's task comes back: after Redis's visibility timeout, or on RabbitMQ
    (which has none) when the dead worker's connection closes; the claims make it harmless."""
    phones = us_numbers(20_000)
    campaign_id = _create(pg_url, phones)
    with _sandbox(latency_ms=40) as sandbox:
        env = scaled_env(
            pg_url, redis_prefix, sandbox, broker=broker, CLARION_BATCH_SIZE="200", **FAST
        )
        with processes(env, [*WORKER, "--hostname", "steady@%h"], SCHEDULER, log_dir=tmp_path):
            run_id = _start_sending(env, pg_url, campaign_id)
            kills = 0
            for round_ in range(4):
                with processes(
                    env, [*WORKER, "--hostname", f"victim{round_}@%h"], log_dir=tmp_path
                ) as [victim]:
                    before = _sent(pg_url, run_id)
                    target = before + 1500
                    wait_for(lambda t=target: _sent(pg_url, run_id) > t, 120, 0.1, "progress")
                    parent = psutil.Process(victim.pid)
                    for proc in [*parent.children(recursive=True), parent]:
                        proc.send_signal(signal.SIGKILL)
                    kills += 1
                    victim.wait(10)
                if _status(pg_url, campaign_id) != "sending":
                    break
            wait_for(lambda: _status(pg_url, campaign_id) == "completed", 300, what="completion")
        assert kills >= 2
        _assert_exactly_once(pg_url, sandbox, campaign_id, phones)


def _redis_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    wait_for(
        lambda: (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True
            ).stdout.strip()
            == b"PONG"
        ),
        20,
        0.1,
        "redis",
    )
    return proc


def test_redis_restart_mid_run_completes_exactly_once(
    pg_url: str, redis_prefix: str, broker: str, tmp_path: Path
) -> None:
    """A Redis of the test's own, killed and started again empty. On the Redis broker the
    queued tasks go with it; on RabbitMQ the tasks stay and only the limiter and the
    scheduler lock are lost (no answer from the limiter is no permission to send)."""
    from tests.processes import free_port

    port = free_port()
    redis_proc = _redis_server(port, tmp_path / "redis.log")
    phones = us_numbers(8_000)
    campaign_id = _create(pg_url, phones)
    try:
        with _sandbox(latency_ms=30) as sandbox:
            url = f"redis://127.0.0.1:{port}/0"
            env = scaled_env(
                pg_url,
                redis_prefix,
                sandbox,
                CLARION_BATCH_SIZE="200",
                CLARION_BROKER_URL=url if broker == "redis" else broker_url(broker),
                CLARION_REDIS_URL=url,
                **FAST,
            )
            with processes(
                env, WORKER, [*WORKER, "--hostname", "second@%h"], SCHEDULER, log_dir=tmp_path
            ):
                run_id = _start_sending(env, pg_url, campaign_id)
                wait_for(lambda: _sent(pg_url, run_id) > 1000, 60, 0.1, "progress")
                redis_proc.kill()  # everything queued in the broker is gone with it
                redis_proc.wait()
                time.sleep(2)
                redis_proc = _redis_server(port, tmp_path / "redis.log")
                wait_for(
                    lambda: _status(pg_url, campaign_id) == "completed", 240, what="completion"
                )
            _assert_exactly_once(pg_url, sandbox, campaign_id, phones)
    finally:
        redis_proc.kill()


def test_provider_faults_and_a_429_burst(
    pg_url: str, redis_prefix: str, broker: str, tmp_path: Path
) -> None:
    phones = us_numbers(10_000)
    campaign_id = _create(pg_url, phones)
    with _sandbox(error_rate=0.05, drop_rate=0.05, seed=7) as sandbox:
        env = scaled_env(
            pg_url, redis_prefix, sandbox, broker=broker, CLARION_BATCH_SIZE="100", **FAST
        )
        with processes(
            env, WORKER, [*WORKER, "--hostname", "second@%h"], SCHEDULER, log_dir=tmp_path
        ):
            run_id = _start_sending(env, pg_url, campaign_id)
            wait_for(lambda: _sent(pg_url, run_id) > 2000, 120, 0.1, "progress")
            httpx.post(
                f"{sandbox.root_url}/_sandbox/config",
                json={"rate_limit_rps": 2, "rate_limit_burst": 1},
                timeout=10,
            )
            time.sleep(3)
            httpx.post(
                f"{sandbox.root_url}/_sandbox/config", json={"rate_limit_rps": 0}, timeout=10
            )
            wait_for(lambda: _status(pg_url, campaign_id) == "completed", 300, what="completion")
        stats = _sandbox_stats(sandbox)
        run = _assert_exactly_once(pg_url, sandbox, campaign_id, phones)
        assert (
            stats["errors_injected"] > 0
            and stats["drops_injected"] > 0
            and stats["rate_limited"] > 0
        )
        assert run.rate_limited > 0
        with session_scope(pg_url) as session:
            max_attempts = session.scalar(
                select(func.max(Message.attempts)).where(Message.run_id == run.id)
            )
        assert max_attempts is not None and max_attempts < 5, "a 429 was counted as an attempt"


def test_429s_alone_never_count_as_attempts(
    pg_url: str, redis_prefix: str, broker: str, tmp_path: Path
) -> None:
    phones = us_numbers(3_000)
    campaign_id = _create(pg_url, phones)
    with _sandbox(rate_limit_rps=4, rate_limit_burst=1) as sandbox:
        env = scaled_env(
            pg_url, redis_prefix, sandbox, broker=broker, CLARION_BATCH_SIZE="100", **FAST
        )
        with processes(
            env, WORKER, [*WORKER, "--hostname", "second@%h"], SCHEDULER, log_dir=tmp_path
        ):
            clarion(env, "campaign", "start", str(campaign_id))
            wait_for(lambda: _status(pg_url, campaign_id) == "completed", 300, what="completion")
        run = _assert_exactly_once(pg_url, sandbox, campaign_id, phones)
        assert _sandbox_stats(sandbox)["rate_limited"] > 0
        with session_scope(pg_url) as session:
            attempts = set(
                session.scalars(select(Message.attempts).where(Message.run_id == run.id))
            )
        assert attempts == {1}


def test_four_workers_stay_inside_the_provider_limit(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    limit = 10
    phones = us_numbers(6_000)
    campaign_id = _create(pg_url, phones)
    config = {"rate_limit_rps": limit, "rate_limit_burst": limit, "receipt_delay_seconds": 0.2}
    with _sandbox(**config) as sandbox:
        env = scaled_env(
            pg_url,
            redis_prefix,
            sandbox,
            CLARION_BATCH_SIZE="50",
            CLARION_RATE_LIMIT_REQUESTS_PER_SECOND=str(limit),
            CLARION_DISPATCH_PARALLELISM="4",
            # Polls every second: they share the provider's limit with the sends.
            CLARION_INBOUND_POLL_SECONDS="1",
            CLARION_RECEIPTS_POLL_SECONDS="1",
            **FAST,
        )
        workers = [[*WORKER, "--hostname", f"w{i}@%h"] for i in range(4)]
        with processes(env, *workers, SCHEDULER, log_dir=tmp_path):
            clarion(env, "campaign", "start", str(campaign_id))
            wait_for(lambda: _status(pg_url, campaign_id) == "completed", 300, what="completion")
            # Receipts take only spare capacity: they are read once the sends are done.
            wait_for(lambda: _delivered(pg_url) == len(phones), 120, what="every receipt read")
        _assert_exactly_once(pg_url, sandbox, campaign_id, phones)
        stats = _sandbox_stats(sandbox)
        by_endpoint = stats["requests_by_endpoint"]
        assert by_endpoint.get("GET /v3/sms/inbound", 0) >= 5  # STOP polls went on throughout
        assert stats["max_requests_in_1s"] <= 2 * limit  # the provider's rate plus its burst
        assert stats["rate_limited"] <= 0.02 * stats["requests_total"]


def _delivered(db_url: str) -> int:
    with session_scope(db_url) as session:
        return int(
            session.scalar(select(func.count()).where(Message.delivery_status == "delivered")) or 0
        )


def test_pause_resume_and_cancel(
    pg_url: str, redis_prefix: str, broker: str, tmp_path: Path
) -> None:
    phones = us_numbers(6_000)
    campaign_id = _create(pg_url, phones)
    # Slow enough (about 400 messages/s) that the run is far from done when each command
    # lands, even though starting a `clarion` process takes a second or two.
    with _sandbox(latency_ms=200) as sandbox:
        env = scaled_env(
            pg_url, redis_prefix, sandbox, broker=broker, CLARION_BATCH_SIZE="50", **FAST
        )
        with processes(
            env, WORKER, [*WORKER, "--hostname", "second@%h"], SCHEDULER, log_dir=tmp_path
        ):
            run_id = _start_sending(env, pg_url, campaign_id)
            key = _run(pg_url, campaign_id).key
            wait_for(lambda: _sent(pg_url, run_id) > 500, 60, 0.1, "progress")
            clarion(env, "campaign", "pause", str(campaign_id))
            paused_at = _ledger(sandbox, key)["accepted_total"]
            time.sleep(3)
            assert _ledger(sandbox, key)["accepted_total"] == paused_at, "sent while paused"
            clarion(env, "campaign", "resume", str(campaign_id))
            wait_for(
                lambda: _sent(pg_url, run_id) > paused_at + 500, 60, 0.1, "progress after resume"
            )
            clarion(env, "campaign", "cancel", str(campaign_id))
            cancelled_at = _ledger(sandbox, key)["accepted_total"]
            time.sleep(3)
            ledger = _ledger(sandbox, key)
        assert ledger["accepted_total"] == cancelled_at, "sent after cancel returned"
        assert ledger["duplicates"] == []
        counts = status_counts(pg_url, run_id)
        assert counts["sent"] == cancelled_at
        assert counts.get("cancelled", 0) > 1000, counts
        assert counts["sent"] + counts["cancelled"] == len(phones)
        assert _status(pg_url, campaign_id) == "cancelled"

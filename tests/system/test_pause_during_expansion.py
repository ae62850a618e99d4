"""A run paused (and resumed) while its audience is still being expanded: real worker
processes, PostgreSQL, Redis and the sandbox's ledger as the witness."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from campaigns.db import session_scope
from campaigns.runs import pause_campaign
from tests.procs import clarion, processes, scaled_env, wait_for
from tests.seed import status_counts, us_numbers
from tests.system.test_workers_resilience import (
    FAST,
    SCHEDULER,
    WORKER,
    _assert_exactly_once,
    _create,
    _run,
    _sandbox,
    _status,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _kill_9(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        parent = psutil.Process(proc.pid)
        for child in [*parent.children(recursive=True), parent]:
            child.send_signal(signal.SIGKILL)
        proc.wait(10)


def _messages(url: str, run_id: int) -> int:
    return sum(status_counts(url, run_id).values())


def _wait_for_the_end(url: str, campaign_id: int, run_id: int) -> None:
    """Within the test's own timeout, so a run that does not end says where it stands."""
    try:
        wait_for(
            lambda: _status(url, campaign_id) in ("completed", "failed", "cancelled"),
            300,
            what="the run to end",
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: run {_status(url, campaign_id)}, messages {status_counts(url, run_id)}"
        ) from None


def test_pause_in_the_first_second_then_resume_sends_everyone_once(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    phones = us_numbers(300_000)
    campaign_id = _create(pg_url, phones)
    with _sandbox() as sandbox:
        env = scaled_env(pg_url, redis_prefix, sandbox, **FAST)
        with processes(env, SCHEDULER, log_dir=tmp_path):
            with processes(
                env, WORKER, [*WORKER, "--hostname", "second@%h"], log_dir=tmp_path
            ) as workers:
                clarion(env, "campaign", "start", str(campaign_id))
                run = _run(pg_url, campaign_id)
                wait_for(lambda: _messages(pg_url, run.id) > 0, 60, 0.05, "expansion")
                # What `clarion campaign pause` does, without a process start in between:
                # the pause lands within the first second of the run, mid-expansion.
                with session_scope(pg_url) as session:
                    assert pause_campaign(session, campaign_id) == [run.id]
                # The workers die while the run is paused, the expansion with them.
                _kill_9(workers)
            written = _messages(pg_url, run.id)
            assert 0 < written < len(phones), "the expansion was not cut short"
            with processes(env, WORKER, [*WORKER, "--hostname", "second@%h"], log_dir=tmp_path):
                clarion(env, "campaign", "resume", str(campaign_id))
                # The rows that exist are sent first; the run must not be called complete
                # then, and the rest of the audience must still be expanded and sent.
                _wait_for_the_end(pg_url, campaign_id, run.id)
                time.sleep(2)  # an expansion still writing would show as rows left pending
        assert status_counts(pg_url, run.id) == {"sent": len(phones)}
        _assert_exactly_once(pg_url, sandbox, campaign_id, phones)


# A dead expansion is taken up again within this long of a resume, not after the
# scheduler's old 20 s without activity (which sending the rows that exist kept renewing).
EXPANSION_BACK_WITHIN = 8.0


def test_resume_takes_a_dead_expansion_up_again_at_once(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    phones = us_numbers(300_000)
    campaign_id = _create(pg_url, phones)
    with _sandbox() as sandbox:
        env = scaled_env(pg_url, redis_prefix, sandbox, **FAST)
        with processes(env, SCHEDULER, log_dir=tmp_path):
            with processes(env, WORKER, log_dir=tmp_path) as workers:
                clarion(env, "campaign", "start", str(campaign_id))
                run = _run(pg_url, campaign_id)
                wait_for(lambda: _messages(pg_url, run.id) > 0, 60, 0.05, "expansion")
                with session_scope(pg_url) as session:
                    assert pause_campaign(session, campaign_id) == [run.id]
                _kill_9(workers)
            written = _messages(pg_url, run.id)
            assert 0 < written < len(phones), "the expansion was not cut short"
            with processes(env, WORKER, log_dir=tmp_path):
                time.sleep(5)  # the worker is up and waiting for work
                resumed = time.monotonic()
                clarion(env, "campaign", "resume", str(campaign_id))
                wait_for(
                    lambda: _messages(pg_url, run.id) > written, 60, 0.1, "the expansion again"
                )
                back = time.monotonic() - resumed
                assert back < EXPANSION_BACK_WITHIN, f"the expansion came back {back:.1f} s late"
                _wait_for_the_end(pg_url, campaign_id, run.id)
        assert status_counts(pg_url, run.id) == {"sent": len(phones)}
        _assert_exactly_once(pg_url, sandbox, campaign_id, phones)

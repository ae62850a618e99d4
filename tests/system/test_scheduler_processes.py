"""Two real `clarion scheduler` processes and a worker: one leader at a time, the standby
takes over within 30 s of the leader being killed, and each occurrence makes one run
whose recipients get one message each."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from campaigns.db import session_scope
from campaigns.models import Run
from campaigns.runs import create_campaign, start_campaign
from sandbox.server import start_in_thread
from tests.procs import processes, scaled_env, wait_for
from tests.seed import definition, seed_list, us_numbers

pytestmark = [pytest.mark.services, pytest.mark.slow]

LEADER_LINE = b"this process is now the leader"


def _leaders(logs: list[Path]) -> list[int]:
    return [i for i, log in enumerate(logs) if log.exists() and LEADER_LINE in log.read_bytes()]


def _runs(url: str) -> list[Run]:
    with session_scope(url) as session:
        return list(session.scalars(select(Run).order_by(Run.occurrence)))


def test_standby_scheduler_takes_over_and_each_occurrence_runs_once(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    phones = us_numbers(5)
    seed_list(pg_url, "customers", phones)
    with session_scope(pg_url) as session:
        # Every 5 seconds (croniter's sixth field is seconds).
        campaign = create_campaign(
            session, definition(["customers"], schedule={"cron": "* * * * * */5"})
        )
        start_campaign(session, campaign.id)
    sandbox = start_in_thread()
    env = scaled_env(pg_url, redis_prefix, sandbox)
    schedulers = [["scheduler", "--loglevel", "WARNING"]] * 2
    worker = ["worker", "-c", "1", "--loglevel", "WARNING"]
    try:
        with processes(env, *schedulers, worker, log_dir=tmp_path) as procs:
            logs = [tmp_path / f"proc-{i}-scheduler.log" for i in (0, 1)]
            wait_for(lambda: len(_runs(pg_url)) >= 2, timeout=60, what="the first runs")
            [leader] = _leaders(logs)  # exactly one of the two leads
            standby = 1 - leader
            os.killpg(procs[leader].pid, signal.SIGKILL)
            killed_at = time.monotonic()
            wait_for(lambda: standby in _leaders(logs), timeout=30, what="the standby to lead")
            took_over = time.monotonic() - killed_at
            before = len(_runs(pg_url))
            wait_for(lambda: len(_runs(pg_url)) >= before + 2, timeout=30, what="runs after")
            wait_for(
                lambda: all(r.status in ("completed", "skipped") for r in _runs(pg_url)[:-1]),
                timeout=60,
                what="the runs to finish",
            )
        runs = _runs(pg_url)
        occurrences = [r.occurrence.astimezone(UTC) for r in runs]
        assert len(set(occurrences)) == len(occurrences)
        assert all(o.second % 5 == 0 and o.microsecond == 0 for o in occurrences)
        assert took_over <= 30
        for run in runs:
            if run.status != "completed":
                continue
            ledger = httpx.get(
                f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": run.key}
            ).json()
            assert ledger["by_recipient"] == {p: 1 for p in phones}, run.id
    finally:
        sandbox.stop()

"""Retention: message rows of runs finished long ago are deleted in batches; the run's
totals (status counts, price, parts) stay; other runs are untouched."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message, Run
from campaigns.retention import purge_messages
from campaigns.stats import run_stats
from clarion.cli import app
from tests.seed import seed_list, us_numbers


def finished_run(url: str, lists: list[str], days_ago: float, status: str = "completed") -> int:
    from tests.seed import seed_campaign

    _, run_id = seed_campaign(url, lists)
    with session_scope(url) as session:
        expand_run(session, run_id)
        ids = list(session.scalars(select(Message.id).where(Message.run_id == run_id)))
        session.execute(
            update(Message)
            .where(Message.id.in_(ids[:-2]))
            .values(status="sent", price=Decimal("0.05"), parts=1)
        )
        session.execute(update(Message).where(Message.id.in_(ids[-2:])).values(status="failed"))
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status=status, finished_at=utcnow() - timedelta(days=days_ago))
        )
    return run_id


def rows(url: str, run_id: int) -> int:
    with session_scope(url) as session:
        return int(session.scalar(select(func.count()).where(Message.run_id == run_id)) or 0)


def totals(url: str, run_id: int) -> tuple[dict[str, int], Decimal, int]:
    with session_scope(url) as session:
        stats = run_stats(session, run_id)
    return {s: n for s, n in stats.counts.items() if n}, stats.price, stats.parts


def test_purge_deletes_old_finished_runs_rows_and_keeps_their_totals(db_url: str) -> None:
    seed_list(db_url, "a", us_numbers(23))
    old = finished_run(db_url, ["a"], days_ago=100)
    recent = finished_run(db_url, ["a"], days_ago=10)
    cancelled = finished_run(db_url, ["a"], days_ago=200, status="cancelled")
    sending = finished_run(db_url, ["a"], days_ago=300, status="sending")
    before = {r: totals(db_url, r) for r in (old, recent, cancelled, sending)}
    assert before[old] == ({"sent": 21, "failed": 2}, Decimal("1.05"), 21)
    with session_scope(db_url) as session:
        report = purge_messages(session, timedelta(days=90), batch=5)
    assert (report.runs, report.messages, report.done) == (2, 46, True)
    assert [rows(db_url, r) for r in (old, recent, cancelled, sending)] == [0, 23, 0, 23]
    assert {r: totals(db_url, r) for r in before} == before
    with session_scope(db_url) as session:  # nothing left to do
        assert purge_messages(session, timedelta(days=90)).messages == 0


def test_purge_stops_after_max_batches_and_goes_on_later(db_url: str) -> None:
    seed_list(db_url, "a", us_numbers(23))
    old = finished_run(db_url, ["a"], days_ago=100)
    before = totals(db_url, old)
    with session_scope(db_url) as session:
        first = purge_messages(session, timedelta(days=90), batch=5, max_batches=2)
    assert (first.messages, first.done, rows(db_url, old)) == (10, False, 13)
    assert totals(db_url, old) == before
    with session_scope(db_url) as session:
        purge_messages(session, timedelta(days=90), batch=5)
    assert rows(db_url, old) == 0 and totals(db_url, old) == before


def test_messages_purge_command(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    from config.settings import get_settings

    get_settings.cache_clear()
    seed_list(sqlite_url, "a", us_numbers(5))
    old = finished_run(sqlite_url, ["a"], days_ago=100)
    runner = CliRunner()
    bad = runner.invoke(app, ["messages", "purge", "--older-than", "ninety days"])
    assert bad.exit_code == 1 and "--older-than: not a duration" in bad.output
    assert "Traceback" not in bad.output
    done = runner.invoke(app, ["messages", "purge", "--older-than", "90d", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"runs": 1, "messages": 5}
    assert rows(sqlite_url, old) == 0
    get_settings.cache_clear()


def test_the_scheduler_purges_when_retention_is_set(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config.settings import get_settings
    from workers.tasks import housekeeping

    seed_list(pg_url, "a", us_numbers(7))
    old = finished_run(pg_url, ["a"], days_ago=40)
    monkeypatch.setenv("CLARION_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    try:
        housekeeping()  # retention off by default
        assert rows(pg_url, old) == 7
        monkeypatch.setenv("CLARION_RETENTION_DAYS", "30")
        get_settings.cache_clear()
        housekeeping()
        assert rows(pg_url, old) == 0
        assert totals(pg_url, old)[0] == {"sent": 5, "failed": 2}
    finally:
        get_settings.cache_clear()

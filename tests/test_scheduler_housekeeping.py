"""The scheduler's housekeeping vacuums a messages table full of dead rows."""

from __future__ import annotations

from sqlalchemy import text, update

from campaigns.db import get_engine, session_scope
from campaigns.expand import expand_run
from campaigns.models import Message
from scheduler.housekeeping import vacuum_messages_if_needed
from tests.procs import wait_for
from tests.seed import seed_campaign, seed_list, us_numbers


def _table_stat(url: str, column: str) -> int:
    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        value = conn.scalar(
            text(f"SELECT {column} FROM pg_stat_user_tables WHERE relname = 'messages'")
        )
        return int(value or 0)


def test_vacuums_only_past_the_threshold(pg_url: str) -> None:
    seed_list(pg_url, "a", us_numbers(300))
    _, run_id = seed_campaign(pg_url, ["a"])
    with session_scope(pg_url) as session:
        expand_run(session, run_id)
        for status in ("claimed", "sent"):  # two rewrites of each row: 600 dead rows
            session.execute(update(Message).values(status=status))
            session.commit()
    # Backends publish table statistics shortly after their transactions end.
    wait_for(lambda: _table_stat(pg_url, "n_dead_tup") >= 600, 30, 0.5, "dead rows counted")
    assert vacuum_messages_if_needed(pg_url, threshold=10_000) is False
    assert vacuum_messages_if_needed(pg_url, threshold=100) is True
    wait_for(lambda: _table_stat(pg_url, "vacuum_count") == 1, 30, 0.5, "the vacuum counted")


def test_sqlite_is_left_alone(sqlite_url: str) -> None:
    assert vacuum_messages_if_needed(sqlite_url, threshold=0) is False

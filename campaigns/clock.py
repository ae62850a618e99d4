"""The one place that reads a clock, so tests can move time.

Leases, attempt times and history windows use the database's clock (``db_now``): workers
on several machines then agree on what "expired" means even when their own clocks drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, func, select, text
from sqlalchemy.orm import Session


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything Clarion stores is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def db_now(session: Session) -> datetime:
    """The database server's time (SQLite: the clock of the host it runs on, in-process)."""
    if session.get_bind().dialect.name == "postgresql":
        # clock_timestamp(), not now(): now() is the start of the transaction.
        value = session.scalar(select(func.clock_timestamp()))
    else:
        stamp = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
        value = datetime.fromisoformat(str(stamp))
    aware = as_utc(value)
    assert aware is not None
    return aware


def db_now_sql(session: Session) -> Any:
    """The database's clock for a value a statement writes or compares: on PostgreSQL an
    expression the statement reads itself (its own start, the same instant wherever the
    statement uses it), saving the round trip ``db_now`` costs; on SQLite, ``db_now``."""
    if session.get_bind().dialect.name == "postgresql":
        return func.statement_timestamp(type_=DateTime(timezone=True))
    return db_now(session)

"""A run's activity minute by minute: messages the provider accepted and 429 answers.

The dashboard's chart and its current rate read this small table (a row per run per
minute) instead of grouping a million message rows by their ``sent_at``. The dispatcher
adds to the current minute in the transaction that records the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.clock import as_utc
from campaigns.models import RunMinute, table


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def record_minute(
    session: Session, run_id: int, at: datetime, *, accepted: int = 0, rate_limited: int = 0
) -> None:
    """Add to the run's counters of the minute ``at`` falls in (no commit)."""
    if not accepted and not rate_limited:
        return
    insert: Any = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else (sqlite.insert)
    )
    t = table(RunMinute)
    stmt = insert(t).values(
        run_id=run_id, minute=minute_of(at), accepted=accepted, rate_limited=rate_limited
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.c.run_id, t.c.minute],
            set_={
                "accepted": t.c.accepted + stmt.excluded.accepted,
                "rate_limited": t.c.rate_limited + stmt.excluded.rate_limited,
            },
        )
    )


@dataclass(frozen=True)
class Minute:
    minute: datetime
    accepted: int
    rate_limited: int


def minutes(session: Session, run_id: int, *, since: datetime, until: datetime) -> list[Minute]:
    """Every minute from ``since`` to ``until`` (gaps filled with zeros), oldest first."""
    rows = {
        as_utc(m): (a, r)
        for m, a, r in session.execute(
            select(RunMinute.minute, RunMinute.accepted, RunMinute.rate_limited)
            .where(RunMinute.run_id == run_id, RunMinute.minute >= minute_of(since))
            .order_by(RunMinute.minute)
        )
    }
    out, at = [], minute_of(since)
    while at <= until:
        accepted, limited = rows.get(at, (0, 0))
        out.append(Minute(at, int(accepted), int(limited)))
        at += timedelta(minutes=1)
    return out

"""Retention: delete the message rows of runs that finished long ago.

A million-recipient run leaves a million rows; kept forever they slow every index and
vacuum of the messages table. ``purge_messages`` deletes the rows of runs that finished
(completed, cancelled, failed) before a cutoff, a batch at a time, each batch its own
short transaction: no lock is held for long, and sending runs go on meanwhile. A run's
totals (counts by status, price, parts, and of delivery receipts) outlive its rows: on
PostgreSQL the triggers of migrations 0008 and 0013 have kept them all along; on SQLite
each batch adds the totals of what it deletes, in the same transaction. The run rows
themselves stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from campaigns.clock import utcnow
from campaigns.models import Message, Run, RunReceiptTotal, RunStatusTotal

FINISHED = ("completed", "cancelled", "failed")
BATCH = 5000
# The scheduler's housekeeping (every 30 s) deletes at most this many batches per turn.
BATCHES_PER_HOUSEKEEPING = 20


@dataclass
class PurgeReport:
    runs: int = 0  # runs whose rows were all deleted
    messages: int = 0
    done: bool = True  # False: stopped at max_batches with rows left


def purgeable_runs(session: Session, cutoff: datetime) -> list[int]:
    """Finished runs that ended before ``cutoff`` and still have message rows."""
    ended = func.coalesce(Run.finished_at, Run.last_activity_at, Run.created_at)
    has_rows = select(Message.id).where(Message.run_id == Run.id).exists()
    query = select(Run.id).where(Run.status.in_(FINISHED), ended < cutoff, has_rows)
    return list(session.scalars(query.order_by(Run.id)))


def purge_messages(
    session: Session,
    older_than: timedelta,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
    max_batches: int | None = None,
) -> PurgeReport:
    """Delete the message rows of runs finished more than ``older_than`` ago; commits per
    batch. ``max_batches`` bounds one call (the scheduler's share of a tick)."""
    cutoff = (now or utcnow()) - older_than
    report = PurgeReport()
    batches = 0
    keep_totals = session.get_bind().dialect.name != "postgresql"
    for run_id in purgeable_runs(session, cutoff):
        while True:
            if max_batches is not None and batches >= max_batches:
                report.done = False
                return report
            ids = list(
                session.scalars(select(Message.id).where(Message.run_id == run_id).limit(batch))
            )
            if not ids:
                report.runs += 1
                break
            if keep_totals:
                _append_totals(session, run_id, ids)
            session.execute(delete(Message).where(Message.id.in_(ids)))
            session.commit()
            report.messages += len(ids)
            batches += 1
    return report


def _append_totals(session: Session, run_id: int, ids: list[int]) -> None:
    """SQLite: the totals of the rows about to be deleted, kept on the run's totals."""
    rows = session.execute(
        select(
            Message.status,
            func.count(),
            func.coalesce(func.sum(Message.price), 0),
            func.coalesce(func.sum(Message.parts), 0),
        )
        .where(Message.id.in_(ids))
        .group_by(Message.status)
    ).all()
    session.execute(
        insert(RunStatusTotal),
        [
            {"run_id": run_id, "status": s, "messages": n, "price": p, "parts": k}
            for s, n, p, k in rows
        ],
    )
    receipts = session.execute(
        select(Message.delivery_status, func.count())
        .where(Message.id.in_(ids), Message.delivery_status.is_not(None))
        .group_by(Message.delivery_status)
    ).all()
    if receipts:
        t = RunReceiptTotal
        add = sqlite_insert(t).values(
            [
                {"run_id": run_id, "delivery_status": s, "writer": 0, "messages": n}
                for s, n in receipts
            ]
        )
        session.execute(
            add.on_conflict_do_update(
                index_elements=[t.run_id, t.delivery_status, t.writer],
                set_={"messages": t.messages + add.excluded.messages},
            )
        )

"""Counts, money and speed of a run, for `campaign status` and the demo summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.clock import as_utc, utcnow
from campaigns.models import MESSAGE_STATUSES, Message, Run, RunReceiptTotal, RunStatusTotal


@dataclass
class RunStats:
    run_id: int
    campaign_id: int
    key: str
    status: str
    status_reason: str | None
    counts: dict[str, int]
    total: int
    duplicates_removed: int
    rate_limited: int
    price: Decimal
    parts: int
    failure_reasons: dict[str, int] = field(default_factory=dict)
    waiting: int = 0
    next_due: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_seconds: float = 0.0
    sent_per_second: float = 0.0
    # Delivery receipts among the sent messages (pushed to the webhook or polled).
    delivered: int = 0
    undelivered: int = 0

    @property
    def remaining(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("pending", "claimed", "unknown"))

    @property
    def eta_seconds(self) -> float | None:
        """Time left at the rate so far; None before anything was sent or once done."""
        if not self.remaining or self.sent_per_second <= 0:
            return None
        return self.remaining / self.sent_per_second

    @property
    def done(self) -> int:
        return self.total - sum(self.counts.get(s, 0) for s in ("pending", "claimed", "unknown"))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["price"] = str(self.price)
        for key in ("next_due", "started_at", "finished_at"):
            value = data[key]
            data[key] = value.isoformat() if value else None
        data["done"] = self.done
        data["remaining"] = self.remaining
        data["eta_seconds"] = self.eta_seconds
        return data


# 300 (temporary failure) is left out: ClickSend may still deliver it.
UNDELIVERED = ("failed", "undelivered", "rejected", "expired")


def delivery_counts(session: Session, run_id: int) -> tuple[int, int]:
    """(delivered, undelivered) receipts of the run's sent messages. PostgreSQL keeps them
    counted as they arrive (the triggers of migration 0013): a sum of a few rows, however
    large the run. SQLite counts the rows that have a receipt (a partial index of them),
    plus the counts the retention purge kept of rows it deleted."""
    found: dict[str, int] = {}

    def add(rows: Any) -> None:
        for status, count in rows:
            key = str(status).lower()
            found[key] = found.get(key, 0) + int(count or 0)

    t = RunReceiptTotal
    add(
        session.execute(
            select(t.delivery_status, func.sum(t.messages))
            .where(t.run_id == run_id)
            .group_by(t.delivery_status)
        )
    )
    if session.get_bind().dialect.name != "postgresql":
        add(
            session.execute(
                select(Message.delivery_status, func.count())
                .where(Message.run_id == run_id, Message.delivery_status.is_not(None))
                .group_by(Message.delivery_status)
            )
        )
    delivered = found.get("delivered", 0)
    undelivered = sum(n for status, n in found.items() if status in UNDELIVERED)
    return delivered, undelivered


def status_counts(session: Session, run_id: int) -> dict[str, int]:
    """How many of the run's messages are in each status (statuses with none left out)."""
    return {status: n for status, (n, _, _) in _totals(session, run_id).items() if n}


def _totals(session: Session, run_id: int) -> dict[str, tuple[int, Decimal, int]]:
    """(messages, price, parts) per status. PostgreSQL keeps them as the run goes (the
    triggers of migration 0008): a sum of a few thousand rows, however large the run.
    SQLite counts the rows, plus the totals the retention purge kept of rows it deleted."""
    totals: dict[str, tuple[int, Decimal, int]] = {}

    def add(status: str, n: Any, price: Any, parts: Any) -> None:
        old = totals.get(status, (0, Decimal(0), 0))
        totals[status] = (
            old[0] + int(n or 0),
            old[1] + Decimal(str(price or 0)),
            old[2] + int(parts or 0),
        )

    t = RunStatusTotal
    for row in session.execute(
        select(t.status, func.sum(t.messages), func.sum(t.price), func.sum(t.parts))
        .where(t.run_id == run_id)
        .group_by(t.status)
    ):
        add(*row)
    if session.get_bind().dialect.name != "postgresql":
        for live in session.execute(
            select(
                Message.status,
                func.count(),
                func.coalesce(func.sum(Message.price), 0),
                func.coalesce(func.sum(Message.parts), 0),
            )
            .where(Message.run_id == run_id)
            .group_by(Message.status)
        ):
            add(*live)
    return totals


def run_stats(session: Session, run_id: int, now: datetime | None = None) -> RunStats:
    now = now or utcnow()
    run = session.get(Run, run_id)
    if run is None:
        raise ValueError(f"run {run_id}: no such run")
    totals = _totals(session, run_id)
    counts = {status: 0 for status in MESSAGE_STATUSES} | {
        status: n for status, (n, _, _) in totals.items() if n
    }
    _, price, parts = totals.get("sent", (0, Decimal(0), 0))
    reasons = {
        str(reason): int(count)
        for reason, count in session.execute(
            select(Message.error, func.count())
            .where(Message.run_id == run_id, Message.status.in_(("failed", "skipped", "expired")))
            .group_by(Message.error)
            .order_by(func.count().desc())
        )
    }
    waiting, next_due = session.execute(
        select(func.count(), func.min(Message.not_before)).where(
            Message.run_id == run_id, Message.status == "pending", Message.not_before > now
        )
    ).one()
    delivered, undelivered = delivery_counts(session, run_id)
    started = as_utc(run.started_at)
    finished = as_utc(run.finished_at)
    elapsed = ((finished or now) - started).total_seconds() if started else 0.0
    sent = counts["sent"]
    return RunStats(
        run_id=run.id,
        campaign_id=run.campaign_id,
        key=run.key,
        status=run.status,
        status_reason=run.status_reason,
        counts=counts,
        total=sum(counts.values()),
        duplicates_removed=run.duplicates_removed,
        rate_limited=run.rate_limited,
        price=Decimal(str(price)),
        parts=int(parts or 0),
        failure_reasons=reasons,
        waiting=int(waiting or 0),
        next_due=as_utc(next_due),
        started_at=started,
        finished_at=finished,
        elapsed_seconds=elapsed,
        sent_per_second=sent / elapsed if elapsed > 0 else 0.0,
        delivered=delivered,
        undelivered=undelivered,
    )

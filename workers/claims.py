"""Claiming, releasing and settling message rows.

A claim is an UPDATE of pending rows to 'claimed' with a random token and a lease, taken
with FOR UPDATE SKIP LOCKED on PostgreSQL, so two copies of the same task (a duplicated
Celery message, two workers) can never hold the same row. Every later write names the
token, so a worker whose lease was taken over cannot overwrite the new owner's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from campaigns.models import Message, table

_messages = table(Message)


@dataclass(frozen=True)
class Claimed:
    id: int
    phone: str
    body: str
    attempts: int
    schedule: int | None = None  # provider-side schedule, unix seconds


def claim_batch(
    session: Session, run_id: int, limit: int, *, token: str, lease_until: datetime, now: datetime
) -> list[Claimed]:
    """Claim up to ``limit`` due pending rows of a run (oldest first)."""
    due = select(Message.id).where(
        Message.run_id == run_id,
        Message.status == "pending",
        or_(Message.not_before.is_(None), Message.not_before <= now),
    )
    due = due.order_by(Message.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    # A CTE is evaluated once; PostgreSQL may run an IN (subquery ... LIMIT) more than once
    # and so claim more than `limit` rows.
    chosen = due.cte("chosen")
    rows = session.execute(
        update(Message)
        .where(Message.id == chosen.c.id, Message.status == "pending")
        .values(status="claimed", claim_token=token, lease_until=lease_until, attempted_at=None)
        .returning(
            Message.id, Message.phone, Message.body, Message.attempts, Message.provider_schedule
        )
        .execution_options(synchronize_session=False)
    ).all()
    return [Claimed(r.id, r.phone, r.body, r.attempts, r.provider_schedule) for r in rows]


def mark_attempted(session: Session, token: str, now: datetime) -> None:
    """Record that the request is about to leave: from here on the outcome may be unknown."""
    session.execute(
        update(Message)
        .where(Message.claim_token == token, Message.status == "claimed")
        .values(attempted_at=now)
        .execution_options(synchronize_session=False)
    )


def release(
    session: Session,
    token: str,
    *,
    status: str = "pending",
    not_before: datetime | None = None,
    count_attempt: bool = False,
    error: str | None = None,
) -> int:
    """Give every row of a claim back (or move them all to ``status``)."""
    values: dict[str, Any] = {
        "status": status,
        "claim_token": None,
        "lease_until": None,
        "not_before": not_before,
    }
    if count_attempt:
        values["attempts"] = Message.attempts + 1
    if error is not None:
        values["error"] = error
    result = session.execute(
        update(Message)
        .where(Message.claim_token == token, Message.status.in_(("claimed", "unknown")))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def settle(
    session: Session,
    rows: Sequence[dict[str, Any]],
    *,
    token: str | None = None,
    expect_status: str | None = None,
) -> None:
    """Write per-message results in one executemany.

    Each row has ``b_id`` and the columns to set (same keys in every row). With a token,
    only rows still held under that claim are written; with ``expect_status``, only rows
    still in that status (so a stale writer never overwrites newer progress).
    """
    if not rows:
        return
    columns = [k for k in rows[0] if k != "b_id"]
    where = [_messages.c.id == bindparam("b_id")]
    if token is not None:
        where.append(_messages.c.claim_token == token)
    if expect_status is not None:
        where.append(_messages.c.status == expect_status)
    stmt = update(_messages).where(and_(*where)).values({c: bindparam(f"v_{c}") for c in columns})
    params = [{"b_id": r["b_id"], **{f"v_{c}": r[c] for c in columns}} for r in rows]
    session.connection().execute(stmt, params)


def expire_leases(session: Session, now: datetime) -> tuple[int, int]:
    """Recover claims whose worker died.

    Rows whose request never left go straight back to pending; rows whose request may have
    left become 'unknown' and are settled by a provider look-up before any resend.
    """
    expired = and_(Message.status == "claimed", Message.lease_until < now)
    to_pending = session.execute(
        update(Message)
        .where(expired, Message.attempted_at.is_(None))
        .values(status="pending", claim_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    to_unknown = session.execute(
        update(Message)
        .where(expired, Message.attempted_at.is_not(None))
        .values(status="unknown", lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return int(to_pending), int(to_unknown)


def lease_deadline(now: datetime, lease_seconds: float) -> datetime:
    return now + timedelta(seconds=lease_seconds)

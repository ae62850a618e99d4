"""Applying delivery receipts: the one function both the receipt poller
(``workers.receipts``) and the webhook (``api.webhooks``) record a receipt through.

Status codes (ClickSend): 200 queued or sent, 201 delivered, 300 temporary failure,
301 failed (a cancelled message gets 301 too).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, and_, bindparam, or_, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from campaigns.models import Message, table

DELIVERY_STATUS = {200: "sent", 201: "delivered", 300: "temporary_failure", 301: "failed"}
# A receipt with one of these does not replace a final one that came before it (receipts
# can arrive out of order, and a replayed "queued" must not undo "delivered").
NOT_FINAL = ("sent", "temporary_failure")


def delivery_status(code: int | None, text: str | None) -> str:
    return DELIVERY_STATUS.get(code or 0, (text or "unknown").lower())


def apply_receipts(session: Session, receipts: Sequence[tuple[str, str]]) -> int:
    """Record (provider message id, delivery status) pairs, in the order given; returns
    how many messages were written to. Idempotent: applying the same receipts again
    changes nothing."""
    latest = _latest(receipts)
    if not latest:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _apply_unnest(session, latest)
    messages = table(Message)
    result = session.connection().execute(
        update(messages)
        .where(
            messages.c.provider_message_id == bindparam("m_id"),
            # A final status replaces anything; a passing one only a passing one. (Plain
            # comparisons: an IN list cannot be expanded in an executemany.)
            or_(
                messages.c.delivery_status.is_(None),
                and_(*(bindparam("m_status") != status for status in NOT_FINAL)),
                or_(*(messages.c.delivery_status == status for status in NOT_FINAL)),
            ),
        )
        .values(delivery_status=bindparam("m_status")),
        [{"m_id": m_id, "m_status": status} for m_id, status in latest.items()],
    )
    return max(0, int(result.rowcount))


def _latest(receipts: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The one status per message that its receipts, applied in order, would leave: the
    last final one if any (it replaces anything, and nothing after it replaces it), else
    the last one. Applied by the rule above, it ends where the receipts one by one end."""
    latest: dict[str, str] = {}
    for m_id, status in receipts:
        previous = latest.get(m_id)
        if previous is None or previous in NOT_FINAL or status not in NOT_FINAL:
            latest[m_id] = status
    return latest


def _apply_unnest(session: Session, latest: dict[str, str]) -> int:
    """PostgreSQL: one UPDATE ... FROM unnest for a whole chunk. An executemany ran one
    statement per receipt, and each fired the receipt totals' statement trigger
    (migration 0013) once more (bench/RESULTS.md)."""
    passing = ", ".join(f"'{status}'" for status in NOT_FINAL)
    stmt = text(
        "UPDATE messages AS m SET delivery_status = v.status"
        " FROM unnest(CAST(:ids AS varchar[]), CAST(:statuses AS varchar[])) AS v(m_id, status)"
        # ANY gives the planner the provider id index for the chunk's size; varchar as the
        # column is (a text[] would cast the column, and no index is on the cast).
        " WHERE m.provider_message_id = ANY(CAST(:ids AS varchar[]))"
        " AND m.provider_message_id = v.m_id"
        f" AND (m.delivery_status IS NULL OR v.status NOT IN ({passing})"
        f" OR m.delivery_status IN ({passing}))"
    ).bindparams(
        bindparam("ids", type_=ARRAY(String)), bindparam("statuses", type_=ARRAY(String))
    )
    result = session.execute(stmt, {"ids": list(latest), "statuses": list(latest.values())})
    return max(0, int(result.rowcount))  # type: ignore[attr-defined]

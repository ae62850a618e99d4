"""Applying delivery receipts: the one function both the receipt poller
(``workers.receipts``) and the webhook (``api.webhooks``) record a receipt through.

Status codes (ClickSend): 200 queued or sent, 201 delivered, 300 temporary failure,
301 failed (a cancelled message gets 301 too).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy.orm import Session

from campaigns.models import Message, table

DELIVERY_STATUS = {200: "sent", 201: "delivered", 300: "temporary_failure", 301: "failed"}
# A receipt with one of these does not replace a final one that came before it (receipts
# can arrive out of order, and a replayed "queued" must not undo "delivered").
NOT_FINAL = ("sent", "temporary_failure")


def delivery_status(code: int | None, text: str | None) -> str:
    return DELIVERY_STATUS.get(code or 0, (text or "unknown").lower())


def apply_receipts(session: Session, receipts: Sequence[tuple[str, str]]) -> int:
    """Record (provider message id, delivery status) pairs; returns the rows changed.
    Idempotent: applying the same receipt again changes nothing."""
    if not receipts:
        return 0
    messages = table(Message)
    rows = [{"m_id": m_id, "m_status": status} for m_id, status in receipts]
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
        rows,
    )
    return max(0, int(result.rowcount))

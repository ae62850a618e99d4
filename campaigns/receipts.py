"""Applying delivery receipts: the one function both the receipt poller
(``workers.receipts``) and the webhook (``api.webhooks``) record a receipt through.

Status codes (ClickSend): 200 queued or sent, 201 delivered, 300 temporary failure,
301 failed (a cancelled message gets 301 too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, String, and_, any_, bindparam, func, or_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

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
    messages = table(Message)
    current = messages.c.delivery_status
    if session.get_bind().dialect.name == "postgresql":
        # One statement for the whole chunk: an executemany ran one per receipt, and each
        # fired the receipt totals' statement trigger (migration 0013) once more.
        ids = bindparam("ids", list(latest), type_=ARRAY(String))
        v = (
            func.unnest(ids, bindparam("statuses", list(latest.values()), type_=ARRAY(String)))
            .table_valued("m_id", "status")
            .render_derived(name="v")
        )
        stmt = (
            update(messages)
            # ANY gives the planner the provider id index for the chunk's size.
            .where(messages.c.provider_message_id == any_(ids))
            .where(messages.c.provider_message_id == v.c.m_id, _replaces(current, v.c.status))
            .values(delivery_status=v.c.status)
        )
        return max(0, int(session.connection().execute(stmt).rowcount))
    new: BindParameter[str] = bindparam("m_status")
    result = session.connection().execute(
        update(messages)
        .where(messages.c.provider_message_id == bindparam("m_id"), _replaces(current, new))
        .values(delivery_status=new),
        [{"m_id": m_id, "m_status": status} for m_id, status in latest.items()],
    )
    return max(0, int(result.rowcount))


def _replaces(current: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether a receipt's status ``new`` replaces the ``current`` one: a final status
    replaces anything, a passing one only a passing one. (Plain comparisons: an IN list
    cannot be expanded in an executemany.)"""
    return or_(
        current.is_(None),
        and_(*(new != status for status in NOT_FINAL)),
        or_(*(current == status for status in NOT_FINAL)),
    )


def _latest(receipts: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The one status per message that its receipts, applied in order, would leave: the
    last final one if any (it replaces anything, and nothing after it replaces it), else
    the last one. Applied by ``_replaces``, it ends where the receipts one by one end."""
    latest: dict[str, str] = {}
    for m_id, status in receipts:
        previous = latest.get(m_id)
        if previous is None or previous in NOT_FINAL or status not in NOT_FINAL:
            latest[m_id] = status
    return latest

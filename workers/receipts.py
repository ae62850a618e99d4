"""Delivery receipts: poll the provider's unread receipts and record each message's
final delivery status.

Status codes (ClickSend): 200 queued or sent, 201 delivered, 300 temporary failure,
301 failed (a cancelled message gets 301 too). Receipts are marked read only up to the
newest one processed, so a receipt arriving meanwhile is kept for the next poll.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from campaigns.models import Message, table
from clicksend.client import ClickSendClient

CHUNK = 1000
DELIVERY_STATUS = {200: "sent", 201: "delivered", 300: "temporary_failure", 301: "failed"}


@dataclass
class ReceiptReport:
    read: int = 0
    matched: int = 0


def delivery_status(code: int | None, text: str | None) -> str:
    return DELIVERY_STATUS.get(code or 0, (text or "unknown").lower())


def _record(session: Session, rows: list[dict[str, str]]) -> int:
    """One executemany per chunk, committed at once: a big run's receipts never hold a
    long transaction open."""
    if not rows:
        return 0
    messages = table(Message)
    result = session.connection().execute(
        update(messages)
        .where(messages.c.provider_message_id == bindparam("m_id"))
        .values(delivery_status=bindparam("m_status")),
        rows,
    )
    session.commit()
    return max(0, int(result.rowcount))


def poll_receipts(session: Session, client: ClickSendClient) -> ReceiptReport:
    report = ReceiptReport()
    newest = 0
    chunk: list[dict[str, str]] = []
    for receipt in client.sms_receipts():
        report.read += 1
        newest = max(newest, receipt.timestamp or 0)
        if receipt.message_id:
            status = delivery_status(receipt.status_code, receipt.status_text)
            chunk.append({"m_id": receipt.message_id, "m_status": status})
        if len(chunk) >= CHUNK:
            report.matched += _record(session, chunk)
            chunk = []
    report.matched += _record(session, chunk)
    if report.read:
        client.mark_sms_receipts_read(date_before=newest + 1 if newest else None)
    return report

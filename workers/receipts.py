"""Delivery receipts: poll the provider's unread receipts and record each message's
final delivery status.

Status codes (ClickSend): 200 queued or sent, 201 delivered, 300 temporary failure,
301 failed (a cancelled message gets 301 too). Receipts are marked read only up to the
newest one processed, so a receipt arriving meanwhile is kept for the next poll.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns.models import Message
from clicksend.client import ClickSendClient

DELIVERY_STATUS = {200: "sent", 201: "delivered", 300: "temporary_failure", 301: "failed"}


@dataclass
class ReceiptReport:
    read: int = 0
    matched: int = 0


def delivery_status(code: int | None, text: str | None) -> str:
    return DELIVERY_STATUS.get(code or 0, (text or "unknown").lower())


def poll_receipts(session: Session, client: ClickSendClient) -> ReceiptReport:
    report = ReceiptReport()
    newest = 0
    for receipt in client.sms_receipts():
        report.read += 1
        newest = max(newest, receipt.timestamp or 0)
        if not receipt.message_id:
            continue
        result = session.execute(
            update(Message)
            .where(Message.provider_message_id == receipt.message_id)
            .values(delivery_status=delivery_status(receipt.status_code, receipt.status_text))
            .execution_options(synchronize_session=False)
        )
        report.matched += int(result.rowcount)  # type: ignore[attr-defined]
    session.commit()
    if report.read:
        client.mark_sms_receipts_read(date_before=newest + 1 if newest else None)
    return report

"""Delivery receipts: poll the provider's unread receipts and record each message's
final delivery status.

For high volumes ClickSend's push delivery (a receipt URL) is the better fit; polling takes
``MAX_PER_POLL`` receipts per poll.

Status codes (ClickSend): 200 queued or sent, 201 delivered, 300 temporary failure,
301 failed (a cancelled message gets 301 too). Receipts are marked read only up to the
newest one processed, so a receipt arriving meanwhile is kept for the next poll.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from campaigns.models import Message, table
from clicksend.client import ClickSendClient
from clicksend.errors import HeldBackError

log = logging.getLogger(__name__)

CHUNK = 1000
# A poll is one worker task: bounded, so a million-message run's receipts are taken in
# slices rather than by one task that holds a worker for minutes.
MAX_PER_POLL = 5000
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


def poll_receipts(
    session: Session,
    client: ClickSendClient,
    max_receipts: int = MAX_PER_POLL,
    *,
    marker: ClickSendClient | None = None,
) -> ReceiptReport:
    """Read about ``max_receipts`` unread receipts; the rest wait for the next poll.

    Receipts come oldest first and can only be marked read by time (whole seconds), so a
    poll stops only where a new second begins: everything up to the last second it read is
    then processed and can be marked read. A poll held back between pages (the account is
    busy sending) keeps what it read and marks read only the seconds it finished; the
    last, perhaps unfinished, second is read again next time (recording is idempotent).
    ``marker`` marks them read (default ``client``): a poll that reads from spare capacity
    marks with a turn of its own, so what it read is not read again.
    """
    report = ReceiptReport()
    newest = 0
    held_back = False
    chunk: list[dict[str, str]] = []
    try:
        for receipt in client.sms_receipts():
            stamp = receipt.timestamp or 0
            if report.read >= max_receipts and stamp != newest:
                break
            report.read += 1
            newest = max(newest, stamp)
            if receipt.message_id:
                status = delivery_status(receipt.status_code, receipt.status_text)
                chunk.append({"m_id": receipt.message_id, "m_status": status})
            if len(chunk) >= CHUNK:
                report.matched += _record(session, chunk)
                chunk = []
    except HeldBackError as exc:
        log.info("receipts: poll stopped after %d receipts (%s)", report.read, exc)
        held_back = True
    report.matched += _record(session, chunk)
    if not report.read or (held_back and not newest):
        return report
    # Held back between pages, the newest second may go on in the next page: keep it unread.
    date_before = newest if held_back else (newest + 1 if newest else None)
    try:
        (marker or client).mark_sms_receipts_read(date_before=date_before)
    except HeldBackError as exc:
        log.info("receipts: not marked read this time (%s)", exc)
    return report

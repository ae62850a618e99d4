"""Delivery receipts: poll the provider's unread receipts and record each message's
final delivery status.

For high volumes ClickSend's push delivery (a receipt URL) is the better fit; polling takes
``MAX_PER_POLL`` receipts per poll.

Status codes (ClickSend): 200 queued or sent, 201 delivered, 300 temporary failure,
301 failed (a cancelled message gets 301 too). Receipts are marked read by whole seconds,
and only seconds that are over: a receipt the provider writes meanwhile is kept for the
next poll.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from campaigns.receipts import apply_receipts, delivery_status
from clicksend.client import ClickSendClient
from clicksend.errors import HeldBackError

log = logging.getLogger(__name__)

CHUNK = 1000
# A poll is one worker task: bounded, so a million-message run's receipts are taken in
# slices rather than by one task that holds a worker for minutes.
MAX_PER_POLL = 5000
# A second of the provider's clock is over once a receipt of a later one was read, or once
# it is this far behind ours (the two clocks agree within it). Until then the provider may
# still write receipts stamped with it, and marking it read would lose them unseen.
CLOSED_AFTER_SECONDS = 60


@dataclass
class ReceiptReport:
    read: int = 0
    matched: int = 0


def _record(session: Session, rows: list[tuple[str, str]]) -> int:
    """One statement per chunk (``apply_receipts``), committed at once: a big run's
    receipts never hold a long transaction open."""
    matched = apply_receipts(session, rows)
    session.commit()
    return matched


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
    then processed and can be marked read. A poll that reads to the end of the list, or is
    held back between pages (the account is busy sending), keeps what it read and marks
    read only the seconds that are over; the newest, perhaps unfinished, second is read
    again next time (recording is idempotent).
    ``marker`` marks them read (default ``client``): a poll that reads from spare capacity
    marks with a turn of its own, so what it read is not read again.
    """
    report = ReceiptReport()
    newest = 0
    held_back = False
    later_second_seen = False
    chunk: list[tuple[str, str]] = []
    try:
        for receipt in client.sms_receipts():
            stamp = receipt.timestamp or 0
            if report.read >= max_receipts and stamp != newest:
                later_second_seen = True
                break
            report.read += 1
            newest = max(newest, stamp)
            if receipt.message_id:
                status = delivery_status(receipt.status_code, receipt.status_text)
                chunk.append((receipt.message_id, status))
            if len(chunk) >= CHUNK:
                report.matched += _record(session, chunk)
                chunk = []
    except HeldBackError as exc:
        log.info("receipts: poll stopped after %d receipts (%s)", report.read, exc)
        held_back = True
    report.matched += _record(session, chunk)
    if not report.read or (held_back and not newest):
        return report
    # The newest second read is marked only if it is over (see CLOSED_AFTER_SECONDS); held
    # back between pages, it may also go on in the next page. Kept unread, it is read again
    # next time (recording is idempotent).
    closed = later_second_seen or newest <= time.time() - CLOSED_AFTER_SECONDS
    date_before = (newest + 1 if closed and not held_back else newest) if newest else None
    try:
        (marker or client).mark_sms_receipts_read(date_before=date_before)
    except HeldBackError as exc:
        log.info("receipts: not marked read this time (%s)", exc)
    return report

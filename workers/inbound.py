"""Read inbound replies and suppress the numbers that opted out.

ClickSend keeps unread inbound messages until they are marked read; we read them all,
suppress STOP senders, then mark read up to the newest one we saw, so a reply that
arrives meanwhile is kept for the next poll.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from campaigns.optout import is_opt_out, suppress
from campaigns.phones import InvalidPhone, normalise
from clicksend.client import ClickSendClient

log = logging.getLogger(__name__)


@dataclass
class InboundReport:
    read: int = 0
    opted_out: int = 0


def poll_inbound(session: Session, client: ClickSendClient, default_region: str) -> InboundReport:
    report = InboundReport()
    stop_numbers: list[str] = []
    newest = 0
    try:
        for message in client.sms_inbound():
            report.read += 1
            newest = max(newest, message.timestamp or 0)
            if not is_opt_out(message.body):
                continue
            try:
                stop_numbers.append(normalise(message.from_, default_region))
            except InvalidPhone:
                log.warning("opt-out from an unusable number %r ignored", message.from_)
    finally:
        # Even when a later page fails, the STOPs already read take effect now; nothing is
        # marked read then, so those replies are read (and suppressed, idempotently) again.
        if stop_numbers:
            suppress(session, stop_numbers, reason="STOP reply")
            session.commit()
    if report.read:
        client.mark_sms_inbound_read(date_before=newest + 1 if newest else None)
    report.opted_out = len(set(stop_numbers))
    return report

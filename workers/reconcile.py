"""Settle messages whose outcome is unknown by looking them up at the provider.

ClickSend has no idempotency key. Each message carries the run's key as
``custom_string``; after a timeout, a dropped connection or a 5xx we page through the
channel's history over the attempt's time window and match (to, custom_string). Found:
sent. Not found: the provider never took it, so it may go again.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import claims
from campaigns.clock import as_utc
from campaigns.models import Message, Run
from clicksend.client import ClickSendClient
from clicksend.errors import ClickSendError
from clicksend.models import HistoryItem
from config.settings import Settings
from workers.backoff import retry_or_give_up, retry_policy
from workers.outcomes import STATUS_WIDTH
from workers.sender import history

log = logging.getLogger(__name__)

# History dates are whole seconds, the provider's clock is not ours, and a claimed batch may
# wait a moment for the rate limit before it leaves.
CLOCK_SLACK_SECONDS = 10
SETTLE_BATCH = 1000


def settle_ripe(
    session: Session,
    client: ClickSendClient | None,
    run: Run,
    channel: str,
    settings: Settings,
    *,
    now: datetime,
) -> int:
    """Settle up to one batch of the run's unknown rows old enough to look up. Without a
    client (a provider with no history), they fail rather than risk a duplicate."""
    ripe_before = now - timedelta(seconds=settings.reconcile_after_seconds)
    rows = session.execute(
        select(Message.id, Message.phone, Message.attempts, Message.attempted_at)
        .where(
            Message.run_id == run.id,
            Message.status == "unknown",
            Message.attempted_at <= ripe_before,
        )
        .order_by(Message.status, Message.id)  # the (run_id, status, id) index's order
        .limit(SETTLE_BATCH)
    ).all()
    if not rows:
        return 0
    start = min(r.attempted_at for r in rows)
    end = max(r.attempted_at for r in rows)
    date_from = math.floor(_ts(start)) - CLOCK_SLACK_SECONDS
    date_to = math.ceil(_ts(end) + settings.http_timeout_seconds) + CLOCK_SLACK_SECONDS
    wanted = {r.phone for r in rows}
    found: dict[str, HistoryItem] = {}
    if client is None:
        not_found = "outcome unknown and the provider keeps no history: not resent"
    else:
        not_found = "not accepted by the provider (confirmed by look-up)"
        try:
            found = _look_up(client, channel, run.key, wanted, date_from, date_to)
        except ClickSendError as exc:
            log.warning("run %s: history look-up failed, will retry: %s", run.id, exc)
            return 0
    settled = []
    for r in rows:
        item = found.get(r.phone)
        if item is not None:
            settled.append(
                {
                    "b_id": r.id,
                    "status": "sent",
                    "provider_message_id": item.message_id,
                    "provider_status": item.status[:STATUS_WIDTH],
                    "parts": item.message_parts,
                    "price": item.message_price,
                    "sent_at": now,
                    "attempts": r.attempts + 1,
                    "not_before": None,
                    "error": None,
                    "claim_token": None,
                }
            )
        else:
            decision = retry_or_give_up(
                retry_policy(settings), r.attempts, now, not_found, can_retry=client is not None
            )
            settled.append(
                {
                    "b_id": r.id,
                    "provider_message_id": None,
                    "provider_status": None,
                    "parts": None,
                    "price": None,
                    "sent_at": None,
                    **decision,
                    "claim_token": None,
                }
            )
    claims.settle(session, settled, expect_status="unknown")
    session.commit()
    log.info(
        "run %s: settled %d unknown messages (%d found at the provider)",
        run.id,
        len(settled),
        sum(1 for r in rows if r.phone in found),
    )
    return len(settled)


def _look_up(
    client: ClickSendClient,
    channel: str,
    key: str,
    wanted: set[str],
    date_from: int,
    date_to: int,
) -> dict[str, HistoryItem]:
    found: dict[str, HistoryItem] = {}
    for item in history(client, channel, date_from, date_to):
        if item.custom_string == key and item.to in wanted:
            found[item.to] = item
            if len(found) == len(wanted):
                break
    return found


def _ts(value: datetime) -> float:
    aware = as_utc(value)
    assert aware is not None
    return aware.timestamp()

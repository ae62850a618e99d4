"""What the provider pushes: delivery receipts and inbound replies, recorded first and
applied after (so the push is answered fast and a crash between the two loses nothing).

Recording is idempotent: each push has a key ((message id, status code, timestamp) for a
receipt, the message id for a reply), unique per kind, so a replay or a duplicate is
recorded once and applied once. Receipts are applied through
``campaigns.receipts.apply_receipts``, the function the receipt poller uses too; a STOP
reply suppresses the number, and the dispatcher drops suppressed numbers right before
each request, so the rest of a running run skips it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns.clock import utcnow
from campaigns.models import WebhookEvent, table
from campaigns.optout import is_opt_out, suppress
from campaigns.phones import InvalidPhone, normalise
from campaigns.receipts import apply_receipts, delivery_status
from clicksend.models import InboundMessage, Receipt

log = logging.getLogger(__name__)

# ClickSend's pushes spell some fields two ways (old and new names).
_ALIASES = {"messageid": "message_id", "customstring": "custom_string", "message": "body"}


class PushError(ValueError):
    """A push that cannot be used; ``field`` names what is missing or wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def normalise_push(fields: Mapping[str, Any]) -> dict[str, Any]:
    """One dict from a form-encoded or JSON push: the new spellings, string values."""
    data: dict[str, Any] = {}
    for name, value in fields.items():
        key = _ALIASES.get(name, name)
        if key not in data or data[key] in (None, ""):
            data[key] = value
    return data


def receipt_event(fields: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    data = normalise_push(fields)
    receipt = Receipt.from_json(data)
    if not receipt.message_id:
        raise PushError("message_id", "missing")
    if receipt.status_code is None and not receipt.status_text:
        raise PushError("status_code", "missing")
    key = f"{receipt.message_id}:{receipt.status_code}:{receipt.timestamp or ''}"
    return key, data


def inbound_event(fields: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    data = normalise_push(fields)
    message = InboundMessage.from_json(data)
    if not message.from_:
        raise PushError("from", "missing")
    key = message.message_id or f"{message.from_}:{message.timestamp}:{message.body}"[:200]
    return key, data


def record(session: Session, kind: str, key: str, payload: dict[str, Any]) -> None:
    """Record a push (a replay of one already recorded is ignored)."""
    # One row: a plain INSERT ... ON CONFLICT DO NOTHING (both dialects have it) is the
    # cheapest; the bulk helper stages through COPY, which pays off only for many rows.
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    postgres = session.get_bind().dialect.name == "postgresql"
    statement = (pg_insert if postgres else sqlite_insert)(table(WebhookEvent))
    session.execute(
        statement.values(
            kind=kind, key=key[:200], payload=payload, received_at=utcnow()
        ).on_conflict_do_nothing(index_elements=["kind", "key"])
    )


def apply_recorded(session: Session, default_region: str, limit: int = 1000) -> int:
    """Apply recorded pushes not applied yet (oldest first); returns how many. They are
    taken by one UPDATE ... RETURNING in the transaction that applies them, so each takes
    effect once even when two processes apply at the same time (the second's update finds
    them taken)."""
    oldest = (
        select(WebhookEvent.id)
        .where(WebhookEvent.applied_at.is_(None))
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    taken = session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(oldest.scalar_subquery()), WebhookEvent.applied_at.is_(None))
        .values(applied_at=utcnow())
        .returning(WebhookEvent.kind, WebhookEvent.payload)
        .execution_options(synchronize_session=False)
    ).all()
    receipts: list[tuple[str, str]] = []
    stops: list[str] = []
    for kind, payload in taken:
        if kind == "receipt":
            receipt = Receipt.from_json(payload)
            receipts.append(
                (receipt.message_id, delivery_status(receipt.status_code, receipt.status_text))
            )
        elif kind == "inbound":
            message = InboundMessage.from_json(payload)
            if is_opt_out(message.body):
                try:
                    stops.append(normalise(message.from_, default_region))
                except InvalidPhone:
                    log.warning("opt-out from an unusable number %r ignored", message.from_)
    apply_receipts(session, receipts)
    if stops:
        suppress(session, stops, reason="STOP reply")
    session.commit()
    return len(taken)

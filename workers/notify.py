"""Sending through the SkillBoss hub's ``prelude/notify-send``: a template-based channel.

Each message is one call (the model takes one recipient) with that recipient's rendered
``variables``, which expansion stored as the message body (JSON). The run key goes out as
``correlation_id``. There is no history to look a message up in afterwards, so an
ambiguous failure is never resent (see ``workers.reconcile``).

``Dispatcher`` sends a notify batch call by call: each call takes its own turn of the rate
limit, passes the fence again on the claim's row naming its own message (so lease recovery
knows which one was in flight), and its row is settled as soon as it returns; pause, cancel
and the deadline are checked between calls, and rows never attempted go back to pending.
"""

from __future__ import annotations

import json
from decimal import Decimal

from campaigns.claims import Claimed
from campaigns.definition import CampaignDefinition
from clicksend.errors import BadRequestError
from clicksend.models import MessageResult
from clicksend.skillboss import SkillBossClient


def is_notify_campaign(defn: CampaignDefinition) -> bool:
    return defn.provider == "skillboss" and isinstance(defn.message.template_id, str)


def notify_one(
    hub: SkillBossClient, defn: CampaignDefinition, run_key: str, row: Claimed
) -> MessageResult:
    """One call for one recipient. A refused recipient (a bad number) is a failed result;
    any other error is raised for the caller to sort."""
    try:
        answer = hub.notify_send(
            str(defn.message.template_id),
            row.phone,
            json.loads(row.body or "{}"),
            correlation_id=run_key,
        )
    except BadRequestError as exc:
        return MessageResult(
            to=row.phone,
            status=f"REJECTED: {exc.response_msg or exc}"[:200],
            message_id=None,
            custom_string=run_key,
            message_parts=0,
            message_price=Decimal("0"),
            schedule=None,
            raw={},
        )
    return MessageResult(
        to=row.phone,
        status="SUCCESS",
        message_id=str(answer.get("id") or "") or None,
        custom_string=run_key,
        message_parts=1,
        message_price=Decimal("0"),
        schedule=None,
        raw=answer,
    )

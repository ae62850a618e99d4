"""Sending through the SkillBoss hub's ``prelude/notify-send``: a template-based channel.

Each message is one call (the model takes one recipient) with that recipient's rendered
``variables``, which expansion stored as the message body (JSON). The run key goes out as
``correlation_id``. There is no history to look a message up in afterwards, so an
ambiguous failure is never resent (see ``workers.reconcile``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

from campaigns.claims import Claimed
from campaigns.definition import CampaignDefinition
from clicksend.errors import BadRequestError, ClickSendError
from clicksend.models import MessageResult, SendResponse
from clicksend.skillboss import SkillBossClient


def is_notify_campaign(defn: CampaignDefinition) -> bool:
    return defn.provider == "skillboss" and isinstance(defn.message.template_id, str)


class PartialSendError(Exception):
    """The first ``len(response.messages)`` messages went out; then ``cause`` happened."""

    def __init__(self, response: SendResponse, cause: ClickSendError) -> None:
        super().__init__(str(cause))
        self.response = response
        self.cause = cause


def _response(results: list[MessageResult]) -> SendResponse:
    return SendResponse(
        http_code=200,
        response_code="SUCCESS",
        response_msg="sent through prelude/notify-send",
        total_price=Decimal("0"),
        total_count=len(results),
        queued_count=len(results),
        currency=None,
        messages=results,
    )


def _refused(row: Claimed, run_key: str, exc: BadRequestError) -> MessageResult:
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


def send_notify(
    hub: SkillBossClient, defn: CampaignDefinition, run_key: str, batch: Sequence[Claimed]
) -> SendResponse:
    template_id = str(defn.message.template_id)
    results: list[MessageResult] = []
    for row in batch:
        try:
            answer = hub.notify_send(
                template_id, row.phone, json.loads(row.body or "{}"), correlation_id=run_key
            )
        except BadRequestError as exc:
            # One recipient refused (a bad number): that message fails, the rest go on.
            results.append(_refused(row, run_key, exc))
            continue
        except ClickSendError as exc:
            if not results:
                raise
            raise PartialSendError(_response(results), exc) from exc
        results.append(
            MessageResult(
                to=row.phone,
                status="SUCCESS",
                message_id=str(answer.get("id") or "") or None,
                custom_string=run_key,
                message_parts=1,
                message_price=Decimal("0"),
                schedule=None,
                raw=answer,
            )
        )
    return _response(results)

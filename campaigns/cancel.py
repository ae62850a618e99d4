"""Cancel at the provider what was handed over with a future ``schedule``.

``campaigns.runs.cancel_campaign`` stops a campaign in our database: nothing more is
claimed and pending rows become 'cancelled'. Messages already handed to ClickSend with a
future ``schedule`` are out of our hands, so they are cancelled there too: SMS and voice
with ``PUT /{sms,voice}/cancel-all`` filtered by the run's ``custom_string`` (its key), or
one by one with ``PUT /{sms,voice}/{id}/cancel``. ClickSend has no cancel for MMS.
Calling it again is harmless: it only looks at messages not yet marked cancelled.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import claims
from campaigns.clock import utcnow
from campaigns.models import Campaign, Message, Run
from campaigns.runs import get_campaign, set_run_status
from clicksend.client import ClickSendClient
from clicksend.errors import ClickSendError

log = logging.getLogger(__name__)

PROVIDER_CANCELLED = "cancelled at the provider before its scheduled time"


@dataclass
class RunCancellation:
    """One run: how many messages were stopped here and how many at the provider."""

    run_id: int
    held_here: int = 0  # never left our database
    at_provider: int = 0  # handed over with a schedule, cancelled there
    provider_error: str | None = None


@dataclass
class CancelReport:
    campaign_id: int
    runs: list[RunCancellation] = field(default_factory=list)

    @property
    def held_here(self) -> int:
        return sum(r.held_here for r in self.runs)

    @property
    def at_provider(self) -> int:
        return sum(r.at_provider for r in self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "cancelled_here": self.held_here,
            "cancelled_at_provider": self.at_provider,
            "runs": [asdict(r) for r in self.runs],
        }


def _scheduled_at_provider(run_id: int, now: datetime) -> Any:
    return (
        Message.run_id == run_id,
        # 'unknown': the request may have reached the provider; cancel-all covers it too.
        Message.status.in_(("sent", "unknown")),
        Message.provider_schedule > int(now.timestamp()),
    )


def cancel_at_provider(
    session: Session,
    client: ClickSendClient,
    campaign_id: int,
    *,
    now: datetime | None = None,
    one_by_one: bool = False,
) -> CancelReport:
    """Cancel the campaign's provider-scheduled messages that are not yet due.

    Call it after ``campaigns.runs.cancel_campaign`` (and after in-flight batches have
    settled, so nothing is handed over behind it). Commits per run.
    """
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id)
    report = CancelReport(campaign_id=campaign_id)
    for run in session.scalars(select(Run).where(Run.campaign_id == campaign_id).order_by(Run.id)):
        outcome = RunCancellation(run_id=run.id, held_here=_held_here(session, run.id))
        waiting = list(
            session.execute(
                select(Message.id, Message.provider_message_id).where(
                    *_scheduled_at_provider(run.id, now)
                )
            ).all()
        )
        if waiting:
            _cancel_run(session, client, campaign, run, waiting, outcome, one_by_one)
        if outcome.held_here or outcome.at_provider or outcome.provider_error:
            report.runs.append(outcome)
        session.commit()
    return report


def _held_here(session: Session, run_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Message.run_id == run_id,
                Message.status == "cancelled",
                Message.provider_message_id.is_(None),
            )
        )
        or 0
    )


def _cancel_run(
    session: Session,
    client: ClickSendClient,
    campaign: Campaign,
    run: Run,
    waiting: list[Any],
    outcome: RunCancellation,
    one_by_one: bool,
) -> None:
    ids = [row.id for row in waiting]
    if campaign.channel not in ("sms", "voice"):
        outcome.provider_error = f"ClickSend cannot cancel {campaign.channel} messages"
        return
    try:
        if one_by_one:
            cancelled, failures = _cancel_each(client, campaign.channel, waiting)
            ids = [row.id for row in waiting if row.provider_message_id in cancelled]
            if failures:
                outcome.provider_error = (
                    f"{len(failures)} of {len(waiting)} could not be cancelled, e.g. {failures[0]}"
                )[:300]
                log.warning("run %s: %s", run.id, outcome.provider_error)
        elif campaign.channel == "sms":
            client.cancel_all_sms(custom_string=run.key)
        else:
            client.cancel_all_voice(custom_string=run.key)
    except ClickSendError as exc:
        outcome.provider_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("run %s: cancel at the provider failed: %s", run.id, outcome.provider_error)
        return
    # Counted from our rows, not the provider's answer: cancel-all also reports messages
    # of this key it had already cancelled on an earlier call.
    claims.cancelled_at_provider(session, ids, PROVIDER_CANCELLED)
    outcome.at_provider = len(ids)
    # A run whose every message was handed over had completed; it is cancelled now.
    set_run_status(
        session, run.id, "cancelled", expected=("completed",), reason="cancelled by user"
    )


def _cancel_each(
    client: ClickSendClient, channel: str, waiting: list[Any]
) -> tuple[set[str], list[str]]:
    """Cancel message by message; one that fails does not stop the others. Returns the
    ids cancelled and a description of each failure."""
    done: set[str] = set()
    failures: list[str] = []
    for row in waiting:
        if row.provider_message_id is None:
            continue
        try:
            if channel == "sms":
                client.cancel_sms(row.provider_message_id)
            else:
                client.cancel_voice(row.provider_message_id)
        except ClickSendError as exc:
            failures.append(f"{row.provider_message_id}: {type(exc).__name__}: {exc}")
            continue
        done.add(row.provider_message_id)
    return done, failures

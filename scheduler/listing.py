"""`clarion schedule list`: each campaign's next occurrences, in the campaign's zone,
and what a run is waiting for (messages held here or scheduled at the provider)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.clock import as_utc, utcnow
from campaigns.models import Campaign, Message, Run
from scheduler.rules import campaign_timing


@dataclass
class Upcoming:
    """One campaign's schedule as the scheduler sees it."""

    campaign_id: int
    name: str
    status: str
    zone: str
    kind: str  # send_at | cron | immediate
    schedule: str  # the send_at time or the cron expression, "" for immediate
    last_occurrence: datetime | None = None  # in the campaign's zone
    next: list[datetime] = field(default_factory=list)  # in the campaign's zone
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "status": self.status,
            "timezone": self.zone,
            "kind": self.kind,
            "schedule": self.schedule,
            "last_occurrence": self.last_occurrence.isoformat() if self.last_occurrence else None,
            "next": [at.isoformat() for at in self.next],
            "error": self.error,
        }


def upcoming(
    session: Session,
    *,
    now: datetime | None = None,
    count: int = 5,
    campaign_id: int | None = None,
    include_finished: bool = False,
) -> list[Upcoming]:
    """Next ``count`` occurrences of each campaign (all, or one), times in its zone."""
    now = now or utcnow()
    last = select(func.max(Run.occurrence)).where(Run.campaign_id == Campaign.id).scalar_subquery()
    query = select(Campaign, last).order_by(Campaign.id)
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    elif not include_finished:
        query = query.where(Campaign.status.in_(("draft", "active", "paused")))
    return [
        _one(campaign, as_utc(last_at), now, count) for campaign, last_at in session.execute(query)
    ]


def _one(campaign: Campaign, last: datetime | None, now: datetime, count: int) -> Upcoming:
    item = Upcoming(campaign.id, campaign.name, campaign.status, "UTC", "immediate", "")
    try:
        timing = campaign_timing(campaign.definition)
    except ValueError as exc:
        item.error = str(exc)
        return item
    zone = timing.zone
    item.zone = zone.key
    item.last_occurrence = last.astimezone(zone) if last else None
    recurrence = timing.recurrence
    if recurrence is None:
        return item
    if recurrence.cron is not None:
        item.kind, item.schedule = "cron", recurrence.cron
    else:
        assert recurrence.send_at is not None
        item.kind, item.schedule = "send_at", recurrence.send_at.astimezone(zone).isoformat()
    if campaign.status in ("cancelled", "finished"):
        return item
    if recurrence.send_at is not None:
        # Its one occurrence, shown until it has fired (even when overdue).
        item.next = [] if last is not None else [recurrence.send_at.astimezone(zone)]
        return item
    floor = max(x for x in (last, now, as_utc(campaign.started_at)) if x is not None)
    item.next = [at.astimezone(zone) for at in recurrence.upcoming(floor, count)]
    return item


@dataclass(frozen=True)
class Waiting:
    """Messages of a run not yet out: held here until a time, or scheduled at the provider."""

    held: int = 0
    held_next: datetime | None = None
    held_last: datetime | None = None
    at_provider: int = 0
    at_provider_last: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "held": self.held,
            "held_next": iso(self.held_next),
            "held_last": iso(self.held_last),
            "at_provider": self.at_provider,
            "at_provider_last": iso(self.at_provider_last),
        }


def waiting(session: Session, run_id: int, *, now: datetime | None = None) -> Waiting:
    """How many of the run's messages wait (quiet hours, reminders) and until when."""
    now = now or utcnow()
    held, first, last = session.execute(
        select(func.count(), func.min(Message.not_before), func.max(Message.not_before)).where(
            Message.run_id == run_id, Message.status == "pending", Message.not_before > now
        )
    ).one()
    scheduled, latest = session.execute(
        select(func.count(), func.max(Message.provider_schedule)).where(
            Message.run_id == run_id,
            Message.status == "sent",
            Message.provider_schedule > int(now.timestamp()),
        )
    ).one()
    return Waiting(
        held=int(held or 0),
        held_next=as_utc(first),
        held_last=as_utc(last),
        at_provider=int(scheduled or 0),
        at_provider_last=datetime.fromtimestamp(latest, now.tzinfo) if latest else None,
    )

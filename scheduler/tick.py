"""The scheduler's periodic tick, as a plain function.

Each tick: recovers dead claims, creates the runs that are due (a unique row per
occurrence, so a double fire makes one run), and names the runs that need expanding or a
dispatch kick. The Celery task in ``workers.tasks`` enqueues those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from campaigns.claims import expire_leases
from campaigns.clock import as_utc, utcnow
from campaigns.db import session_scope
from campaigns.models import Campaign, Message, Run
from campaigns.runs import (
    ACTIVE_RUN_STATUSES,
    create_run,
    finish_if_done,
    set_run_status,
)
from config.settings import Settings
from scheduler.rules import Timing, campaign_timing

log = logging.getLogger(__name__)

# A run that showed no progress for this long while work is due gets kicked again
# (its Celery message may have been lost with a broker or worker).
STALE_AFTER = timedelta(seconds=20)


@dataclass
class TickResult:
    to_expand: list[int] = field(default_factory=list)
    to_dispatch: list[int] = field(default_factory=list)
    leases_recovered: int = 0


def tick(settings: Settings, now: datetime | None = None) -> TickResult:
    now = now or utcnow()
    result = TickResult()
    with session_scope(settings.database_url) as session:
        result.leases_recovered = expire_leases(session, now)
        if result.leases_recovered:
            log.warning(
                "%d expired claims will be looked up at the provider", result.leases_recovered
            )
        session.commit()  # recovered whatever happens below
        create_due_runs(session, now)
        result.to_expand = _claim_kicks(session, now, ("scheduled", "expanding"), due_work=None)
        # Work is due, or the deadline passed and the held messages must be expired.
        due = or_(_has_due_work(now), Run.expires_at <= now)
        result.to_dispatch = _claim_kicks(session, now, ("sending",), due_work=due)
        # A cancelled run sends nothing more, but its unknown rows are still looked up so
        # that its counts are true.
        unknown = exists().where(Message.run_id == Run.id, Message.status == "unknown")
        result.to_dispatch += _claim_kicks(session, now, ("cancelled",), due_work=unknown)
        _finish_idle_runs(session, now)
    return result


def create_due_runs(session: Session, now: datetime) -> list[int]:
    """Create the runs that are due: an unscheduled campaign's one run at its start time,
    and a scheduled campaign's send_at / cron occurrences (``scheduler.occurrences``)."""
    created: list[int] = []
    last_occurrence = (
        select(func.max(Run.occurrence)).where(Run.campaign_id == Campaign.id).scalar_subquery()
    )
    busy = exists().where(Run.campaign_id == Campaign.id, Run.status.in_(ACTIVE_RUN_STATUSES))
    rows = session.execute(
        select(Campaign, last_occurrence, busy).where(
            Campaign.status == "active", Campaign.started_at.is_not(None)
        )
    ).all()
    for campaign, last, has_active in rows:
        if last is not None and not _recurring(campaign.definition):
            continue  # its one run exists
        # Each campaign on its own: one that fails is rolled back to here and marked,
        # and the others (and this tick's lease recovery and kicks) go on.
        try:
            with session.begin_nested():
                created.extend(_due_runs(session, campaign, as_utc(last), now, bool(has_active)))
        except (ValueError, ArithmeticError) as exc:
            # The schedule itself cannot be computed (a stored definition that today's
            # validation refuses): it will not get better by itself.
            _pause_broken(session, campaign, exc)
        except Exception as exc:
            _mark_failed(session, campaign, exc)
        else:
            if campaign.error is not None:
                campaign.error = None
    return created


def _due_runs(
    session: Session, campaign: Campaign, last: datetime | None, now: datetime, has_active: bool
) -> list[int]:
    timing = campaign_timing(campaign.definition)
    if timing.recurrence is None:
        return _single_run(session, campaign, timing)
    return _scheduled_runs(session, campaign, timing, last, now, has_active)


def _recurring(definition: dict[str, Any]) -> bool:
    schedule = definition.get("schedule") or {}
    return bool(schedule.get("send_at") or schedule.get("cron"))


def _single_run(session: Session, campaign: Campaign, timing: Timing) -> list[int]:
    started = as_utc(campaign.started_at)
    assert started is not None
    run = create_run(session, campaign, started, expires_at=timing.expires_at(started))
    return [run.id] if run is not None else []


def _scheduled_runs(
    session: Session,
    campaign: Campaign,
    timing: Timing,
    last: datetime | None,
    now: datetime,
    has_active: bool,
) -> list[int]:
    recurrence = timing.recurrence
    assert recurrence is not None
    started = as_utc(campaign.started_at)
    assert started is not None
    due = recurrence.due(last, started, now)
    skip = recurrence.overlap == "skip" and has_active
    created = []
    for occurrence in due.fire:
        run = create_run(session, campaign, occurrence, expires_at=timing.expires_at(occurrence))
        if run is None:
            continue  # another tick made it: one run per occurrence
        if skip:
            # Recorded, not sent: the row keeps the occurrence from firing again.
            set_run_status(
                session,
                run.id,
                "skipped",
                expected=("scheduled",),
                reason="the previous run was still sending (overlap: skip)",
            )
            log.warning("campaign %s: occurrence %s skipped (overlap)", campaign.id, occurrence)
            continue
        created.append(run.id)
    if due.fire:
        last = max(due.fire)
    if not has_active and not created and recurrence.finished(last, now):
        campaign.status = "finished"
        campaign.status_reason = "no occurrence left in the schedule"
    return created


def _pause_broken(session: Session, campaign: Campaign, exc: Exception) -> None:
    log.error("campaign %s: unusable schedule, paused: %s", campaign.id, exc)
    campaign.status, campaign.status_reason = "paused", f"unusable schedule: {exc}"[:2000]


def _mark_failed(session: Session, campaign: Campaign, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if campaign.error != error:  # logged once, not at every tick it repeats
        log.exception("campaign %s: scheduling failed, tried again next tick", campaign.id)
    campaign.error = error


def _has_due_work(now: datetime):  # type: ignore[no-untyped-def]
    return exists().where(
        Message.run_id == Run.id,
        or_(
            and_(
                Message.status == "pending",
                or_(Message.not_before.is_(None), Message.not_before <= now),
            ),
            Message.status == "unknown",
        ),
    )


def _claim_kicks(session: Session, now: datetime, statuses: tuple[str, ...], due_work) -> list[int]:  # type: ignore[no-untyped-def]
    """Runs in ``statuses`` with no recent activity; marks them touched so the next tick waits."""
    stale = or_(Run.last_activity_at.is_(None), Run.last_activity_at < now - STALE_AFTER)
    query = select(Run.id).where(Run.status.in_(statuses), Run.occurrence <= now, stale)
    if "scheduled" in statuses:
        # Runs of one campaign go in order: a later occurrence waits while an earlier one
        # is still active (overlap: queue, and catch-up of several missed occurrences).
        earlier = aliased(Run)
        query = query.where(
            ~exists().where(
                earlier.campaign_id == Run.campaign_id,
                earlier.occurrence < Run.occurrence,
                earlier.status.in_(ACTIVE_RUN_STATUSES),
            )
        )
    if due_work is not None:
        query = query.where(due_work)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(Run).where(Run.id.in_(ids)).values(last_activity_at=now))
    return ids


def _finish_idle_runs(session: Session, now: datetime) -> None:
    for run_id in session.scalars(select(Run.id).where(Run.status == "sending")):
        finish_if_done(session, run_id)

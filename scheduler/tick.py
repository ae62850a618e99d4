"""The scheduler's periodic tick, as a plain function.

Each tick: recovers dead claims, creates the runs that are due (a unique row per
occurrence, so a double fire makes one run), and names the runs that need expanding or a
dispatch kick. The Celery task in ``workers.tasks`` enqueues those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from campaigns import expansion_lease
from campaigns.claims import expire_leases
from campaigns.clock import as_utc, db_now
from campaigns.db import session_scope
from campaigns.models import Campaign, Message, Run
from campaigns.runs import (
    ACTIVE_RUN_STATUSES,
    create_run,
    finish_if_done,
    recurring,
    set_run_status,
)
from campaigns.webhooks import apply_recorded
from config.settings import Settings
from scheduler.rules import Timing, campaign_timing

log = logging.getLogger(__name__)

# A run is handed to an expansion while no expansion holds its lease
# (campaigns.expansion_lease): a dead one is replaced within seconds, a live one never
# doubled. A sending run's chains keep ``last_activity_at`` at the time they promise to be back by
# (the end of a request on the wire, the end of a countdown); a run this far past that
# promise with work due has no live chain (its task was lost with the broker or worker)
# and is kicked again.
DISPATCH_STALE_AFTER = timedelta(seconds=3)


@dataclass
class TickResult:
    to_expand: list[int] = field(default_factory=list)
    to_dispatch: list[int] = field(default_factory=list)
    leases_recovered: int = 0


def tick(
    settings: Settings, now: datetime | None = None, *, campaign_id: int | None = None
) -> TickResult:
    """One tick at ``now`` (default: the database's clock, the one leases are written in).

    ``campaign_id``: only that campaign's runs (a CLI command in the embedded mode sends
    the campaign it was asked about, never other campaigns' due runs behind the user's
    back); lease recovery stays global, it sends nothing."""
    result = TickResult()
    with session_scope(settings.database_url) as session:
        now = now or db_now(session)
        result.leases_recovered = expire_leases(
            session, now, grace_seconds=settings.reconcile_grace_seconds
        )
        if result.leases_recovered:
            log.warning("%d expired claims recovered", result.leases_recovered)
        session.commit()  # recovered whatever happens below
        # Pushes the webhook recorded but did not apply (it applies right after answering;
        # this catches one whose process stopped in between).
        apply_recorded(session, settings.default_region)
        create_due_runs(session, now, campaign_id=campaign_id)
        _end_expired_expansions(session, now, campaign_id=campaign_id)
        result.to_expand = _expansion_kicks(session, now, campaign_id=campaign_id)
        # Work is due, or the deadline passed and the held messages must be expired.
        due = or_(_has_due_work(now), Run.expires_at <= now)
        result.to_dispatch = _claim_kicks(
            session, now, ("sending",), due_work=due, campaign_id=campaign_id
        )
        # A cancelled run sends nothing more, but its unknown rows are still looked up and
        # rows given back to pending after the cancel (a dead worker's claim whose request
        # never left) are marked cancelled, so that its counts are true.
        unsettled = exists().where(
            Message.run_id == Run.id, Message.status.in_(("unknown", "pending"))
        )
        result.to_dispatch += _claim_kicks(
            session, now, ("cancelled",), due_work=unsettled, campaign_id=campaign_id
        )
        _finish_idle_runs(session, now, campaign_id=campaign_id)
    return result


def create_due_runs(
    session: Session, now: datetime, *, campaign_id: int | None = None
) -> list[int]:
    """Create the runs that are due: an unscheduled campaign's one run at its start time,
    and a scheduled campaign's send_at / cron occurrences (``scheduler.occurrences``)."""
    created: list[int] = []
    last_occurrence = (
        select(func.max(Run.occurrence)).where(Run.campaign_id == Campaign.id).scalar_subquery()
    )
    busy = exists().where(Run.campaign_id == Campaign.id, Run.status.in_(ACTIVE_RUN_STATUSES))
    query = select(Campaign, last_occurrence, busy).where(
        Campaign.status == "active", Campaign.started_at.is_not(None)
    )
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    rows = session.execute(query).all()
    for campaign, last, has_active in rows:
        if last is not None and not recurring(campaign.definition):
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
            and_(
                Message.status == "unknown",
                or_(Message.not_before.is_(None), Message.not_before <= now),
            ),
        ),
    )


def _end_expired_expansions(
    session: Session, now: datetime, campaign_id: int | None = None
) -> None:
    """A run past its deadline (expires_after) gets no more rows: its expansion ends here,
    so the dispatcher expires what was written (after looking up what may have left) and
    finishes the run at once, instead of after the whole audience was written. An
    expansion still at work sees the run no longer expanding at its next chunk and stops
    (that chunk rolled back, see campaigns.expand)."""
    query = select(Run.id).where(Run.status == "expanding", Run.expires_at <= now)
    if campaign_id is not None:
        query = query.where(Run.campaign_id == campaign_id)
    for run_id in session.scalars(query).all():
        if set_run_status(
            session,
            run_id,
            "sending",
            expected=("expanding",),
            reason="its deadline passed while its audience was expanded",
        ):
            session.execute(update(Run).where(Run.id == run_id).values(expanded_at=now))
            session.commit()  # the expansion waiting on the run's row stops at once
            log.warning("run %s: deadline passed while expanding; expansion ended", run_id)


def _expansion_kicks(session: Session, now: datetime, campaign_id: int | None = None) -> list[int]:
    """Runs to hand to an expansion: due, not yet expanded, and no expansion holds their
    lease (a kick promises them one, so the next tick waits for it)."""
    query = select(Run.id).where(
        Run.status.in_(expansion_lease.EXPANSION_STATUSES),
        Run.occurrence <= now,
        expansion_lease.free(now),
    )
    if campaign_id is not None:
        query = query.where(Run.campaign_id == campaign_id)
    # Runs of one campaign go in order: a later occurrence waits while an earlier one is
    # still active (overlap: queue, and catch-up of several missed occurrences).
    earlier = aliased(Run)
    query = query.where(
        ~exists().where(
            earlier.campaign_id == Run.campaign_id,
            earlier.occurrence < Run.occurrence,
            earlier.status.in_(ACTIVE_RUN_STATUSES),
        )
    )
    return [
        run_id
        for run_id in session.scalars(query).all()
        if expansion_lease.kick(session, run_id, now)
    ]


def _claim_kicks(  # type: ignore[no-untyped-def]
    session: Session,
    now: datetime,
    statuses: tuple[str, ...],
    due_work,
    campaign_id: int | None = None,
) -> list[int]:
    """Runs in ``statuses`` with work due and no live dispatch chain (``last_activity_at``
    more than DISPATCH_STALE_AFTER past the chains' promise); marks them touched so the
    next tick waits."""
    stale = or_(Run.last_activity_at.is_(None), Run.last_activity_at < now - DISPATCH_STALE_AFTER)
    query = select(Run.id).where(Run.status.in_(statuses), Run.occurrence <= now, stale)
    if campaign_id is not None:
        query = query.where(Run.campaign_id == campaign_id)
    query = query.where(due_work)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(Run).where(Run.id.in_(ids)).values(last_activity_at=now))
    return ids


def _finish_idle_runs(session: Session, now: datetime, campaign_id: int | None = None) -> None:
    query = select(Run.id).where(Run.status == "sending")
    if campaign_id is not None:
        query = query.where(Run.campaign_id == campaign_id)
    for run_id in session.scalars(query):
        finish_if_done(session, run_id)


def others_due(session: Session, campaign_id: int, now: datetime | None = None) -> int:
    """How many other campaigns have a run that is due or under way; a command scoped to
    one campaign says so rather than sending them."""
    now = now or db_now(session)
    under_way = select(Run.campaign_id).where(
        Run.campaign_id != campaign_id,
        Run.status.in_(("scheduled", "expanding", "sending")),
        Run.occurrence <= now,
    )
    waiting = set(session.scalars(under_way))
    # Occurrences that are due but have no run yet: found by creating them in a savepoint
    # that is rolled back, so "due" means exactly what the tick would do.
    savepoint = session.begin_nested()
    try:
        created = create_due_runs(session, now)
        if created:
            waiting |= set(session.scalars(select(Run.campaign_id).where(Run.id.in_(created))))
    finally:
        savepoint.rollback()
    waiting.discard(campaign_id)
    return len(waiting)

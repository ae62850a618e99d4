"""Campaign lifecycle as the CLI and the HTTP API carry it out: the database change
(``campaigns.runs``), then the work it calls for (enqueue the expansion, kick a resumed
run, wait for the batch on the wire, cancel at the provider), with an answer in words.

Each function raises ``campaigns.runs.CampaignError`` for what cannot be done (unknown id,
wrong state); the caller turns it into a one-line error (CLI) or a 409/404 (API).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from campaigns import expansion_lease, runs
from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.models import Run
from config.settings import Settings
from scheduler.listing import upcoming
from workers import preflight


@dataclass
class Outcome:
    campaign_id: int
    action: str  # started | scheduled | paused | resumed | cancelled
    message: str  # one sentence for people
    run_ids: list[int] = field(default_factory=list)
    next_occurrence: datetime | None = None
    zone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def due_now(self) -> bool:
        """A scheduled campaign whose run is due already (an overdue send_at)."""
        return self.action == "scheduled" and (
            self.next_occurrence is None or self.next_occurrence <= utcnow()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "action": self.action,
            "message": self.message,
            "run_ids": self.run_ids,
            "next_occurrence": self.next_occurrence.isoformat() if self.next_occurrence else None,
            "zone": self.zone,
            **self.extra,
        }


def _enqueue_expansion(run_id: int) -> None:
    from workers.tasks import expand_run

    expand_run.delay(run_id)


def _kick(run_id: int) -> None:
    from workers.tasks import kick

    kick(run_id)


def next_occurrence(settings: Settings, campaign_id: int) -> tuple[datetime | None, str]:
    """The campaign's next occurrence (in its zone) and the zone's name."""
    with session_scope(settings.database_url) as session:
        items = upcoming(session, count=1, campaign_id=campaign_id)
    if not items or not items[0].next:
        return None, items[0].zone if items else "UTC"
    return items[0].next[0], items[0].zone


def require_credentials(settings: Settings) -> None:
    """Refuse to start a campaign the provider would refuse anyway: say which variables
    are empty before a run exists."""
    missing = settings.missing_credentials()
    if missing:
        raise runs.CampaignError(
            f"{' and '.join(missing)}: not set; the {settings.provider} provider needs "
            f"{'them' if len(missing) > 1 else 'it'} before a campaign can start"
        )


def start(
    settings: Settings,
    campaign_id: int,
    *,
    enqueue: bool = True,
    force: bool = False,
    provider_price: bool = False,
) -> Outcome:
    """Activate a draft. An unscheduled campaign gets its run now (its expansion is
    enqueued); a scheduled one waits for the scheduler, and the answer says when.

    Its checks run first (``workers.preflight.check_start``): a check error, or a cost
    the balance cannot cover unless ``force``, raises StartRefused (a CampaignError)
    with the findings; warnings come back in the answer."""
    require_credentials(settings)
    with session_scope(settings.database_url) as session:
        checked = preflight.check_start(
            session, campaign_id, settings, force=force, provider_price=provider_price
        )
        session.rollback()  # the checks write nothing
    extra = preflight.start_notes(checked)
    with session_scope(settings.database_url) as session:
        campaign = runs.get_campaign(session, campaign_id)
        name = campaign.name
        run = runs.start_campaign(session, campaign_id)
        run_id = run.id if run else None
        if run_id is not None and enqueue:
            # Committed with the run, before the scheduler's tick can see it: this
            # enqueues the expansion, so the tick must not start a second one.
            expansion_lease.kick(session, run_id)
    if run_id is not None:
        if enqueue:
            _enqueue_expansion(run_id)
        return Outcome(
            campaign_id,
            "started",
            f"campaign {campaign_id} ({name}) started: run {run_id}.",
            [run_id],
            extra=extra,
        )
    at, zone = next_occurrence(settings, campaign_id)
    when = f"its next run fires at {at:%Y-%m-%d %H:%M %Z} ({zone})" if at else "its run is due now"
    return Outcome(
        campaign_id,
        "scheduled",
        f"campaign {campaign_id} ({name}) is scheduled: {when}.",
        next_occurrence=at,
        zone=zone,
        extra=extra,
    )


def wait_in_flight(settings: Settings, run_ids: list[int], timeout: float) -> int:
    """Wait until no message of these runs is on the wire; returns how many still are."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(settings.database_url) as session:
            left = runs.in_flight_count(session, run_ids)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def pause(settings: Settings, campaign_id: int) -> Outcome:
    """Pause; returns once the batch already on the wire has settled."""
    with session_scope(settings.database_url) as session:
        run_ids = runs.pause_campaign(session, campaign_id)
    left = wait_in_flight(settings, run_ids, settings.lease_seconds)
    message = f"campaign {campaign_id} paused" + (
        f"; {left} messages were still on the wire after {settings.lease_seconds:g} s"
        if left
        else "; nothing is on the wire"
    )
    return Outcome(campaign_id, "paused", message + ".", run_ids, extra={"still_in_flight": left})


def resume(settings: Settings, campaign_id: int, *, enqueue: bool = True) -> Outcome:
    """Resume where it stopped: the resumed runs are kicked at once, and a run whose
    expansion was cut short (no expansion holds its lease any more) is handed to a new
    one at once too; one still writing is left to finish."""
    with session_scope(settings.database_url) as session:
        run_ids = runs.resume_campaign(session, campaign_id)
        to_expand = [
            run_id
            for run_id in run_ids
            if enqueue
            and session.scalar(select(Run.status).where(Run.id == run_id)) == "expanding"
            and expansion_lease.kick(session, run_id)
        ]
    if enqueue:
        for run_id in to_expand:
            _enqueue_expansion(run_id)
        for run_id in run_ids:
            _kick(run_id)
    what = (
        "run " + ", ".join(str(r) for r in run_ids) + " continues"
        if run_ids
        else "its next run fires on schedule"
    )
    return Outcome(campaign_id, "resumed", f"campaign {campaign_id} resumed: {what}.", run_ids)


def cancel(settings: Settings, campaign_id: int) -> Outcome:
    """Cancel: pending messages are never sent; those handed to the provider with a future
    schedule are cancelled there."""
    from workers.context import cancel_campaign_at_provider

    with session_scope(settings.database_url) as session:
        run_ids = runs.cancel_campaign(session, campaign_id)
    left = wait_in_flight(settings, run_ids, settings.lease_seconds)
    report = cancel_campaign_at_provider(settings, campaign_id)
    parts = [f"campaign {campaign_id} cancelled: {report.held_here} messages will not be sent"]
    if report.at_provider:
        parts.append(f"{report.at_provider} scheduled at the provider were cancelled there")
    errors = [r.provider_error for r in report.runs if r.provider_error]
    if errors:
        parts.append("the provider could not cancel some: " + "; ".join(errors))
    if left:
        parts.append(f"{left} were still on the wire")
    return Outcome(
        campaign_id,
        "cancelled",
        ", ".join(parts) + ".",
        run_ids,
        extra={**report.to_json(), "still_in_flight": left},
    )

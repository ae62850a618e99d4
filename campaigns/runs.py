"""Campaign and run lifecycle: create, start, pause, resume, cancel, finish.

Status changes are plain UPDATEs guarded by the current status, so two processes
racing to move the same run cannot both succeed.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns import claims
from campaigns.clock import db_now, db_now_sql, utcnow
from campaigns.models import Campaign, ContactList, Message, MessageStatus, Run

ACTIVE_RUN_STATUSES = ("scheduled", "expanding", "sending", "paused")
IN_FLIGHT_MESSAGE_STATUSES = ("pending", "claimed", "unknown")


class CampaignError(ValueError):
    """A campaign command that cannot be carried out (unknown id, wrong state)."""


def new_run_key(campaign_id: int) -> str:
    # Sent as custom_string: unique per run, short, and stable once written.
    return f"clarion-{campaign_id}-{secrets.token_hex(6)}"


def create_campaign(
    session: Session,
    definition: dict[str, Any],
    *,
    unique_name: bool = False,
    replace: bool = False,
) -> Campaign:
    """Store a validated definition. Every audience list must exist already.

    ``unique_name`` (what people use: the CLI and the API): refuse a name that a campaign
    not cancelled has already, so a second `create` of the same file does not silently
    make a second campaign; ``replace`` replaces the definition of that draft instead.
    """
    _check_lists(session, definition)
    same = (
        None
        if not (unique_name or replace)
        else session.scalars(
            select(Campaign)
            .where(Campaign.name == definition["name"], Campaign.status != "cancelled")
            .order_by(Campaign.id)
        ).first()
    )
    if same is not None:
        if not replace:
            raise CampaignError(
                f"name: a campaign named {same.name!r} exists already (campaign {same.id}, "
                f"{same.status}); use --replace to replace its draft"
            )
        if same.status != "draft":
            raise CampaignError(
                f"name: campaign {same.id} ({same.name!r}) is {same.status}, only a draft "
                "can be replaced"
            )
        same.definition = definition
        same.channel = definition.get("channel", "sms")
        session.flush()
        return same
    campaign = Campaign(
        name=definition["name"], channel=definition.get("channel", "sms"), definition=definition
    )
    session.add(campaign)
    session.flush()
    return campaign


def _check_lists(session: Session, definition: dict[str, Any]) -> None:
    lists = list(definition.get("audience", {}).get("lists", []))
    if lists:
        found = set(session.scalars(select(ContactList.name).where(ContactList.name.in_(lists))))
        missing = [name for name in lists if name not in found]
        if missing:
            raise CampaignError(
                "audience.lists: unknown list " + ", ".join(repr(m) for m in missing)
            )


def update_draft(session: Session, campaign_id: int, definition: dict[str, Any]) -> Campaign:
    """Replace a draft's definition (validated by the caller); only a draft changes."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status != "draft":
        raise CampaignError(f"campaign {campaign_id}: is {_state(campaign)}, only a draft changes")
    _check_lists(session, definition)
    if definition["name"] != campaign.name:
        clash = session.scalar(
            select(Campaign.id).where(
                Campaign.name == definition["name"],
                Campaign.status != "cancelled",
                Campaign.id != campaign_id,
            )
        )
        if clash is not None:
            raise CampaignError(
                f"name: a campaign named {definition['name']!r} exists already (campaign {clash})"
            )
    campaign.name, campaign.definition = definition["name"], definition
    campaign.channel = definition.get("channel", "sms")
    session.flush()
    return campaign


def delete_draft(session: Session, campaign_id: int) -> None:
    """Delete a draft; a campaign that was ever started keeps its history (cancel it)."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status != "draft":
        raise CampaignError(
            f"campaign {campaign_id}: is {_state(campaign)}, only a draft is deleted (cancel it)"
        )
    session.delete(campaign)
    session.flush()


def _state(campaign: Campaign) -> str:
    """The campaign's status as a phrase: "already cancelled", "finished", "a draft"."""
    if campaign.status == "cancelled":
        return "already cancelled"
    if campaign.status == "paused":
        return "already paused"
    return "a draft" if campaign.status == "draft" else campaign.status


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"campaign {campaign_id}: no such campaign")
    return campaign


def create_run(
    session: Session,
    campaign: Campaign,
    occurrence: datetime,
    *,
    expires_at: datetime | None = None,
) -> Run | None:
    """Create the run for one occurrence; None when it exists already (a double fire)."""
    run = Run(
        campaign_id=campaign.id,
        occurrence=occurrence,
        key=new_run_key(campaign.id),
        status="scheduled",
        expires_at=expires_at,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        return None
    return run


def latest_run(session: Session, campaign_id: int) -> Run | None:
    return session.scalars(
        select(Run).where(Run.campaign_id == campaign_id).order_by(Run.id.desc()).limit(1)
    ).first()


def set_run_status(
    session: Session, run_id: int, new: str, *, expected: tuple[str, ...], reason: str | None = None
) -> bool:
    """Move a run from one of ``expected`` to ``new``; False if it was in another state."""
    values: dict[str, Any] = {"status": new, "status_reason": reason}
    if new in ("expanding", "sending", "completed", "cancelled", "failed"):
        now = db_now_sql(session)  # only written: no round trip of its own on PostgreSQL
        if new in ("expanding", "sending"):
            values["started_at"] = func.coalesce(Run.started_at, now)
        else:
            values["finished_at"] = now
    result = session.execute(
        update(Run).where(Run.id == run_id, Run.status.in_(expected)).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def active_runs(session: Session, campaign_id: int) -> list[Run]:
    return list(
        session.scalars(
            select(Run).where(Run.campaign_id == campaign_id, Run.status.in_(ACTIVE_RUN_STATUSES))
        )
    )


def pause_campaign(session: Session, campaign_id: int, reason: str = "paused by user") -> list[int]:
    """Pause the campaign and its runs. Claimed rows finish their batch; nothing new is claimed."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status in ("cancelled", "finished") and not active_runs(session, campaign_id):
        raise CampaignError(f"campaign {campaign_id}: is {_state(campaign)}, cannot pause")
    campaign.status, campaign.status_reason = "paused", reason
    paused = []
    for run in active_runs(session, campaign_id):
        if set_run_status(
            session, run.id, "paused", expected=("scheduled", "expanding", "sending"), reason=reason
        ):
            paused.append(run.id)
    return paused


def resume_campaign(session: Session, campaign_id: int) -> list[int]:
    """Resume paused runs; returns the ids of runs that should be dispatched again."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status != "paused":
        raise CampaignError(f"campaign {campaign_id}: is {_state(campaign)}, not paused")
    campaign.status, campaign.status_reason = "active", None
    resumed = []
    for run in active_runs(session, campaign_id):
        if run.status != "paused":
            continue
        if run.expanded_at is not None:
            target = "sending"
        elif run.started_at is not None:
            # Its expansion began and did not finish (or is still writing): 'expanding'
            # sends what exists, and the scheduler's tick expands the run again once
            # nothing shows progress (expansion is idempotent).
            target = "expanding"
        else:
            target = "scheduled"
        if set_run_status(session, run.id, target, expected=("paused",)):
            resumed.append(run.id)
    return resumed


def cancel_campaign(session: Session, campaign_id: int) -> list[int]:
    """Cancel the campaign: its runs stop and their pending messages become cancelled."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status == "cancelled" or (
        campaign.status == "finished" and not _handed_over_for_later(session, campaign_id)
    ):
        raise CampaignError(f"campaign {campaign_id}: is {_state(campaign)}, nothing to cancel")
    campaign.status, campaign.status_reason = "cancelled", "cancelled by user"
    cancelled = []
    for run in active_runs(session, campaign_id):
        if set_run_status(
            session, run.id, "cancelled", expected=ACTIVE_RUN_STATUSES, reason="cancelled by user"
        ):
            cancelled.append(run.id)
            claims.finish_pending(session, run.id, MessageStatus.CANCELLED, "campaign cancelled")
    return cancelled


def _handed_over_for_later(session: Session, campaign_id: int) -> bool:
    """Whether messages of the campaign wait at the provider for a future ``schedule``
    (a finished campaign can still cancel those)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Message.run_id == Run.id,
                    Run.campaign_id == campaign_id,
                    Message.status == "sent",
                    Message.provider_schedule > int(utcnow().timestamp()),
                )
            )
        )
    )


def in_flight_count(session: Session, run_ids: list[int]) -> int:
    """Messages handed to a worker (claimed) but without a result yet."""
    if not run_ids:
        return 0
    return int(
        session.scalar(
            select(func.count()).where(Message.run_id.in_(run_ids), Message.status == "claimed")
        )
        or 0
    )


def finish_if_done(session: Session, run_id: int) -> bool:
    """Mark a sending run completed once its expansion has finished and no message is
    left to send or settle."""
    # Read before the rows: once expanded_at is set, no row of the run is added any more.
    if session.scalar(select(Run.expanded_at).where(Run.id == run_id)) is None:
        return False
    # EXISTS stops at the first open row; a count would read them all every tick.
    still_open = session.scalar(
        select(
            exists().where(Message.run_id == run_id, Message.status.in_(IN_FLIGHT_MESSAGE_STATUSES))
        )
    )
    if still_open:
        return False
    counts = dict(
        session.execute(
            select(Message.status, func.count())
            .where(Message.run_id == run_id)
            .group_by(Message.status)
        ).all()
    )
    failed = int(counts.get("failed", 0))
    if failed and not counts.get("sent"):
        # Nothing went out: the run failed, whatever else (suppressed, skipped) it held.
        top = session.scalar(
            select(Message.error)
            .where(Message.run_id == run_id, Message.status == "failed")
            .group_by(Message.error)
            .order_by(func.count().desc())
            .limit(1)
        )
        status: str = "failed"
        reason: str | None = f"every message failed ({failed}: {top})"
    else:
        total = sum(int(v) for v in counts.values())
        status, reason = "completed", (f"{failed} of {total} messages failed" if failed else None)
    if not set_run_status(session, run_id, status, expected=("sending",), reason=reason):
        return False
    _finish_unscheduled_campaign(session, run_id)
    return True


def recurring(definition: dict[str, Any]) -> bool:
    """Whether the campaign's runs come from a send_at or cron schedule (rather than the
    one run an unscheduled campaign gets when it is started)."""
    schedule = definition.get("schedule") or {}
    return bool(schedule.get("send_at") or schedule.get("cron"))


def _finish_unscheduled_campaign(session: Session, run_id: int) -> None:
    """An unscheduled campaign has one run: when it ends, so does the campaign."""
    run = session.get(Run, run_id)
    campaign = session.get(Campaign, run.campaign_id) if run else None
    if campaign is not None and campaign.status == "active" and not recurring(campaign.definition):
        campaign.status, campaign.status_reason = "finished", None


def start_campaign(session: Session, campaign_id: int) -> Run | None:
    """Activate a draft campaign. An unscheduled one gets its single run now (returned);
    a scheduled one is left to the scheduler."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status != "draft":
        raise CampaignError(f"campaign {campaign_id}: is {campaign.status}, not a draft")
    campaign.status = "active"
    # The database's clock, the one the tick compares occurrences with.
    campaign.started_at = db_now(session)
    session.flush()
    if campaign.definition.get("schedule"):
        return None
    return create_run(session, campaign, campaign.started_at)

"""Expand a run into one message row per recipient, in bulk and streaming.

Contacts are read in keyset-paged chunks and written with INSERT ... ON CONFLICT DO
NOTHING on (run_id, phone), so the same number in two lists is sent once, a 1M-row
audience never sits in memory, and expanding the same run twice adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from campaigns.bulk import insert_ignore
from campaigns.clock import utcnow
from campaigns.definition import CampaignDefinition, load_definition
from campaigns.models import Campaign, Contact, ContactList, Message, Run, Suppression, table
from campaigns.runs import set_run_status
from campaigns.templates import MissingField, compile_template

# An expansion goes on writing while its run is paused (resume then needs no second
# pass); any other state (cancelled) stops it.
EXPANDABLE = ("scheduled", "expanding", "paused")


@dataclass(frozen=True)
class SendPlan:
    """When one recipient's message may go out, or why it must not."""

    not_before: datetime | None = None
    skip_reason: str | None = None
    # Hand the message to the provider now with this future `schedule` (unix seconds),
    # instead of holding it here until it is due.
    provider_schedule: int | None = None


# (phone, contact fields, contact time zone, run occurrence) -> plan; the scheduler supplies
# one for reminders and send windows. None means "send as soon as possible".
Planner = Callable[[str, dict[str, Any], str | None, datetime], SendPlan]


@dataclass
class ExpandReport:
    run_id: int
    candidates: int = 0
    messages: int = 0
    duplicates_removed: int = 0
    suppressed: int = 0
    failed: int = 0
    skipped: int = 0


def _render_message(
    render: Callable[[dict[str, Any], dict[str, str]], str],
    defaults: dict[str, str],
    phone: str,
    fields: dict[str, Any],
) -> tuple[str, str | None]:
    try:
        return render({**fields, "phone_number": phone}, defaults), None
    except MissingField as exc:
        return "", f"missing field {exc.field}"


def variables_renderer(
    variables: dict[str, str],
) -> Callable[[dict[str, Any], dict[str, str]], str]:
    """For a provider template (SkillBoss notify-send): each variable is itself a
    template; the message body stores the rendered variables as JSON."""
    compiled = {name: compile_template(value) for name, value in variables.items()}

    def render(fields: dict[str, Any], defaults: dict[str, str]) -> str:
        return json.dumps({name: r(fields, defaults) for name, r in compiled.items()})

    return render


def body_renderer(
    defn: CampaignDefinition, template_body: str | None
) -> Callable[[dict[str, Any], dict[str, str]], str]:
    if defn.provider == "skillboss" and isinstance(defn.message.template_id, str):
        return variables_renderer(dict(defn.message.variables or {}))
    return compile_template(message_body_template(defn, template_body))


def message_body_template(defn: CampaignDefinition, template_body: str | None) -> str:
    if defn.message.body is not None:
        return defn.message.body
    if template_body is None:
        raise ValueError("message.template_id: the template's body was not fetched")
    return template_body


def expand_run(
    session: Session,
    run_id: int,
    *,
    template_body: str | None = None,
    planner: Planner | None = None,
    chunk_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> ExpandReport:
    """Write the run's message rows and move it to 'sending'. Commits per chunk."""
    run = session.get(Run, run_id)
    if run is None:
        raise ValueError(f"run {run_id}: no such run")
    report = ExpandReport(run_id=run_id)
    if run.status not in ("scheduled", "expanding"):
        report.messages = _count(session, run_id)
        report.duplicates_removed = run.duplicates_removed
        return report
    set_run_status(session, run_id, "expanding", expected=("scheduled", "expanding"))
    session.commit()

    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    defn = load_definition(campaign.definition)
    render = body_renderer(defn, template_body)
    defaults = dict(defn.message.defaults)
    list_ids = list(
        session.scalars(
            select(ContactList.id).where(
                ContactList.name.in_(defn.audience.lists)
                | ContactList.clicksend_list_id.in_(defn.audience.clicksend_lists)
            )
        )
    )

    last_id = 0
    while True:
        rows = session.execute(
            select(
                Contact.id,
                Contact.phone,
                Contact.fields,
                Contact.timezone,
                Suppression.id.is_not(None).label("suppressed"),
            )
            .outerjoin(Suppression, Suppression.phone == Contact.phone)
            .where(Contact.list_id.in_(list_ids), Contact.id > last_id)
            .order_by(Contact.id)
            .limit(chunk_size)
        ).all()
        if not rows:
            break
        last_id = rows[-1].id
        batch = []
        for row in rows:
            body, error = _render_message(render, defaults, row.phone, row.fields)
            status = "pending"
            plan = SendPlan()
            if row.suppressed:
                status, error = "suppressed", "number opted out"
            elif error is not None:
                status = "failed"
            elif planner is not None:
                plan = planner(row.phone, row.fields, row.timezone, run.occurrence)
                if plan.skip_reason:
                    status, error = "skipped", plan.skip_reason
            batch.append(
                {
                    "run_id": run_id,
                    "contact_id": row.id,
                    "phone": row.phone,
                    "body": body,
                    "status": status,
                    "error": error,
                    "not_before": plan.not_before,
                    "provider_schedule": plan.provider_schedule,
                    "attempts": 0,
                }
            )
        insert_ignore(session, table(Message), batch)
        if not _still_wanted(session, run_id):
            session.rollback()
            return report
        session.commit()
        report.candidates += len(rows)
        if progress:
            progress(len(rows))

    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics after a bulk load: without them the planner takes the new rows
        # for a small table and scans all of it for every batch it updates.
        session.execute(text("ANALYZE messages"))
    report.messages = _count(session, run_id)
    report.duplicates_removed = report.candidates - report.messages
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(EXPANDABLE))
        .values(duplicates_removed=report.duplicates_removed, expanded_at=utcnow())
    )
    # A run paused meanwhile stays paused; its resume finds it expanded.
    set_run_status(session, run_id, "sending", expected=("expanding",))
    session.commit()
    for status, count in session.execute(
        select(Message.status, func.count())
        .where(Message.run_id == run_id)
        .group_by(Message.status)
    ):
        if status == "suppressed":
            report.suppressed = count
        elif status == "failed":
            report.failed = count
        elif status == "skipped":
            report.skipped = count
    return report


def _still_wanted(session: Session, run_id: int) -> bool:
    """Mark progress and say whether the chunk just written may stay.

    The UPDATE locks the run's row until the chunk commits, so a cancel either came
    first (seen here: the chunk is rolled back) or waits and then cancels these rows
    with the rest. Taken after the insert, the lock is held only for the commit.
    """
    # Progress marker too: the scheduler leaves a run alone while it shows activity.
    session.execute(update(Run).where(Run.id == run_id).values(last_activity_at=utcnow()))
    status = session.scalar(select(Run.status).where(Run.id == run_id))
    return status in EXPANDABLE


def _count(session: Session, run_id: int) -> int:
    return int(session.scalar(select(func.count()).where(Message.run_id == run_id)) or 0)

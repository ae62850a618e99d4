"""Plain functions behind the expand task."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from campaigns import expansion_lease
from campaigns.definition import load_definition
from campaigns.expand import ExpandReport, expand_run
from campaigns.models import Campaign, Run
from campaigns.sync import sync_list
from clicksend.client import ClickSendClient
from config.settings import Settings
from scheduler.rules import planner_for_run

log = logging.getLogger(__name__)


def expand(
    session: Session,
    run_id: int,
    settings: Settings,
    client: ClickSendClient,
    on_first_chunk: Callable[[], None] | None = None,
    turn_seconds: float | None = None,
) -> ExpandReport:
    """Expand a run; ``on_first_chunk`` fires once the first rows are written, so
    sending can begin while the rest of the audience is expanded. ``client`` (under the
    account's rate limit) reads ClickSend lists and templates the run needs.

    ``turn_seconds``: end this expansion after the chunk written past this long
    (``ExpandReport.yielded``), for the caller to enqueue the rest behind the dispatch
    turns waiting for the slot. Only for an audience of local lists and a body in the
    definition: a later turn then repeats no ClickSend sync or template fetch."""
    with expansion_lease.expansion_lease(session, run_id) as owner:
        if owner is None:  # another expansion is at work on the run
            return ExpandReport(run_id=run_id)
        report = _expand(session, run_id, owner, settings, client, on_first_chunk, turn_seconds)
    if report.yielded:
        # The next turn is promised the lease, as a kick does, so the tick does not hand
        # the run to another expansion meanwhile; if one was promised it already, that
        # one goes on instead.
        report.yielded = expansion_lease.kick(session, run_id)
        session.commit()
    return report


def _expand(
    session: Session,
    run_id: int,
    owner: str,
    settings: Settings,
    client: ClickSendClient,
    on_first_chunk: Callable[[], None] | None,
    turn_seconds: float | None,
) -> ExpandReport:
    run = session.get(Run, run_id)
    if run is None:
        raise ValueError(f"run {run_id}: no such run")
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    defn = load_definition(campaign.definition)
    if defn.audience.clicksend_lists:
        expansion_lease.renew(session, run_id, owner, expansion_lease.SYNC_SECONDS)
        session.commit()
        sync_audience(session, client, defn.audience.clicksend_lists, settings)
    template_body = None
    if defn.message.body is None and isinstance(defn.message.template_id, int):
        template_id = defn.message.clicksend_template_id()
        assert template_id is not None
        template = client.sms_template(template_id)
        template_body = template.body
    if defn.audience.clicksend_lists or template_body is not None:
        turn_seconds = None  # one turn: each would sync and fetch again
    expansion_lease.renew(session, run_id, owner, expansion_lease.STEP_SECONDS)
    session.commit()
    fired = False

    def progress(_: int) -> None:
        nonlocal fired
        if not fired and on_first_chunk is not None:
            fired = True
            on_first_chunk()

    planner = planner_for_run(session, run, campaign.definition, settings)
    return expand_run(
        session,
        run_id,
        template_body=template_body,
        planner=planner,
        progress=progress,
        owner=owner,
        turn_seconds=turn_seconds,
    )


def sync_audience(
    session: Session, client: ClickSendClient, clicksend_list_ids: list[int], settings: Settings
) -> None:
    """Each run takes a fresh snapshot: ClickSend lists are synced (incrementally) first."""
    for list_id in clicksend_list_ids:
        report = sync_list(session, client, list_id, default_region=settings.default_region)
        log.info(
            "synced ClickSend list %s: %d new, %d updated, %d rejected",
            list_id,
            report.imported,
            report.updated,
            len(report.errors),
        )

"""Plain functions behind the expand task."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from campaigns.definition import load_definition
from campaigns.expand import ExpandReport, expand_run
from campaigns.models import Campaign, Run
from config.settings import Settings
from scheduler.rules import planner_for_run
from workers.context import get_dispatcher


def expand(
    session: Session,
    run_id: int,
    settings: Settings,
    on_first_chunk: Callable[[], None] | None = None,
) -> ExpandReport:
    """Expand a run; ``on_first_chunk`` fires once the first rows are written, so
    sending can begin while the rest of the audience is expanded."""
    run = session.get(Run, run_id)
    if run is None:
        raise ValueError(f"run {run_id}: no such run")
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    defn = load_definition(campaign.definition)
    template_body = None
    if defn.message.body is None and defn.message.template_id is not None:
        template = get_dispatcher().client.sms_template(defn.message.template_id)
        template_body = template.body
    fired = False

    def progress(_: int) -> None:
        nonlocal fired
        if not fired and on_first_chunk is not None:
            fired = True
            on_first_chunk()

    planner = planner_for_run(session, run, campaign.definition, settings)
    return expand_run(
        session, run_id, template_body=template_body, planner=planner, progress=progress
    )

"""What the dashboard's buttons do: the campaign lifecycle, as the CLI does it."""

from __future__ import annotations

from campaigns import runs
from campaigns.db import session_scope
from config.settings import Settings


def start(settings: Settings, campaign_id: int) -> str:
    from workers.tasks import expand_run

    with session_scope(settings.database_url) as session:
        run = runs.start_campaign(session, campaign_id)
        run_id = run.id if run else None
        if run_id is not None:
            # Committed with the run, so the scheduler's tick does not expand it a second time.
            runs.mark_kicked(session, run_id)
    if run_id is None:
        return f"campaign {campaign_id} started; it runs on its schedule"
    expand_run.delay(run_id)
    return f"campaign {campaign_id} started, run {run_id}"


def pause(settings: Settings, campaign_id: int) -> str:
    with session_scope(settings.database_url) as session:
        paused = runs.pause_campaign(session, campaign_id)
    return f"campaign {campaign_id} paused; the batch on the wire settles" + (
        "" if paused else " (no run was sending)"
    )


def resume(settings: Settings, campaign_id: int) -> str:
    from workers.tasks import kick

    with session_scope(settings.database_url) as session:
        resumed = runs.resume_campaign(session, campaign_id)
    for run_id in resumed:
        kick(run_id)
    return f"campaign {campaign_id} resumed"


def cancel(settings: Settings, campaign_id: int) -> str:
    from workers.context import cancel_campaign_at_provider

    with session_scope(settings.database_url) as session:
        runs.cancel_campaign(session, campaign_id)
    report = cancel_campaign_at_provider(settings, campaign_id)
    return (
        f"campaign {campaign_id} cancelled: {report.held_here:,} messages stopped here, "
        f"{report.at_provider:,} at the provider"
    )


ACTIONS = {"start": start, "pause": pause, "resume": resume, "cancel": cancel}

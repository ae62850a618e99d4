"""Celery tasks: thin shells that call plain functions and decide what runs next.

Tasks carry ids only. Waits longer than ``MAX_COUNTDOWN`` are not Celery countdowns (the
Redis broker redelivers long ones, see docs/architecture.md): the row's ``not_before`` holds them
and the scheduler tick kicks the run again when they are due.
"""

from __future__ import annotations

import logging

from clicksend.errors import HeldBackError, RateLimitedError
from config.settings import get_settings
from scheduler import tick as scheduler_tick
from scheduler.housekeeping import purge_old_messages, vacuum_messages_if_needed
from workers import context, inbound, metrics, receipts, runner
from workers.app import app

log = logging.getLogger(__name__)

MAX_COUNTDOWN = 30.0
# How long an expansion writes before it lets the tasks queued meanwhile have the slot.
EXPANSION_TURN_SECONDS = 10.0


@app.task(name="clarion.dispatch_run", ignore_result=True)
def dispatch_run(run_id: int) -> str:
    dispatcher = context.current().dispatcher
    outcome = dispatcher.dispatch_once(run_id)
    metrics.dispatched(outcome.sent, outcome.failed)
    if outcome.action == "again":
        dispatch_run.apply_async((run_id,))
    elif outcome.action == "wait" and outcome.delay <= MAX_COUNTDOWN:
        if outcome.promise:
            dispatcher.expect_back(run_id, outcome.delay)
        dispatch_run.apply_async((run_id,), countdown=outcome.delay)
    return outcome.action


@app.task(name="clarion.expand_run", ignore_result=True)
def expand_run(run_id: int, turn: int = 0) -> None:
    """Expand a run in turns, each enqueued behind the tasks queued meanwhile: a worker
    with one slot sends the rows written while the rest of the audience is expanded,
    rather than after all of it. The first turn ends after its first chunk (the dispatch
    chains it kicks go next), later ones after ``EXPANSION_TURN_SECONDS``."""
    ctx = context.current()
    with ctx.session() as session:
        report = runner.expand(
            session,
            run_id,
            ctx.settings,
            ctx.lookups,
            # Later turns kick nothing: the chains started by the first wait for rows.
            on_first_chunk=(lambda: kick(run_id)) if turn == 0 else None,
            turn_seconds=EXPANSION_TURN_SECONDS if turn else 0.0,
        )
    if report.yielded:
        expand_run.delay(run_id, turn + 1)
        return
    kick(run_id)


@app.task(name="clarion.tick", ignore_result=True)
def tick(campaign_id: int | None = None) -> None:
    settings = get_settings()
    result = scheduler_tick.tick(settings, campaign_id=campaign_id)
    for run_id in result.to_expand:
        expand_run.delay(run_id)
    for run_id in result.to_dispatch:
        kick(run_id)


@app.task(name="clarion.poll_inbound", ignore_result=True)
def poll_inbound() -> None:
    ctx = context.current()
    try:
        with ctx.session() as session:
            report = inbound.poll_inbound(session, ctx.lookups, ctx.settings.default_region)
    except (HeldBackError, RateLimitedError) as exc:
        # Not a failure: the next poll reads what this one could not.
        log.info("inbound: poll deferred (%s)", exc)
        return
    if report.opted_out:
        log.info("inbound: %d replies read, %d numbers opted out", report.read, report.opted_out)


@app.task(name="clarion.poll_receipts", ignore_result=True)
def poll_receipts() -> None:
    ctx = context.current()
    try:
        with ctx.session() as session:
            receipts.poll_receipts(session, ctx.spare, marker=ctx.lookups)
    except RateLimitedError as exc:
        log.info("receipts: poll deferred (%s)", exc)


@app.task(name="clarion.housekeeping", ignore_result=True)
def housekeeping() -> None:
    settings = get_settings()
    purge_old_messages(settings.database_url, settings.retention_days)
    vacuum_messages_if_needed(settings.database_url)


def kick(run_id: int) -> None:
    """Start as many dispatch chains for a run as there are worker slots to use."""
    for _ in range(get_settings().dispatch_parallelism):
        dispatch_run.delay(run_id)

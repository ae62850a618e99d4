"""A campaign definition's ``schedule`` block as the scheduler's own types.

``campaign_timing`` gives when runs happen (``Recurrence``, the zone, the send-by
deadline); ``plan_rules`` gives how each recipient's message is timed within a run
(reminder field, send window, zone overrides) for ``scheduler.planning``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns.clock import as_utc, utcnow
from campaigns.definition import Schedule, load_definition
from campaigns.expand import Planner
from campaigns.models import Run
from config.settings import Settings
from scheduler.occurrences import Recurrence
from scheduler.planning import PlanRules, Relative, make_planner, zone_named
from scheduler.windows import Window


@dataclass(frozen=True)
class Timing:
    """When a campaign's runs happen, and by when each run's messages must be out."""

    zone: ZoneInfo
    recurrence: Recurrence | None = None  # None: one run, at the campaign's start
    expires_after: timedelta | None = None

    def expires_at(self, occurrence: datetime) -> datetime | None:
        return occurrence + self.expires_after if self.expires_after is not None else None


def _schedule(definition: Mapping[str, Any]) -> Schedule | None:
    # The tick reads every active campaign each second: validate each distinct
    # definition once (a Schedule is immutable).
    return _parsed_schedule(json.dumps(definition, sort_keys=True, default=str))


@lru_cache(maxsize=4096)
def _parsed_schedule(text: str) -> Schedule | None:
    return load_definition(json.loads(text)).schedule


def campaign_timing(definition: Mapping[str, Any]) -> Timing:
    """The timing of a stored definition; ValueError naming the field when unusable."""
    return _timing(json.dumps(definition, sort_keys=True, default=str))


@lru_cache(maxsize=4096)
def _timing(text: str) -> Timing:
    # Cached per distinct definition: the Recurrence it holds remembers its next
    # occurrence, which makes an idle tick cheap.
    schedule = _schedule(json.loads(text))
    if schedule is None:
        return Timing(zone=ZoneInfo("UTC"))
    recurrence = None
    if schedule.send_at is not None or schedule.cron is not None:
        recurrence = Recurrence(
            zone=schedule.zone(),
            cron=schedule.cron,
            send_at=schedule.send_at_utc(),
            until=schedule.last_occurrence_utc(),
            catch_up=schedule.catch_up,
            overlap=schedule.overlap,
        )
    return Timing(zone=schedule.zone(), recurrence=recurrence, expires_after=schedule.expires_after)


def plan_rules(definition: Mapping[str, Any], handover_after: timedelta | None) -> PlanRules:
    """The per-recipient planning rules of a stored definition."""
    schedule = _schedule(definition)
    if schedule is None:
        return PlanRules(zone=ZoneInfo("UTC"))
    window, relative = schedule.window, schedule.relative
    return PlanRules(
        zone=schedule.zone(),
        relative=Relative(relative.field, relative.offset) if relative is not None else None,
        window=Window(window.start, window.end, window.weekdays()) if window else None,
        # Zone overrides for every recipient or per country, read when the definition
        # carries them (window.timezone, window.countries: {AU: Australia/Sydney}).
        zone_override=_zone(getattr(window, "timezone", None), "schedule.window.timezone"),
        country_zones={
            str(country).upper(): _required_zone(name, f"schedule.window.countries.{country}")
            for country, name in (getattr(window, "countries", None) or {}).items()
        },
        handover_after=handover_after,
    )


def _zone(name: Any, where: str) -> ZoneInfo | None:
    if not name:
        return None
    zone = zone_named(str(name))
    if zone is None:
        raise ValueError(f"{where}: unknown time zone {name!r}")
    return zone


def _required_zone(name: Any, where: str) -> ZoneInfo:
    zone = _zone(name, where)
    if zone is None:
        raise ValueError(f"{where}: a time zone is required")
    return zone


def planner_for_run(
    session: Session,
    run: Run,
    definition: Mapping[str, Any],
    settings: Settings,
    now: datetime | None = None,
) -> Planner | None:
    """The planner for expanding ``run``; also sets its send-by deadline from expires_after."""
    now = now or utcnow()
    occurrence = as_utc(run.occurrence) or now
    expires_at = as_utc(run.expires_at)
    if expires_at is None:
        expires_at = campaign_timing(definition).expires_at(occurrence)
        if expires_at is not None:
            session.execute(update(Run).where(Run.id == run.id).values(expires_at=expires_at))
    handover = settings.scheduler_handover_seconds
    rules = plan_rules(definition, timedelta(seconds=handover) if handover > 0 else None)
    return make_planner(rules, now=now, expires_at=expires_at)

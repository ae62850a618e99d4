"""The expansion planner: when each recipient's message of a run may go out.

``expand_run`` asks the planner once per recipient. It answers with a ``SendPlan``:

- relative reminders: the time in a contact field plus an offset (``-24h``); a reminder
  whose time has already passed is skipped with a reason, as is an unreadable field;
- send windows: a time outside the window in the recipient's local time is deferred to
  the window's next opening, never dropped;
- hand-over: a message due more than ``handover_after`` ahead goes to the provider now
  with ClickSend's ``schedule``; a nearer one waits here in ``Message.not_before``.

The recipient's zone is the contact's ``timezone`` column, else the definition's
zone override, else its zone for the number's country, else the zones phonenumbers gives
for the number, else the campaign's zone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaigns.clock import as_utc
from campaigns.expand import Planner, SendPlan
from campaigns.phones import UNKNOWN_ZONE, InvalidPhone, region_of, timezones_for
from scheduler.windows import Window, next_common_opening

# A reminder found this little past its time (expansion takes a moment) still goes out.
REMINDER_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Relative:
    """Send at the time held in a contact ``field`` plus ``offset`` (negative: before)."""

    field: str
    offset: timedelta


@dataclass(frozen=True)
class PlanRules:
    """Everything a run's planner needs from the campaign definition and settings."""

    zone: ZoneInfo  # the campaign's zone: the last resort for a recipient's zone
    window: Window | None = None
    relative: Relative | None = None
    zone_override: ZoneInfo | None = None  # the definition's zone for every recipient
    # Per country (ISO region of the number, e.g. "AU"): one zone for all its numbers.
    country_zones: Mapping[str, ZoneInfo] = field(default_factory=dict)
    # Messages due further ahead than this are handed over with a provider schedule;
    # None keeps every deferred message here until it is due.
    handover_after: timedelta | None = None

    @property
    def needed(self) -> bool:
        return self.window is not None or self.relative is not None


def zone_named(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# phonenumbers places a number by its first nine digits (TIMEZONE_LONGEST_PREFIX) and its
# type, which follows from its prefix and length; parsing every recipient costs ~0.3 ms,
# so the answer is kept per (prefix, length).
_ZONE_PREFIX = 10  # "+" and nine digits
_facts_by_prefix: dict[tuple[str, int], tuple[str | None, tuple[str, ...]]] = {}


def number_facts(phone: str) -> tuple[str | None, tuple[str, ...]]:
    """(ISO region, IANA zone names) phonenumbers gives for an E.164 number; the names
    are empty when it cannot place the number."""
    key = (phone[:_ZONE_PREFIX], len(phone))
    facts = _facts_by_prefix.get(key)
    if facts is None:
        try:
            names = tuple(n for n in timezones_for(phone) if n != UNKNOWN_ZONE)
            facts = (region_of(phone), names)
        except InvalidPhone:
            facts = (None, ())
        if len(_facts_by_prefix) > 200_000:
            _facts_by_prefix.clear()
        _facts_by_prefix[key] = facts
    return facts


def recipient_zones(phone: str, contact_zone: str | None, rules: PlanRules) -> list[ZoneInfo]:
    """The zones the recipient may be in, most specific source first."""
    own = zone_named(contact_zone)
    if own is not None:
        return [own]
    if rules.zone_override is not None:
        return [rules.zone_override]
    country, names = number_facts(phone)
    if country is not None and country in rules.country_zones:
        return [rules.country_zones[country]]
    zones = [z for z in (zone_named(n) for n in names) if z is not None]
    return zones or [rules.zone]


def reminder_time(
    fields: dict[str, Any], relative: Relative, zone: ZoneInfo
) -> tuple[datetime | None, str | None]:
    """(send time, None) or (None, why not): the field's time plus the offset.

    The field holds ISO 8601 (``2026-12-01 14:30``, ``...T14:30+01:00``, ``...Z``) or Unix
    seconds; a time without an offset is the recipient's local time (a bare date is its
    midnight).
    """
    raw = fields.get(relative.field)
    if raw is None or str(raw).strip() == "":
        return None, f"{relative.field}: empty, no time to remind of"
    try:
        text = str(raw).strip()
        # Nine or more digits are Unix seconds; "20260605" is an ISO 8601 date.
        if isinstance(raw, int | float) or (text.isdigit() and len(text) >= 9):
            at = datetime.fromtimestamp(float(raw), UTC)
        else:
            at = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None, f"{relative.field}: {str(raw)[:40]!r} is not a date and time"
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone)
    return at.astimezone(UTC) + relative.offset, None


def plan_message(
    rules: PlanRules,
    phone: str,
    fields: dict[str, Any],
    contact_zone: str | None,
    occurrence: datetime,
    *,
    now: datetime,
    expires_at: datetime | None = None,
) -> SendPlan:
    """The plan for one recipient of a run expanded at ``now``."""
    zones = recipient_zones(phone, contact_zone, rules)
    due = max(now, as_utc(occurrence) or now)
    if rules.relative is not None:
        at, why = reminder_time(fields, rules.relative, zones[0])
        if at is None:
            return SendPlan(skip_reason=why)
        if at < now - REMINDER_GRACE:
            return SendPlan(skip_reason=f"reminder time {at.isoformat()} has passed")
        due = max(at, now)
    if rules.window is not None:
        due = next_common_opening(rules.window, due, zones)
    if due <= now:
        return SendPlan()
    past_deadline = expires_at is not None and due > expires_at
    if (
        rules.handover_after is not None
        and due - now > rules.handover_after
        and not past_deadline  # held here, it expires rather than going out late
    ):
        return SendPlan(provider_schedule=math.ceil(due.timestamp()))
    return SendPlan(not_before=due)


def make_planner(
    rules: PlanRules, *, now: datetime, expires_at: datetime | None = None
) -> Planner | None:
    """A ``Planner`` for ``expand_run``; None when the campaign needs no per-recipient plan."""
    if not rules.needed:
        return None

    def planner(
        phone: str, fields: dict[str, Any], contact_zone: str | None, occurrence: datetime
    ) -> SendPlan:
        return plan_message(
            rules, phone, fields, contact_zone, occurrence, now=now, expires_at=expires_at
        )

    return planner

"""Send windows (quiet hours) in a recipient's local time.

A window is open from ``start`` to ``end`` on ``days`` (0 = Monday). An ``end`` earlier
than ``start`` runs past midnight (the day is the day it opened); ``start == end`` is
refused (a definition reports it as ``schedule.window.end: must differ from start``): a
window of no length reads as a typo more than as "all day". A recipient whose number
maps to several zones is messaged only when the window is open in every one of them, so
nobody gets a message at night.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from scheduler.occurrences import to_utc

ALL_DAYS = frozenset(range(7))


@dataclass(frozen=True)
class Window:
    """Local hours during which messages may go out."""

    start: time
    end: time
    days: frozenset[int] = ALL_DAYS

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("schedule.window.end: must differ from start")

    def is_open(self, instant: datetime, zone: ZoneInfo) -> bool:
        local = instant.astimezone(zone)
        clock, day = local.time().replace(tzinfo=None), local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= clock < self.end
        # Past midnight: open from start on an allowed day until end the next morning.
        return (day in self.days and clock >= self.start) or (
            (day - 1) % 7 in self.days and clock < self.end
        )

    def next_opening(self, instant: datetime, zone: ZoneInfo) -> datetime:
        """``instant`` if the window is open then, else when it next opens (UTC)."""
        if self.is_open(instant, zone):
            return instant
        if not self.days:
            raise ValueError("schedule.window.days: no day is allowed")
        local_day = instant.astimezone(zone).date()
        for ahead in range(9):
            day = local_day + timedelta(days=ahead)
            if day.weekday() not in self.days:
                continue
            opening = to_utc(datetime.combine(day, self.start), zone)
            if opening >= instant:
                return opening
        raise AssertionError("a window with allowed days opens within a week")


def next_common_opening(window: Window, instant: datetime, zones: Sequence[ZoneInfo]) -> datetime:
    """See ``_common_opening``; cached, since most recipients of a run share the answer."""
    return _common_opening(window, instant, tuple(zones))


@lru_cache(maxsize=8192)
def _common_opening(window: Window, instant: datetime, zones: tuple[ZoneInfo, ...]) -> datetime:
    """The first instant at or after ``instant`` when the window is open in all ``zones``.

    Zones whose windows never overlap (e.g. 12 hours apart with a short window) fall
    back to the first zone alone rather than deferring forever.
    """
    instant = instant.astimezone(UTC)
    candidate = instant
    for _ in range(32):
        later = max(window.next_opening(candidate, zone) for zone in zones)
        if later == candidate:
            return candidate
        candidate = later
    return window.next_opening(instant, zones[0])

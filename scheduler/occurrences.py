"""When a scheduled campaign's runs are due: send_at and cron occurrences in a time zone.

Cron expressions are evaluated on the campaign's local wall clock (croniter on naive
local times) and each wall time is then placed in UTC with zoneinfo, which gives the
DST rules (see docs/scheduling.md):

- a wall time that does not exist (the spring-forward gap, e.g. 02:30) fires once, at the
  same distance past the jump (03:30 local), as zoneinfo maps it;
- a wall time that exists twice (the fall-back hour) fires once, at its first instance.

``due`` decides which occurrences fire at ``now`` given the last one already handled,
applying catch_up (latest | none | all) to occurrences missed while the scheduler was down.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter

CatchUp = Literal["latest", "none", "all"]
Overlap = Literal["skip", "queue"]

# An occurrence found later than this after its time was missed (the scheduler was down
# or the campaign paused), rather than fired by a slightly late tick.
MISSED_AFTER = timedelta(seconds=60)
# At most this many occurrences are fired by one tick under catch_up: all; the rest
# follow on the next ticks (each tick starts after the last run created).
MAX_PER_TICK = 500


def to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time as an aware UTC instant (fold=0: first instance, gap shifted)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def to_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """An aware instant as a naive local wall time in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta | None:
    return instant.astimezone(zone).utcoffset()


def until_instant(until: date | datetime | None, zone: ZoneInfo) -> datetime | None:
    """``until`` as the last instant allowed: a date includes its whole local day."""
    if until is None:
        return None
    if isinstance(until, datetime):
        if until.tzinfo is None:
            return to_utc(until, zone)
        return until.astimezone(UTC)
    next_day = datetime.combine(until + timedelta(days=1), time())
    return to_utc(next_day, zone) - timedelta(microseconds=1)


@dataclass(frozen=True)
class DueOccurrences:
    """What one tick does for one campaign: runs to create, and missed ones left out."""

    fire: list[datetime] = field(default_factory=list)
    dropped: int = 0


@dataclass(frozen=True)
class Recurrence:
    """A campaign's timing: one ``send_at`` or a ``cron`` in ``zone``, optionally ``until``."""

    zone: ZoneInfo
    cron: str | None = None
    send_at: datetime | None = None  # aware
    until: datetime | None = None  # aware; the last instant an occurrence may have
    catch_up: CatchUp = "latest"
    overlap: Overlap = "skip"
    # First occurrence after a given instant, remembered: a tick asks the same question
    # every second, and expanding a cron expression is the costly part.
    _next: dict[datetime | None, datetime | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.send_at is None):
            raise ValueError("schedule: exactly one of send_at and cron is needed")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"schedule.cron: {self.cron!r} is not a valid cron expression")

    def after(self, start: datetime | None) -> Iterator[datetime]:
        """Occurrences strictly after ``start`` (None: from the beginning), in UTC, ascending."""
        if self.send_at is not None:
            at = self.send_at.astimezone(UTC)
            if (start is None or at > start) and self._allowed(at):
                yield at
            return
        assert self.cron is not None and start is not None
        wall = to_wall(start, self.zone)
        if _offset(start, self.zone) != _offset(start - timedelta(hours=1), self.zone):
            # Just after a clock change: wall times in a skipped gap before ``start`` land
            # after it, so look back an hour; those at or before ``start`` are dropped below.
            wall -= timedelta(hours=1)
        it = croniter(self.cron, wall)
        previous: datetime | None = None
        while True:
            at = to_utc(it.get_next(datetime), self.zone)
            if not self._allowed(at):
                return
            # Two wall times can land on one instant (a gap time and the time it is shifted
            # to): one occurrence.
            if at > start and (previous is None or at > previous):
                previous = at
                yield at

    def latest_at_or_before(self, now: datetime) -> datetime | None:
        """The last occurrence at or before ``now`` (cron only; None if there is none)."""
        if self.send_at is not None:
            at = self.send_at.astimezone(UTC)
            return at if at <= now else None
        assert self.cron is not None
        local = now.astimezone(self.zone)
        # In the repeated fall-back hour the wall clock has gone back: occurrences of the
        # first pass lie ahead of it on the wall, so start an hour later and step back.
        ahead = timedelta(hours=1, seconds=1) if local.fold else timedelta(seconds=1)
        it = croniter(self.cron, local.replace(tzinfo=None) + ahead)
        for _ in range(4000):
            at = to_utc(it.get_prev(datetime), self.zone)
            if at <= now:
                return at
        return None

    def next_after(self, instant: datetime | None) -> datetime | None:
        if instant not in self._next:
            if len(self._next) > 64:
                self._next.clear()
            self._next[instant] = next(self.after(instant), None)
        return self._next[instant]

    def upcoming(self, start: datetime, count: int) -> list[datetime]:
        out = []
        for at in self.after(start):
            out.append(at)
            if len(out) >= count:
                break
        return out

    def due(self, last: datetime | None, started_at: datetime, now: datetime) -> DueOccurrences:
        """Occurrences to fire at ``now``; ``last`` is the latest one already handled.

        A cron campaign's first occurrence is the first one after it was started; a
        send_at campaign's single occurrence counts even if it lies before the start.
        """
        floor = last if last is not None else (None if self.send_at else started_at)
        upcoming = self.next_after(floor)
        if upcoming is None or upcoming > now:
            return DueOccurrences()
        if self.catch_up == "all":
            fire: list[datetime] = []
            for at in self.after(floor):
                if at > now or len(fire) >= MAX_PER_TICK:
                    break
                fire.append(at)
            return DueOccurrences(fire=fire)
        bound = now if self.until is None else min(now, self.until)
        latest = self.latest_at_or_before(bound)
        if latest is not None and floor is not None and latest <= floor:
            latest = None
        if latest is None:
            return DueOccurrences()
        on_time = now - latest <= MISSED_AFTER
        if self.catch_up == "none" and not on_time:
            return DueOccurrences(dropped=1)
        return DueOccurrences(fire=[latest])

    def finished(self, last: datetime | None, now: datetime) -> bool:
        """True once nothing is left to fire after ``last`` (the latest occurrence handled);
        called after ``due``, so a send_at in the past without a run was dropped."""
        if self.send_at is not None:
            return last is not None or self.send_at < now
        if self.until is None:
            return False
        return now > self.until or self.next_after(last or now) is None

    def _allowed(self, at: datetime) -> bool:
        return self.until is None or at <= self.until

"""The canary: a run sends a first slice of its recipients, waits, and goes on only if
that slice's failure rate stays at or under the definition's ``max_failure_rate``.

A message of the slice has failed when the provider refused it (its status) or its
delivery receipt said so (``delivery_status`` failed). The wait gives receipts time to
arrive. Over the rate, the campaign pauses with the numbers; ``campaign resume`` sends
the rest anyway (the person resuming has seen them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns.clock import as_utc
from campaigns.definition import CampaignDefinition, Canary
from campaigns.models import Message, Run
from campaigns.runs import pause_campaign

# How long a run in its canary wait asks to be looked at again while messages of the
# slice are still without an outcome.
SETTLE_POLL_SECONDS = 1.0
FAILED_RECEIPTS = ("failed",)


@dataclass(frozen=True)
class Gate:
    """What a dispatch may do now: claim at most ``limit`` (None: no limit), or wait
    ``wait`` seconds, or stop (the canary failed and the campaign is paused)."""

    limit: int | None = None
    wait: float | None = None
    stop: bool = False


@dataclass(frozen=True)
class Verdict:
    attempted: int
    failed: int
    rate: float
    allowed: float

    def reason(self) -> str:
        return (
            f"canary: {self.failed} of {self.attempted} messages failed "
            f"({self.rate:.1%}), more than the {self.allowed:.1%} allowed; "
            "resume to send the rest anyway"
        )


def _count(session: Session, *where: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).select_from(Message).where(*where)) or 0)


def _slice_size(session: Session, run: Run, canary: Canary) -> int | None:
    """Recipients in the slice; None while a percentage cannot be known yet (the run is
    still being expanded)."""
    if isinstance(canary.first, int):
        return canary.first
    if run.expanded_at is None:
        return None
    sendable = _count(
        session,
        Message.run_id == run.id,
        or_(
            Message.status.in_(("pending", "claimed", "unknown", "sent")),
            Message.attempted_at.is_not(None),
        ),
    )
    return canary.slice_size(sendable)


def judge(session: Session, run_id: int, canary: Canary) -> Verdict:
    # The slice's messages with an outcome: a row claimed and given back (a 429, a
    # frequency-cap deferral) has no outcome to judge.
    attempted_rows = (
        Message.run_id == run_id,
        Message.attempted_at.is_not(None),
        Message.status.in_(("sent", "failed")),
    )
    attempted = _count(session, *attempted_rows)
    failed = _count(
        session,
        *attempted_rows,
        or_(Message.status == "failed", Message.delivery_status.in_(FAILED_RECEIPTS)),
    )
    rate = failed / attempted if attempted else 0.0
    return Verdict(attempted, failed, rate, canary.max_failure_rate)


def _set(session: Session, run_id: int, **values: object) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(**values))


def gate(
    session: Session, run: Run, defn: CampaignDefinition, now: datetime, expansion_poll: float
) -> Gate:
    """Called before each claim of a sending run."""
    canary = defn.canary
    if canary is None or run.canary_state == "passed":
        return Gate()
    if run.canary_state == "failed":
        # The run is sending again, so someone resumed it after the canary paused it.
        _set(session, run.id, canary_state="passed")
        session.commit()
        return Gate()
    size = _slice_size(session, run, canary)
    if size is None:
        return Gate(wait=expansion_poll)
    if run.canary_state in (None, "sending"):
        # Written before counting and held until the caller commits its claim: two
        # workers cannot both see the slice unfilled and claim it twice over (a row lock
        # on PostgreSQL, the write lock on SQLite).
        _set(session, run.id, canary_state="sending")
        # Claimed rows count: their request may be about to leave (it marks only the
        # claim's row), and a second worker must not claim the slice again meanwhile.
        attempted = _count(
            session,
            Message.run_id == run.id,
            or_(Message.attempted_at.is_not(None), Message.status == "claimed"),
        )
        if attempted < size:
            # Only the slice's remaining recipients; when none are due (a send window),
            # the claim finds none and the run waits as usual.
            return Gate(limit=size - attempted)
    if run.canary_state != "waiting":
        _set(session, run.id, canary_state="waiting", canary_until=now + canary.wait)
        session.commit()
        return Gate(wait=canary.wait.total_seconds())
    until = as_utc(run.canary_until) or now
    if now < until:
        return Gate(wait=(until - now).total_seconds())
    unsettled = _count(
        session, Message.run_id == run.id, Message.status.in_(("claimed", "unknown"))
    )
    if unsettled:
        return Gate(wait=SETTLE_POLL_SECONDS)
    verdict = judge(session, run.id, canary)
    if verdict.rate > canary.max_failure_rate:
        _set(session, run.id, canary_state="failed")
        pause_campaign(session, run.campaign_id, reason=verdict.reason())
        session.commit()
        return Gate(stop=True)
    _set(session, run.id, canary_state="passed")
    session.commit()
    return Gate()

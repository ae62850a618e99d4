"""The lease of a run's expansion: at most one expansion writes a run, and one that died
is replaced within seconds.

An expansion takes the lease when it starts (``expansion_lease``) and renews it with every
chunk it writes (``renew``); a renewal that finds the lease taken by another expansion
tells the writer to stop. A kick (``campaign start``, ``resume``, the scheduler's tick)
hands a run to an expansion only when no lease holds (``kick``), and the lease it leaves
promises that the enqueued expansion starts soon: if its task was lost, the next tick
kicks again once the promise has passed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from campaigns.clock import db_now
from campaigns.models import Run

log = logging.getLogger(__name__)

# A chunk takes well under a second; a lease this long unrenewed means its expansion died
# (or stalled: the one that takes over makes the stalled one stop at its next chunk).
LEASE_SECONDS = 5.0
# Steps that write no chunk for a while (statistics refreshed before the first chunk and
# after the last, a template fetched) are covered by a longer lease; syncing a ClickSend
# list, page after page at the account's rate limit, by a longer one still.
STEP_SECONDS = 30.0
SYNC_SECONDS = 600.0
# A kick promises that the expansion it enqueued starts within this long.
START_SECONDS = 10.0

EXPANSION_STATUSES = ("scheduled", "expanding")


def free(now: datetime) -> ColumnElement[bool]:
    """No expansion holds the run's lease (nor was promised one) at ``now``."""
    return or_(Run.expansion_until.is_(None), Run.expansion_until < now)


def kick(session: Session, run_id: int, now: datetime | None = None) -> bool:
    """Promise the run an expansion if no lease holds; True: the caller enqueues one."""
    now = now or db_now(session)
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(EXPANSION_STATUSES), free(now))
        .values(expansion_owner=None, expansion_until=now + timedelta(seconds=START_SECONDS))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, run_id: int, seconds: float = STEP_SECONDS) -> str | None:
    """Take the run's lease: free, or promised by a kick and not yet taken. Returns the
    owner's token, or None when another expansion holds it."""
    now = db_now(session)
    owner = uuid.uuid4().hex
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, or_(Run.expansion_owner.is_(None), free(now)))
        .values(expansion_owner=owner, expansion_until=now + timedelta(seconds=seconds))
    )
    return owner if result.rowcount else None  # type: ignore[attr-defined]


def renew(session: Session, run_id: int, owner: str, seconds: float = LEASE_SECONDS) -> bool:
    """Extend the lease (and mark the run's activity); False: it is no longer ours."""
    now = db_now(session)
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.expansion_owner == owner)
        .values(last_activity_at=now, expansion_until=now + timedelta(seconds=seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, run_id: int, owner: str) -> None:
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.expansion_owner == owner)
        .values(expansion_owner=None, expansion_until=None)
    )


@contextmanager
def expansion_lease(session: Session, run_id: int) -> Iterator[str | None]:
    """Hold the run's lease for the block (None: another expansion holds it). Released
    at the end, also when the expansion fails, so the next kick need not wait it out."""
    owner = claim(session, run_id)
    session.commit()
    try:
        yield owner
    finally:
        if owner is not None:
            try:
                session.rollback()  # whatever the block left half done
                release(session, run_id, owner)
                session.commit()
            except SQLAlchemyError:  # the database is gone: the lease runs out instead
                log.warning("run %s: expansion lease not released", run_id, exc_info=True)

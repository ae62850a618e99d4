"""Counts of a run for the pages that show them, kept fresh in the background.

A page must not count a million rows in the request. By status, PostgreSQL keeps a run's
totals as it goes (``campaigns.stats``), but SQLite counts the rows, and the delivery
receipts and the failures by reason are counted from the messages everywhere. So a page gets
the last counts at once, and a stale entry of an active run is recounted by one background
thread; a finished run's counts never change and are kept. The active runs are counted once
when the app starts; a run first looked at later (a finished one, a new one) is counted in
that request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import stats
from campaigns.db import session_scope
from campaigns.models import MESSAGE_STATUSES, Contact, Message, Run
from campaigns.stats import status_counts

FINAL_RUN_STATUSES = ("completed", "cancelled", "failed", "skipped")
ACTIVE_RUN_STATUSES = ("expanding", "sending", "paused")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counted:
    counts: dict[str, int]  # every message status, and 'delivered'/'undelivered' receipts
    failures: list[tuple[str, int]]  # (reason, messages), most common first
    at: float  # time.monotonic() when counted
    final: bool


class RunCounts:
    def __init__(self, database_url: str, max_age: float = 1.0, max_runs: int = 1000) -> None:
        self.database_url = database_url
        self.max_age = max_age
        self.max_runs = max_runs
        self._cache: dict[int, Counted] = {}
        self._refreshing: set[int] = set()
        self._lock = threading.Lock()
        self._counted = threading.Condition(self._lock)

    def get(self, run_id: int, run_status: str | None = None) -> dict[str, int]:
        return self.entry(run_id, run_status).counts

    def failures(self, run_id: int, run_status: str | None = None) -> list[tuple[str, int]]:
        """The run's failures by reason (failed, skipped, expired), as fresh as its counts."""
        return self.entry(run_id, run_status).failures

    def entry(self, run_id: int, run_status: str | None = None) -> Counted:
        """Counts of every status (zeros included) and of 'delivered' and 'undelivered'
        receipts, at most ``max_age`` s old but for a recount under way. A run that
        ``run_status`` says has ended is counted here once, so its final numbers show with
        its final status."""
        with self._lock:
            entry = self._cache.get(run_id)
            while entry is None and run_id in self._refreshing:
                # Being counted already (the warm-up): wait for that count, not a second one.
                self._counted.wait(timeout=10)
                entry = self._cache.get(run_id)
            if entry is not None and not entry.final and run_status in FINAL_RUN_STATUSES:
                entry = None
            stale = entry is None or (
                not entry.final and time.monotonic() - entry.at > self.max_age
            )
            start = entry is not None and stale and run_id not in self._refreshing
            if start:
                self._refreshing.add(run_id)
        if entry is None:
            return self._count(run_id)
        if start:
            threading.Thread(target=self._refresh, args=(run_id,), daemon=True).start()
        return entry

    def forget(self, run_id: int) -> None:
        """Recount at the next look (after the user paused, resumed or cancelled); that
        look still gets the last counts at once."""
        with self._lock:
            entry = self._cache.get(run_id)
            if entry is not None:
                self._cache[run_id] = Counted(entry.counts, entry.failures, 0.0, False)

    def warm(self) -> None:
        """Count the active runs in the background, so their first view is quick too."""
        threading.Thread(target=self._warm, daemon=True).start()

    def _warm(self) -> None:
        try:
            with session_scope(self.database_url) as session:
                run_ids = list(
                    session.scalars(
                        select(Run.id)
                        .where(Run.status.in_(ACTIVE_RUN_STATUSES))
                        .order_by(Run.id.desc())
                        .limit(50)
                    )
                )
        except Exception:  # no database yet: pages count on first view instead
            log.warning("dashboard: could not read the active runs to count", exc_info=True)
            return
        for run_id in run_ids:
            with self._lock:
                if run_id in self._cache or run_id in self._refreshing:
                    continue
                self._refreshing.add(run_id)
            self._refresh(run_id)

    def _refresh(self, run_id: int) -> None:
        try:
            self._count(run_id)
        except Exception:  # the next look counts again
            log.warning("dashboard: counting run %s failed", run_id, exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(run_id)
                self._counted.notify_all()

    def _count(self, run_id: int) -> Counted:
        with session_scope(self.database_url) as session:
            status = session.scalar(select(Run.status).where(Run.id == run_id))
            counts = {s: 0 for s in MESSAGE_STATUSES} | status_counts(session, run_id)
            counts |= delivery_counts(session, run_id)
            failures = failure_reasons(session, run_id)
        entry = Counted(counts, failures, time.monotonic(), status in FINAL_RUN_STATUSES)
        with self._lock:
            if len(self._cache) >= self.max_runs:
                self._cache.pop(next(iter(self._cache)))
            self._cache[run_id] = entry
        return entry


def delivery_counts(session: Session, run_id: int) -> dict[str, int]:
    """Delivered and undelivered receipts among a run's sent messages (the rule of which
    receipt counts as which lives in ``campaigns.stats``)."""
    delivered, undelivered = stats.delivery_counts(session, run_id)
    return {"delivered": delivered, "undelivered": undelivered}


FAILED = ("failed", "skipped", "expired")


def failure_reasons(session: Session, run_id: int, limit: int = 20) -> list[tuple[str, int]]:
    return [
        (str(reason or "(no reason)"), int(n))
        for reason, n in session.execute(
            select(Message.error, func.count())
            .where(Message.run_id == run_id, Message.status.in_(FAILED))
            .group_by(Message.error)
            .order_by(func.count().desc())
            .limit(limit)
        )
    ]


class ListCounts:
    """Contacts per list: one count over the (list_id, phone) index, a million entries for a
    million contacts, so it is kept like the runs' counts (at most ``max_age`` s old, the
    recount in the background) and redone in the request after an import through the page.
    """

    def __init__(self, database_url: str, max_age: float = 5.0) -> None:
        self.database_url = database_url
        self.max_age = max_age
        self._counts: dict[int, int] | None = None
        self._at = 0.0
        self._refreshing = False
        self._lock = threading.Lock()

    def get(self) -> dict[int, int]:
        with self._lock:
            counts = self._counts
            start = (
                counts is not None
                and time.monotonic() - self._at > self.max_age
                and not self._refreshing
            )
            if start:
                self._refreshing = True
        if counts is None:
            return self._count()
        if start:
            threading.Thread(target=self._refresh, daemon=True).start()
        return counts

    def forget(self) -> None:
        with self._lock:
            self._counts = None

    def warm(self) -> None:
        threading.Thread(target=self._refresh, daemon=True).start()

    def _refresh(self) -> None:
        try:
            self._count()
        except Exception:  # no database yet, or it blinked: the next look counts again
            log.warning("dashboard: counting the lists' contacts failed", exc_info=True)
        finally:
            with self._lock:
                self._refreshing = False

    def _count(self) -> dict[int, int]:
        with session_scope(self.database_url) as session:
            counts = {
                int(list_id): int(n)
                for list_id, n in session.execute(
                    select(Contact.list_id, func.count()).group_by(Contact.list_id)
                )
            }
        with self._lock:
            self._counts, self._at = counts, time.monotonic()
        return counts

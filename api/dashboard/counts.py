"""Counts by status of a run, kept fresh in the background for the pages that show them.

Counting a million rows by status reads a million index entries (about 190 ms on the
project's machine), too slow to do on every page load and every refresh of a live page.
So a page gets the last counts at once, and a stale entry of an active run is recounted
by one background thread; a finished run's counts never change and are kept. The first
view of a run since this process started counts in the request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.db import session_scope
from campaigns.models import MESSAGE_STATUSES, Message, Run
from campaigns.stats import status_counts

FINAL_RUN_STATUSES = ("completed", "cancelled", "failed", "skipped")


@dataclass(frozen=True)
class Counted:
    counts: dict[str, int]  # every message status, and 'delivered'/'undelivered' receipts
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

    def get(self, run_id: int, run_status: str | None = None) -> dict[str, int]:
        """Counts of every status (zeros included) and of 'delivered' and 'undelivered'
        receipts, at most ``max_age`` s old but for a recount under way. A run that
        ``run_status`` says has ended is counted here once, so its final numbers show with
        its final status."""
        with self._lock:
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
            return self._count(run_id).counts
        if start:
            threading.Thread(target=self._refresh, args=(run_id,), daemon=True).start()
        return entry.counts

    def forget(self, run_id: int) -> None:
        """Count again at the next look (after the user paused, resumed or cancelled)."""
        with self._lock:
            self._cache.pop(run_id, None)

    def _refresh(self, run_id: int) -> None:
        try:
            self._count(run_id)
        finally:
            with self._lock:
                self._refreshing.discard(run_id)

    def _count(self, run_id: int) -> Counted:
        with session_scope(self.database_url) as session:
            status = session.scalar(select(Run.status).where(Run.id == run_id))
            counts = {s: 0 for s in MESSAGE_STATUSES} | status_counts(session, run_id)
            counts |= delivery_counts(session, run_id)
        entry = Counted(counts, time.monotonic(), status in FINAL_RUN_STATUSES)
        with self._lock:
            if len(self._cache) >= self.max_runs:
                self._cache.pop(next(iter(self._cache)))
            self._cache[run_id] = entry
        return entry


def delivery_counts(session: Session, run_id: int) -> dict[str, int]:
    """Delivered and undelivered receipts among a run's sent messages."""
    delivered = undelivered = 0
    for status, n in session.execute(
        select(Message.delivery_status, func.count())
        .where(
            Message.run_id == run_id,
            Message.status == "sent",
            Message.delivery_status.is_not(None),
        )
        .group_by(Message.delivery_status)
    ):
        if str(status).lower() == "delivered":
            delivered += int(n)
        else:
            undelivered += int(n)
    return {"delivered": delivered, "undelivered": undelivered}

"""`clarion scheduler`: Celery beat with Clarion's schedule, run by one leader at a time.

The schedule is short: the tick (due runs, recovery) every few seconds. The tick's work
runs in a worker as a plain function (``scheduler.tick``). Any number of beats may be
started; ``LeaderScheduler`` sends tasks only while it holds the leader lock
(``scheduler.lock``), so a standby takes over within seconds when the leader dies.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.beat import Scheduler

from config.settings import get_settings
from scheduler.lock import LEASE_SECONDS, LeaderLock, leader_lock
from workers.app import app

log = logging.getLogger(__name__)


def beat_schedule() -> dict[str, dict[str, object]]:
    settings = get_settings()
    every = settings.scheduler_tick_seconds
    return {
        "clarion-tick": {
            "task": "clarion.tick",
            "schedule": every,
            # A tick nobody ran in time is worthless (the next one does the same work):
            # drop it rather than let a backlog pile up while no worker is running.
            "options": {"expires": max(5.0, 3 * every)},
        },
        # STOP replies must be honoured before the next run starts; receipts are for
        # reporting only and can be slower.
        "clarion-inbound": {
            "task": "clarion.poll_inbound",
            "schedule": settings.inbound_poll_seconds,
            "options": {"expires": settings.inbound_poll_seconds},
        },
        "clarion-housekeeping": {
            "task": "clarion.housekeeping",
            "schedule": 30.0,
            "options": {"expires": 30.0},
        },
        "clarion-receipts": {
            "task": "clarion.poll_receipts",
            "schedule": settings.receipts_poll_seconds,
            "options": {"expires": settings.receipts_poll_seconds},
        },
    }


class LeaderScheduler(Scheduler):
    """Beat's in-memory scheduler that sends due entries only while it leads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lock: LeaderLock = leader_lock(get_settings())
        self.leading = False
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        # Renew often enough that a slow pass never lets the lease lapse.
        renew_every = min(get_settings().scheduler_tick_seconds, LEASE_SECONDS / 3)
        if not self.lock.hold():
            if self.leading:
                log.warning("scheduler: lost the leader lock; standing by")
            self.leading = False
            return renew_every
        if not self.leading:
            log.warning("scheduler: this process is now the leader")
            self.leading = True
        interval = float(super().tick(*args, **kwargs))
        return min(interval, renew_every)

    def close(self) -> None:
        self.lock.release()
        super().close()


def run_beat(loglevel: str = "INFO") -> None:
    app.conf.beat_schedule = beat_schedule()
    # In-memory entries (short intervals, nothing worth persisting, no schedule file to
    # share or lose between restarts), gated by the leader lock.
    app.Beat(loglevel=loglevel, scheduler="workers.beat:LeaderScheduler").run()

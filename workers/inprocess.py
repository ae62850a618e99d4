"""A Celery worker running in a thread of this process (the embedded mode).

The solo pool on the in-memory transport is the combination that keeps up here (the
threads pool and fakeredis stall); see docs/architecture.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from celery.worker import WorkController
from celery.worker import state as worker_state


class _ThreadWorker(WorkController):
    """A WorkController that tells us when its consumer is ready."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


@contextmanager
def inprocess_worker(app: Celery, loglevel: str = "WARNING") -> Iterator[WorkController]:
    app.finalize()
    app.set_current()
    worker = _ThreadWorker(
        app=app,
        concurrency=1,
        pool="solo",
        loglevel=loglevel,
        hostname="embedded@localhost",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
    thread.start()
    if not worker.ready.wait(30):
        raise RuntimeError("the in-process Celery worker did not start within 30 s")
    try:
        yield worker
    finally:
        # How celery's own embedded test worker stops its thread: the solo pool's loop
        # checks this flag.
        worker_state.should_terminate = 0  # type: ignore[assignment]
        thread.join(15)
        worker_state.should_terminate = None

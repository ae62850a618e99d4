"""Prometheus metrics of the workers: the rate limiter's waits and the batches' results.

Provider requests are counted by the client itself (``clicksend.metrics``); what the
database knows (messages by status, queue depth, progress) is read at scrape time by
``api.metrics``. A worker process serves its own registry on ``CLARION_METRICS_PORT``
plus its pool index (see docs/metrics.md), so counters never need to cross processes.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init
from prometheus_client import Counter, Histogram, start_http_server

from config.settings import get_settings
from workers.ratelimit import RateLimiter

log = logging.getLogger(__name__)

LIMITER_WAIT = Histogram(
    "clarion_limiter_wait_seconds",
    "How long the rate limiter asked a batch to wait for its turn (0: at once)",
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0),
)
DISPATCHED = Counter(
    "clarion_dispatched_messages",
    "Messages whose batch this process sent and recorded, by result",
    ["result"],
)


class MeteredLimiter:
    """A limiter that records each wait it hands out; everything else passes through."""

    def __init__(self, inner: RateLimiter) -> None:
        self.inner = inner

    def acquire(self, messages: int) -> float:
        wait = self.inner.acquire(messages)
        LIMITER_WAIT.observe(max(wait, 0.0))
        return wait

    def acquire_spare(self) -> float:
        return self.inner.acquire_spare()

    def penalise(self, retry_after: float | None) -> float:
        return self.inner.penalise(retry_after)

    def stats(self) -> dict[str, float]:
        return self.inner.stats()

    def __repr__(self) -> str:
        return f"MeteredLimiter({self.inner!r})"


def dispatched(sent: int, failed: int) -> None:
    if sent:
        DISPATCHED.labels("sent").inc(sent)
    if failed:
        DISPATCHED.labels("failed").inc(failed)


def serve_worker_metrics(port: int, index: int) -> int | None:
    """Serve this process's metrics on ``port + index``; None when off or taken."""
    if port <= 0:
        return None
    try:
        start_http_server(port + index, addr="0.0.0.0")
    except OSError as exc:  # a port already taken must not stop the worker from sending
        log.warning("metrics: port %d not available (%s); not scraped", port + index, exc)
        return None
    return port + index


@worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    # billiard gives each prefork pool process a stable index (0..concurrency-1), reused
    # when a process is replaced, so the scrape targets stay the same.
    from billiard.process import current_process

    index = int(getattr(current_process(), "index", 0) or 0)
    serve_worker_metrics(get_settings().metrics_port, index)

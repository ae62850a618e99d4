"""``/metrics`` in Prometheus' text format.

Counters of what this process did (provider requests, latency, 429s, limiter waits,
dispatched messages) come from ``clicksend.metrics`` and ``workers.metrics``; in
`clarion serve` the worker runs in this process, so they are here too. What the database
knows is read at scrape time by ``DatabaseCollector``, so every replica of `clarion api`
reports the same numbers and nothing has to be kept in step:

- messages by channel and status, over every run (a finished run's counts never change
  again, so they are read once and remembered);
- per active run (expanding, sending, paused): messages by status, pending rows (the
  queue depth), progress, 429s seen;
- the rate limiter's current factor and block.

Every query is a count on the (run_id, status, id) index or a read of the small runs table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import require_token
from campaigns.db import session_scope
from campaigns.models import Campaign, Run
from campaigns.stats import status_counts
from config.settings import Settings

log = logging.getLogger(__name__)

ACTIVE_RUN_STATUSES = ("expanding", "sending", "paused")
FINAL_RUN_STATUSES = ("completed", "cancelled", "failed", "skipped")
QUEUED = ("pending", "claimed", "unknown")

LimiterStats = Callable[[], dict[str, float] | None]


class DatabaseCollector(Collector):
    def __init__(self, database_url: str, limiter_stats: LimiterStats | None = None) -> None:
        self.database_url = database_url
        self.limiter_stats = limiter_stats
        self._final: dict[int, tuple[str, dict[str, int]]] = {}  # run id -> channel, counts
        self._lock = threading.Lock()

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected only at scrape time, never when registering

    def collect(self) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "clarion_messages",
            "Messages by channel and status, every run",
            labels=["channel", "status"],
        )
        run_messages = GaugeMetricFamily(
            "clarion_run_messages",
            "Messages of an active run by status",
            labels=["run", "campaign", "status"],
        )
        pending = GaugeMetricFamily(
            "clarion_run_pending",
            "Messages of an active run still to send (pending, claimed, unknown): queue depth",
            labels=["run", "campaign"],
        )
        progress = GaugeMetricFamily(
            "clarion_run_progress_ratio",
            "Share of an active run's messages that reached a final status",
            labels=["run", "campaign"],
        )
        limited = GaugeMetricFamily(
            "clarion_run_rate_limited",
            "429 answers seen by an active run",
            labels=["run", "campaign"],
        )
        totals: dict[tuple[str, str], int] = {}
        with session_scope(self.database_url) as session, self._lock:
            for run_id, campaign_id, channel, status, rate_limited in self._runs(session):
                if status in FINAL_RUN_STATUSES and run_id in self._final:
                    counts = self._final[run_id][1]
                else:
                    counts = status_counts(session, run_id)
                    if status in FINAL_RUN_STATUSES:
                        self._final[run_id] = (channel, counts)
                for key, n in counts.items():
                    totals[(channel, key)] = totals.get((channel, key), 0) + n
                if status not in ACTIVE_RUN_STATUSES:
                    continue
                labels = [str(run_id), str(campaign_id)]
                for key, n in counts.items():
                    run_messages.add_metric([*labels, key], n)
                queued = sum(counts.get(s, 0) for s in QUEUED)
                total = sum(counts.values())
                pending.add_metric(labels, queued)
                progress.add_metric(labels, (total - queued) / total if total else 0.0)
                limited.add_metric(labels, rate_limited)
        for (channel, key), n in sorted(totals.items()):
            messages.add_metric([channel, key], n)
        yield from (messages, run_messages, pending, progress, limited)
        yield from self._limiter()

    def _runs(self, session: Session) -> list[tuple[int, int, str, str, int]]:
        rows = session.execute(
            select(Run.id, Run.campaign_id, Campaign.channel, Run.status, Run.rate_limited)
            .join(Campaign, Campaign.id == Run.campaign_id)
            .where(Run.status != "scheduled")
            .order_by(Run.id)
        )
        return [(int(a), int(b), str(c), str(d), int(e or 0)) for a, b, c, d, e in rows]

    def _limiter(self) -> Iterator[GaugeMetricFamily]:
        if self.limiter_stats is None:
            return
        try:
            stats = self.limiter_stats()
        except Exception as exc:  # a scrape must not fail because Redis blinked
            log.warning("metrics: rate limiter state unavailable: %s", exc)
            return
        if stats is None:
            return
        yield GaugeMetricFamily(
            "clarion_limiter_factor",
            "The adaptive rate limit's current share of the configured rate (1: full)",
            value=stats["factor"],
        )
        yield GaugeMetricFamily(
            "clarion_limiter_blocked_seconds",
            "How much longer every worker waits after a 429",
            value=stats["blocked_for"],
        )
        yield GaugeMetricFamily(
            "clarion_limiter_messages_per_second",
            "The effective message rate the limiter grants now",
            value=stats["messages_per_second"],
        )


def metrics_registry(database_url: str, limiter_stats: LimiterStats | None) -> CollectorRegistry:
    """This process's counters plus the database's gauges, in one registry to expose."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(REGISTRY))
    registry.register(DatabaseCollector(database_url, limiter_stats))
    return registry


class _Forward(Collector):
    """Everything in the default registry (the counters of this process)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.source.collect()  # type: ignore[misc]


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST


def install(app: FastAPI) -> None:
    """``GET /metrics`` on ``app``, behind the API's bearer token like every endpoint."""
    from workers.context import limiter_stats

    settings: Settings = app.state.settings
    registry = metrics_registry(settings.database_url, lambda: limiter_stats(settings))

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(require_token)])
    def metrics() -> Response:
        body, content_type = exposition(registry)
        return Response(body, media_type=content_type)

"""Prometheus metrics: provider requests counted where they are made (over real HTTP to the
sandbox), and the database's gauges read at scrape time agreeing with the tables."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import update

from api.metrics import DatabaseCollector
from campaigns.activity import minutes, record_minute
from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message, Run
from clicksend import metrics as provider_metrics
from clicksend.client import ClickSendClient
from clicksend.errors import ConnectionFailedError, RateLimitedError
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread
from tests.seed import seed_campaign, seed_list, status_counts, us_numbers
from workers.metrics import LIMITER_WAIT, MeteredLimiter
from workers.ratelimit import LocalRateLimiter


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_endpoint_labels_hide_ids() -> None:
    assert provider_metrics.endpoint("POST", "/sms/send") == "POST /sms/send"
    assert provider_metrics.endpoint("PUT", "/sms/7E1A-99/cancel") == "PUT /sms/{id}/cancel"
    assert provider_metrics.endpoint("GET", "/lists/3555278/contacts") == "GET /lists/{id}/contacts"
    assert (
        provider_metrics.endpoint("POST", "/clicksend/v3/sms/send") == "POST /clicksend/v3/sms/send"
    )


def test_provider_requests_latency_and_429s_are_counted() -> None:
    # Two requests' worth of burst, refilled far slower than the test runs: the third is a 429.
    sandbox = start_in_thread(
        SandboxConfig(api_key="metrics-key", rate_limit_rps=0.01, rate_limit_burst=2)
    )
    ok = {"endpoint": "POST /sms/send", "status": "200"}
    limited = {"endpoint": "POST /sms/send", "status": "429"}
    before_ok, before_429 = (
        sample("clarion_provider_requests_total", ok),
        sample("clarion_provider_requests_total", limited),
    )
    before_latency = sample(
        "clarion_provider_request_duration_seconds_count", {"endpoint": "POST /sms/send"}
    )
    before_rl = sample("clarion_provider_rate_limited_total", {"endpoint": "POST /sms/send"})
    try:
        with ClickSendClient(sandbox.base_url, "sandbox", "metrics-key", timeout=10) as client:
            client.send_sms([{"to": "+12015550123", "body": "hi", "source": "t"}])
            client.send_sms([{"to": "+12015550124", "body": "hi", "source": "t"}])
            with pytest.raises(RateLimitedError):
                client.send_sms([{"to": "+12015550125", "body": "hi", "source": "t"}])
    finally:
        sandbox.stop()
    assert sample("clarion_provider_requests_total", ok) - before_ok >= 2
    assert sample("clarion_provider_requests_total", limited) - before_429 == 1
    assert sample("clarion_provider_rate_limited_total", {"endpoint": "POST /sms/send"}) == (
        before_rl + 1
    )
    assert (
        sample("clarion_provider_request_duration_seconds_count", {"endpoint": "POST /sms/send"})
        - before_latency
        >= 3
    )


def test_connection_refused_is_counted_as_never_sent() -> None:
    labels = {"endpoint": "GET /account", "status": "connect_error"}
    before = sample("clarion_provider_requests_total", labels)
    with (
        ClickSendClient("http://127.0.0.1:9/v3", "u", "k", timeout=2) as client,
        pytest.raises(ConnectionFailedError),
    ):
        client.account()
    assert sample("clarion_provider_requests_total", labels) == before + 1


def test_limiter_waits_are_observed() -> None:
    limiter = MeteredLimiter(LocalRateLimiter(requests_per_second=1, messages_per_second=0))
    before = LIMITER_WAIT.collect()[0]
    count_before = next(s.value for s in before.samples if s.name.endswith("_count"))
    sum_before = next(s.value for s in before.samples if s.name.endswith("_sum"))
    assert limiter.acquire(1) == 0  # the burst's one turn
    wait = limiter.acquire(1)
    assert wait > 0.5
    after = LIMITER_WAIT.collect()[0]
    assert next(s.value for s in after.samples if s.name.endswith("_count")) == count_before + 2
    assert next(s.value for s in after.samples if s.name.endswith("_sum")) == pytest.approx(
        sum_before + wait
    )


def test_database_gauges_agree_with_the_tables(db_url: str) -> None:
    seed_list(db_url, "customers", us_numbers(30))
    campaign_id, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
        session.execute(
            update(Run).where(Run.id == run_id).values(status="sending", rate_limited=3)
        )
        ids = [m.id for m in session.query(Message).filter_by(run_id=run_id).order_by(Message.id)]
        session.execute(update(Message).where(Message.id.in_(ids[:12])).values(status="sent"))
        session.execute(update(Message).where(Message.id.in_(ids[12:15])).values(status="failed"))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        DatabaseCollector(
            db_url,
            limiter_stats=lambda: {"factor": 0.7, "blocked_for": 2.0, "messages_per_second": 70.0},
        )
    )
    counts = status_counts(db_url, run_id)
    assert counts == {"sent": 12, "failed": 3, "pending": 15}
    run = {"run": str(run_id), "campaign": str(campaign_id)}

    def value(name: str, labels: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(name, labels or {})

    for status, n in counts.items():
        assert value("clarion_messages", {"channel": "sms", "status": status}) == n
        assert value("clarion_run_messages", {**run, "status": status}) == n
    assert value("clarion_run_pending", run) == 15
    assert value("clarion_run_progress_ratio", run) == pytest.approx(15 / 30)
    assert value("clarion_run_rate_limited", run) == 3
    assert value("clarion_limiter_factor") == 0.7

    # A finished run leaves the per-run gauges and stays in the totals.
    with session_scope(db_url) as session:
        session.execute(update(Message).where(Message.id.in_(ids[15:])).values(status="sent"))
        session.execute(update(Run).where(Run.id == run_id).values(status="completed"))
    assert value("clarion_run_pending", run) is None
    assert value("clarion_messages", {"channel": "sms", "status": "sent"}) == 27
    assert value("clarion_messages", {"channel": "sms", "status": "pending"}) is None


def test_run_minutes_add_up(db_url: str) -> None:
    seed_list(db_url, "customers", us_numbers(3))
    _, run_id = seed_campaign(db_url, ["customers"])
    now = utcnow().replace(second=30)
    with session_scope(db_url) as session:
        record_minute(session, run_id, now, accepted=1000)
        record_minute(session, run_id, now.replace(second=59), accepted=500, rate_limited=1)
        record_minute(session, run_id, now, rate_limited=2)
    with session_scope(db_url) as session:
        got = minutes(session, run_id, since=now, until=now)
    assert [(m.accepted, m.rate_limited) for m in got] == [(1500, 3)]

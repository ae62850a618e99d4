"""/metrics scraped from `clarion serve` while a run sends: the counters move, and what
they say agrees with the database, during the run and at its end."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from campaigns.db import session_scope
from campaigns.models import Message, Run, RunMinute
from tests.serving import TOKEN, Served, served_campaign

pytestmark = [pytest.mark.services, pytest.mark.slow]

RECIPIENTS = 20_000
SEND = "POST /sms/send"


def scrape(served: Served) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = served.api("GET", "/metrics")
    assert answer.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def sent_in_db(db_url: str, run_id: int) -> int:
    with session_scope(db_url) as session:
        return int(
            session.scalar(
                select(func.count()).where(Message.run_id == run_id, Message.status == "sent")
            )
            or 0
        )


def test_metrics_move_during_a_run_and_agree_with_the_database(pg_url: str, tmp_path: Path) -> None:
    with served_campaign(
        pg_url, tmp_path, recipients=RECIPIENTS, messages_per_second=1500
    ) as served:
        assert httpx.get(f"{served.url}/metrics", timeout=30).status_code == 401
        with httpx.Client(base_url=served.url, timeout=30) as ui:
            assert ui.post("/ui/login", data={"token": TOKEN}).status_code == 303
            started = ui.post(f"/ui/campaigns/{served.campaign_id}/start")
            assert started.status_code == 303
        with session_scope(pg_url) as session:
            run_id = session.scalar(select(Run.id).where(Run.campaign_id == served.campaign_id))
        assert run_id is not None
        run = {"run": str(run_id), "campaign": str(served.campaign_id)}

        requests_seen, pending_seen, checked = [], [], 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            before = sent_in_db(pg_url, run_id)
            samples = scrape(served)
            after = sent_in_db(pg_url, run_id)
            in_run = value(samples, "clarion_run_messages", status="sent", **run)
            if ("clarion_run_pending", frozenset(run.items())) in samples:
                # The scrape's count lies between the database's before and after it.
                assert before <= in_run <= after
                pending_seen.append(value(samples, "clarion_run_pending", **run))
                checked += 1
            requests_seen.append(
                value(samples, "clarion_provider_requests_total", endpoint=SEND, status="200")
            )
            with session_scope(pg_url) as session:
                if session.get(Run, run_id).status == "completed":  # type: ignore[union-attr]
                    break
            time.sleep(0.3)
        else:
            pytest.fail("the run did not finish within 120 s")

        # The counters moved while the run went on.
        assert checked >= 3, "too few scrapes caught the run sending"
        assert len(set(requests_seen)) >= 3
        assert requests_seen == sorted(requests_seen)
        assert max(pending_seen) > pending_seen[-1]  # the queue drained

        final = scrape(served)
        sent = sent_in_db(pg_url, run_id)
        assert sent == RECIPIENTS
        assert value(final, "clarion_messages", channel="sms", status="sent") == sent
        assert value(final, "clarion_dispatched_messages_total", result="sent") == sent
        # One request per batch of 1000, every one accepted; none refused.
        assert value(final, "clarion_provider_requests_total", endpoint=SEND, status="200") == (
            RECIPIENTS / 1000
        )
        assert value(final, "clarion_provider_request_duration_seconds_count", endpoint=SEND) == (
            RECIPIENTS / 1000
        )
        assert value(final, "clarion_limiter_wait_seconds_count") >= RECIPIENTS / 1000
        assert value(final, "clarion_limiter_wait_seconds_sum") > 0  # the rate limit held it
        assert value(final, "clarion_limiter_factor") == 1.0
        assert ("clarion_run_pending", frozenset(run.items())) not in final  # no longer active
        with session_scope(pg_url) as session:
            accepted = session.scalar(
                select(func.sum(RunMinute.accepted)).where(RunMinute.run_id == run_id)
            )
        assert accepted == sent
        ledger = served.sandbox.ledger(_run_key(pg_url, run_id))
        assert ledger["accepted_total"] == sent and not ledger["duplicates"]


def _run_key(db_url: str, run_id: int) -> str:
    with session_scope(db_url) as session:
        key = session.scalar(select(Run.key).where(Run.id == run_id))
    assert key is not None
    return str(key)

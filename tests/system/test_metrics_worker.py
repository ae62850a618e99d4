"""Scaled mode: each pool process of `clarion worker -c 2` serves its own metrics on
CLARION_METRICS_PORT plus its pool index, and together they count every message sent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread
from tests.processes import free_port
from tests.procs import clarion, clarion_json, processes, scaled_env, wait_for
from tests.seed import seed_list, us_numbers

pytestmark = pytest.mark.services


def dispatched(port: int) -> float | None:
    """The process's count of messages sent, or None while it does not answer."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "clarion_dispatched_messages_total" and sample.labels == {
                "result": "sent"
            }:
                return sample.value
    return 0.0


def test_each_pool_process_serves_its_metrics(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    sandbox = start_in_thread(SandboxConfig(api_key="worker-metrics-key"))
    port = free_port()
    try:
        env = scaled_env(
            pg_url, redis_prefix, sandbox, CLARION_BATCH_SIZE="100", CLARION_METRICS_PORT=str(port)
        )
        clarion(env, "db", "upgrade")
        seed_list(pg_url, "customers", us_numbers(2000))
        definition = tmp_path / "campaign.yaml"
        definition.write_text(
            "name: metered\nchannel: sms\naudience:\n  lists: [customers]\n"
            "message:\n  body: 'Hi {first_name}'\n  from: Clarion\n"
        )
        campaign_id = clarion_json(env, "campaign", "create", str(definition))["campaign_id"]
        with processes(
            env,
            ["worker", "-c", "2", "--loglevel", "WARNING"],
            ["scheduler", "--loglevel", "WARNING"],
            log_dir=tmp_path,
        ):
            wait_for(
                lambda: dispatched(port) is not None and dispatched(port + 1) is not None,
                timeout=60,
                what="both pool processes to serve metrics",
            )
            clarion(env, "campaign", "start", str(campaign_id))
            wait_for(
                lambda: (
                    clarion_json(env, "campaign", "status", str(campaign_id))["status"]
                    == "completed"
                ),
                timeout=120,
                what="the run to complete",
            )
            counts = [dispatched(port), dispatched(port + 1)]
        assert None not in counts
        assert sum(c or 0 for c in counts) == 2000
    finally:
        sandbox.stop()

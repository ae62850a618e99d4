"""Scaled mode for real: PostgreSQL, the Redis or the RabbitMQ broker, two `clarion worker`
processes and the scheduler, driven through the CLI, checked against the sandbox's ledger."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, select

from campaigns.db import session_scope
from campaigns.models import Contact, ContactList, Message
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread
from tests.procs import clarion, clarion_json, processes, scaled_env, wait_for
from tests.seed import us_numbers

pytestmark = pytest.mark.services

# Numbers our import accepts but the provider refuses are rare in life; write them
# straight to the list so the provider's INVALID_RECIPIENT path is exercised.
PROVIDER_INVALID = ["+15555550100", "+15555550101", "+15555550102"]


def _write_csv(path: Path, phones: list[str], bad: list[str]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phone_number", "first_name", "custom_1"])
        for i, phone in enumerate(phones):
            writer.writerow([phone, f"Ann{i}", "x"])
        for phone in bad:
            writer.writerow([phone, "Bad", "x"])


def test_two_workers_send_each_valid_recipient_exactly_once(
    pg_url: str, redis_prefix: str, broker: str, tmp_path: Path
) -> None:
    sandbox = start_in_thread(SandboxConfig(api_key="scaled-test-key"))
    try:
        env = scaled_env(pg_url, redis_prefix, sandbox, broker=broker, CLARION_BATCH_SIZE="250")
        valid = us_numbers(3000)
        contacts = tmp_path / "contacts.csv"
        _write_csv(contacts, valid, bad=["12345", "not a number"])
        report = clarion_json(env, "lists", "import", str(contacts), "--list", "customers")
        assert report["imported"] == 3000
        assert sorted(e["row"] for e in report["errors"]) == [3002, 3003]
        with session_scope(pg_url) as session:
            list_id = session.scalar(select(ContactList.id).where(ContactList.name == "customers"))
            session.execute(
                insert(Contact),
                [
                    {"list_id": list_id, "phone": p, "fields": {"first_name": "Z"}}
                    for p in PROVIDER_INVALID
                ],
            )
        definition = tmp_path / "campaign.yaml"
        definition.write_text(
            "name: scaled\nchannel: sms\naudience:\n  lists: [customers]\n"
            "message:\n  body: 'Hi {first_name}, 20% off this week. Reply STOP to opt out'\n"
            "  from: Clarion\n"
        )
        campaign_id = clarion_json(env, "campaign", "create", str(definition))["campaign_id"]
        workers = [
            ["worker", "-c", "1", "--hostname", f"w{i}@%h", "--loglevel", "WARNING"] for i in (1, 2)
        ]
        with processes(env, *workers, ["scheduler", "--loglevel", "WARNING"], log_dir=tmp_path):
            clarion(env, "campaign", "start", str(campaign_id))
            status = wait_for(
                lambda: (
                    (s := clarion_json(env, "campaign", "status", str(campaign_id)))["status"]
                    == "completed"
                    and s
                ),
                timeout=180,
                what="the run to complete",
            )
        assert status["counts"]["sent"] == 3000
        assert status["counts"]["failed"] == 3
        ledger = httpx.get(
            f"{sandbox.root_url}/_sandbox/ledger",
            params={"custom_string": status["key"]},
            timeout=10,
        ).json()
        assert ledger["by_recipient"] == {p: 1 for p in valid}
        assert ledger["duplicates"] == []
        with session_scope(pg_url) as session:
            failed = dict(
                session.execute(
                    select(Message.phone, Message.error).where(Message.status == "failed")
                ).all()
            )
        assert failed == {p: "INVALID_RECIPIENT" for p in PROVIDER_INVALID}
    finally:
        sandbox.stop()

"""The look-up commands: campaign list and show, messages export, lists list, show,
export and delete, optouts, --version."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from campaigns.db import session_scope
from campaigns.models import Message
from clarion.cli import app
from config.settings import reset_settings
from tests.seed import seed_campaign, seed_list, us_numbers


@pytest.fixture
def cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    reset_settings()
    return CliRunner()


def _ok(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_campaigns_messages_and_version(sqlite_url: str, cli: CliRunner, tmp_path: Path) -> None:
    phones = us_numbers(3)
    seed_list(sqlite_url, "customers", phones)
    campaign_id, run_id = seed_campaign(sqlite_url, ["customers"])
    with session_scope(sqlite_url) as session:
        session.execute(
            insert(Message),
            [
                {
                    "run_id": run_id,
                    "phone": phones[0],
                    "status": "sent",
                    "delivery_status": "delivered",
                },
                {"run_id": run_id, "phone": phones[1], "status": "failed", "error": "INVALID"},
                {"run_id": run_id, "phone": phones[2], "status": "failed", "error": "INVALID"},
            ],
        )
    assert _ok(cli, "--version").startswith("clarion ")
    listed = json.loads(_ok(cli, "campaign", "list", "--json"))
    assert [(c["id"], c["status"], c["latest_run"]) for c in listed] == [
        (campaign_id, "active", run_id)
    ]
    assert json.loads(_ok(cli, "campaign", "list", "--status", "draft", "--json")) == []
    shown = json.loads(_ok(cli, "campaign", "show", str(campaign_id), "--json"))
    assert shown["definition"]["audience"]["lists"] == ["customers"]
    assert shown["latest_run"]["counts"]["failed"] == 2
    assert "test-campaign" in _ok(cli, "campaign", "show", str(campaign_id))
    status = json.loads(_ok(cli, "campaign", "status", str(campaign_id), "--json"))
    assert (status["delivered"], status["undelivered"]) == (1, 0)
    assert "delivered (receipts)" in _ok(cli, "campaign", "status", str(campaign_id))
    out = tmp_path / "failed.csv"
    _ok(cli, "messages", "export", str(run_id), "--status", "failed", "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    assert sorted(r["phone"] for r in rows) == sorted(phones[1:])
    bad = cli.invoke(app, ["messages", "export", str(run_id), "--status", "nope"])
    assert bad.exit_code == 1 and "status" in bad.output
    assert cli.invoke(app, ["campaign", "show", "99"]).exit_code == 1


def test_lists_and_optouts(sqlite_url: str, cli: CliRunner, tmp_path: Path) -> None:
    seed_list(sqlite_url, "customers", us_numbers(4))
    seed_list(sqlite_url, "spare", us_numbers(1, start=10))
    listed = json.loads(_ok(cli, "lists", "list", "--json"))
    assert [(item["name"], item["contacts"]) for item in listed] == [("customers", 4), ("spare", 1)]
    shown = json.loads(_ok(cli, "lists", "show", "customers", "-n", "2", "--json"))
    assert shown["contacts"] == 4 and len(shown["first"]) == 2
    exported = _ok(cli, "lists", "export", "customers")
    assert len(list(csv.DictReader(io.StringIO(exported)))) == 4
    seed_campaign(sqlite_url, ["customers"])
    refused = cli.invoke(app, ["lists", "delete", "customers"])
    assert refused.exit_code == 1 and "uses it" in refused.output
    assert "deleted" in _ok(cli, "lists", "delete", "spare")

    assert "now suppressed" in _ok(cli, "optouts", "add", "(201) 555-0123")
    assert "already" in _ok(cli, "optouts", "add", "+12015550123")
    bad = cli.invoke(app, ["optouts", "add", "12"])
    assert bad.exit_code == 1 and "phone" in bad.output
    csv_file = tmp_path / "stops.csv"
    csv_file.write_text("phone_number\n+12015550124\nbad\n")
    report = json.loads(_ok(cli, "optouts", "import", str(csv_file), "--json"))
    assert (report["added"], [e["row"] for e in report["errors"]]) == (1, [3])
    assert {o["phone"] for o in json.loads(_ok(cli, "optouts", "list", "--json"))} == {
        "+12015550123",
        "+12015550124",
    }
    assert "no longer" in _ok(cli, "optouts", "remove", "+12015550124")
    assert cli.invoke(app, ["optouts", "remove", "+12015550124"]).exit_code == 1

"""`clarion campaign preview` and the balance check at `campaign start`, against the
sandbox over HTTP."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from campaigns.db import session_scope
from campaigns.models import Message, Run, Suppression
from clarion.cli import app
from tests.sandbox_env import sandbox_env
from tests.seed import seed_list, us_numbers


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _create(tmp_path: Path, body: str, **extra: Any) -> int:
    path = tmp_path / "c.yaml"
    definition = {
        "name": "p",
        "channel": "sms",
        "audience": {"lists": ["customers", "vip"]},
        "message": {"body": body, "from": "+12015550999"},
        **extra,
    }
    path.write_text(yaml.safe_dump(definition, allow_unicode=True))
    result = _cli("campaign", "create", str(path), "--json")
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["campaign_id"])


def test_preview_renders_first_messages_and_totals_without_writing_rows(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    us = us_numbers(6)
    seed_list(sqlite_url, "customers", us)
    # The same first number again, and two UK numbers, in a second list.
    seed_list(sqlite_url, "vip", [us[0], "+447400123456", "+447400123457"])
    with session_scope(sqlite_url) as session:
        session.add(Suppression(phone=us[1], reason="STOP"))
    with sandbox_env(monkeypatch, sqlite_url):
        campaign_id = _create(tmp_path, "Hi {first_name}, it\u2019s on. Reply STOP to opt out")
        result = _cli("campaign", "preview", str(campaign_id), "-n", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    first = data["messages"][0]
    assert first["to"] == us[0]
    assert first["body"] == "Hi N0, it\u2019s on. Reply STOP to opt out"
    assert (first["encoding"], first["parts"], first["ucs2_char"]) == ("ucs2", 1, "\u2019")
    assert data["messages"][1]["status"] == "suppressed"
    assert len(data["messages"]) == 3
    totals = data["totals"]
    assert totals["contacts"] == 9
    assert (totals["recipients"], totals["duplicates"], totals["suppressed"]) == (8, 1, 1)
    assert (totals["messages"], totals["parts"], totals["invalid"]) == (7, 7, 0)
    assert totals["by_country"]["US"]["recipients"] == 5
    assert totals["by_country"]["GB"]["recipients"] == 2
    assert Decimal(totals["estimate"]) == Decimal("0.0250") * 7
    assert [w["check"] for w in data["warnings"]] == ["lookalike"]
    with session_scope(sqlite_url) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Run)) == 0


def test_preview_table_names_the_ucs2_character(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(2))
    seed_list(sqlite_url, "vip", [])
    with sandbox_env(monkeypatch, sqlite_url):
        campaign_id = _create(tmp_path, "Hi {first_name} 🎉 Reply STOP to opt out")
        result = _cli("campaign", "preview", str(campaign_id))
    assert result.exit_code == 0, result.output
    assert "U+1F389" in result.stdout and "Hi N0 🎉" in result.stdout


def test_provider_price_is_asked_in_batches_of_1000(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(1500))
    seed_list(sqlite_url, "vip", [])
    body = "Hi {first_name}. " + "x" * 150 + " Reply STOP to opt out"  # 2 parts each
    with sandbox_env(monkeypatch, sqlite_url, price_per_part=Decimal("0.0300")) as sandbox:
        campaign_id = _create(tmp_path, body)
        result = _cli("campaign", "preview", str(campaign_id), "--provider-price", "--json")
        stats = sandbox.state.summary()
        assert stats["messages_accepted"] == 0  # priced, not sent
        assert stats["requests_by_endpoint"]["POST /v3/sms/price"] == 2
    assert result.exit_code == 0, result.output
    cost = json.loads(result.stdout)["cost"]
    assert cost["provider_requests"] == 2
    assert Decimal(cost["provider"]) == Decimal("0.0300") * 2 * 1500
    assert Decimal(cost["estimate"]) == Decimal("0.0250") * 2 * 1500  # the local table


def test_start_refuses_a_run_the_balance_cannot_cover_unless_forced(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(10))
    seed_list(sqlite_url, "vip", [])
    # 10 messages at 0.025 = 0.25; the account holds 0.20.
    with sandbox_env(monkeypatch, sqlite_url, balance=Decimal("0.20")) as sandbox:
        campaign_id = _create(tmp_path, "Hi {first_name}. Reply STOP to opt out")
        refused = _cli("campaign", "start", str(campaign_id))
        assert refused.exit_code == 1
        assert "0.2500" in refused.output and "0.200000" in refused.output
        assert "--force" in refused.output
        with session_scope(sqlite_url) as session:
            assert session.scalar(select(func.count()).select_from(Run)) == 0
        assert sandbox.state.summary()["messages_accepted"] == 0
        forced = _cli("campaign", "start", str(campaign_id), "--force", "--json")
        assert forced.exit_code == 0, forced.output
        # The sandbox then refuses what the balance cannot pay for, message by message.
        assert json.loads(forced.stdout)["counts"]["sent"] == 8


def test_a_run_pauses_itself_at_its_budget_end_to_end(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(10))
    seed_list(sqlite_url, "vip", [])
    monkeypatch.setenv("CLARION_BATCH_SIZE", "2")
    with sandbox_env(monkeypatch, sqlite_url) as sandbox:
        # 0.025 a message: two batches of two fit under 0.10, a third would cross it.
        campaign_id = _create(
            tmp_path, "Hi {first_name}. Reply STOP to opt out", budget={"run": "0.10"}
        )
        started = _cli("campaign", "start", str(campaign_id), "--json")
        assert started.exit_code == 0, started.output
        status = json.loads(started.stdout)
        assert status["status"] == "paused"
        assert "run cap of 0.10 would be crossed" in status["status_reason"]
        assert status["counts"]["sent"] == 4 and status["counts"]["pending"] == 6
        assert sandbox.state.summary()["messages_accepted"] == 4

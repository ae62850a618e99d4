"""`clarion campaign test`: the rendered message to chosen numbers, outside any run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from campaigns.db import session_scope
from campaigns.models import Message, Run
from clarion.cli import app
from sandbox.server import SandboxHandle
from tests.sandbox_env import sandbox_env
from tests.seed import seed_list, us_numbers


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _campaign(tmp_path: Path) -> int:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "channel": "sms",
                "audience": {"lists": ["customers"]},
                "message": {
                    "body": "Hi {first_name}. Reply STOP to opt out",
                    "from": "+12015550999",
                },
            }
        )
    )
    result = _cli("campaign", "create", str(path), "--json")
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["campaign_id"])


def _sent(sandbox: SandboxHandle) -> list[tuple[str, str, str]]:
    return [(m.to, m.body, m.custom_string) for m in sandbox.state.order]


def test_test_send_renders_for_a_contact_and_leaves_runs_alone(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    customers = us_numbers(3)
    seed_list(sqlite_url, "customers", customers)
    with sandbox_env(monkeypatch, sqlite_url) as sandbox:
        campaign_id = _campaign(tmp_path)
        result = _cli("campaign", "test", str(campaign_id), "--to", "+1 405 555 5555", "--json")
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert [(a["to"], a["status"], a["parts"]) for a in answer] == [
            ("+14055555555", "SUCCESS", 1)
        ]
        custom = f"clarion-test-{campaign_id}"
        assert _sent(sandbox) == [("+14055555555", "Hi N0. Reply STOP to opt out", custom)]
        # Rendered for a chosen contact of the audience.
        result = _cli(
            "campaign", "test", str(campaign_id), "--to", "+14055555555", "--contact", customers[2]
        )
        assert result.exit_code == 0, result.output
        assert _sent(sandbox)[-1][1] == "Hi N2. Reply STOP to opt out"
    with session_scope(sqlite_url) as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_seed_list_members_get_their_own_rendering(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(2))
    seed_list(sqlite_url, "staff", ["+61411111111", "+61422222222"])
    with sandbox_env(monkeypatch, sqlite_url) as sandbox:
        campaign_id = _campaign(tmp_path)
        result = _cli("campaign", "test", str(campaign_id), "--seed-list", "staff")
        assert result.exit_code == 0, result.output
        assert [(to, body) for to, body, _ in _sent(sandbox)] == [
            ("+61411111111", "Hi N0. Reply STOP to opt out"),
            ("+61422222222", "Hi N1. Reply STOP to opt out"),
        ]


def test_bad_test_send_options_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(2))
    with sandbox_env(monkeypatch, sqlite_url) as sandbox:
        campaign_id = _campaign(tmp_path)
        for args, text in [
            (["--to", "12"], "--to:"),
            ([], "--to: give at least one number"),
            (["--to", "+14055555555", "--contact", "+12025550199"], "--contact:"),
            (["--seed-list", "nobody"], "--seed-list: no contact list named 'nobody'"),
        ]:
            result = _cli("campaign", "test", str(campaign_id), *args)
            assert result.exit_code == 1, (args, result.output)
            assert text in result.output and "Traceback" not in result.output
        assert _sent(sandbox) == []

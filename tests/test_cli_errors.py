"""A user's configuration mistake is one line naming the variable, exit 1, no traceback
(`--debug` shows it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sandbox.server import start_in_thread
from tests.conftest import PG_ADMIN_URL
from tests.procs import CLARION


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    base["CLARION_DATABASE_URL"] = f"sqlite:///{tmp_path}/c.db"
    base.update(env)
    return subprocess.run(
        [*CLARION, *args], env=base, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def _one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_a_bad_setting_names_the_variable(tmp_path: Path) -> None:
    line = _one_line(
        _run(tmp_path, "campaign", "list", CLARION_BATCH_SIZE="5000"), "CLARION_BATCH_SIZE"
    )
    assert "1000" in line
    _one_line(_run(tmp_path, "campaign", "list", CLARION_PROVIDER="clicksnd"), "CLARION_PROVIDER")


def test_a_missing_database_names_the_variable(tmp_path: Path) -> None:
    missing = PG_ADMIN_URL.rsplit("/", 1)[0] + "/clarion_does_not_exist"
    line = _one_line(
        _run(tmp_path, "campaign", "list", CLARION_DATABASE_URL=missing), "CLARION_DATABASE_URL"
    )
    assert "does not exist" in line


def test_an_unreachable_database_names_the_variable(tmp_path: Path) -> None:
    _one_line(
        _run(
            tmp_path,
            "lists",
            "list",
            CLARION_DATABASE_URL="postgresql://u:secret-pw@127.0.0.1:1/x",
        ),
        "CLARION_DATABASE_URL",
    )
    result = _run(tmp_path, "lists", "list", CLARION_DATABASE_URL="sqlite:////no/such/dir/c.db")
    _one_line(result, "CLARION_DATABASE_URL")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = _run(tmp_path, "--debug", "campaign", "list", CLARION_BATCH_SIZE="5000")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "CLARION_BATCH_SIZE" in result.stderr


def test_a_provider_refusal_is_one_line(tmp_path: Path) -> None:
    sandbox = start_in_thread()
    try:
        result = _run(
            tmp_path,
            "templates",
            "list",
            CLARION_SANDBOX_URL=sandbox.base_url,
            CLARION_SANDBOX_API_KEY="wrong-key",
        )
    finally:
        sandbox.stop()
    line = _one_line(result, "401")
    assert "wrong-key" not in line


@pytest.mark.parametrize("password", ["secret-pw"])
def test_no_password_in_the_error(tmp_path: Path, password: str) -> None:
    result = _run(
        tmp_path, "lists", "list", CLARION_DATABASE_URL=f"postgresql://u:{password}@127.0.0.1:1/x"
    )
    assert password not in result.stderr + result.stdout


def test_missing_provider_credentials_are_named_before_a_run_starts(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from campaigns.db import session_scope
    from campaigns.models import Run

    contacts = tmp_path / "c.csv"
    contacts.write_text("phone_number\n+12015550123\n")
    spec = tmp_path / "c.yaml"
    spec.write_text(
        "name: t\nchannel: sms\naudience: {lists: [l]}\nmessage: {body: 'Hi', from: Clarion}\n"
    )
    assert _run(tmp_path, "lists", "import", str(contacts), "--list", "l").returncode == 0
    assert _run(tmp_path, "campaign", "create", str(spec)).returncode == 0
    result = _run(
        tmp_path,
        "campaign",
        "start",
        "1",
        CLARION_PROVIDER="clicksend",
        CLARION_BROKER_URL="redis://127.0.0.1:6379/0",
        CLARION_REDIS_URL="redis://127.0.0.1:6379/0",
    )
    _one_line(result, "CLARION_CLICKSEND_USERNAME", "CLARION_CLICKSEND_API_KEY")
    with session_scope(f"sqlite:///{tmp_path}/c.db") as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0

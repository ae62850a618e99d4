"""The embedded mode end to end: the README's demo and `campaign start` without services."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.procs import CLARION

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env["CLARION_DATABASE_URL"] = f"sqlite:///{tmp_path}/embedded.db"
    env["COLUMNS"] = "160"
    return env


def _clarion(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A `clarion` command in the embedded mode, with its own SQLite file under tmp_path."""
    return subprocess.run(
        [*CLARION, *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_demo_sends_the_example_campaign_exactly_once(tmp_path: Path) -> None:
    result = _clarion(tmp_path, "demo", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"recipients\s+│\s+9,9\d\d", out), out[-3000:]
    assert re.search(r"sent\s+│\s+9,9\d\d", out)
    assert re.search(r"suppressed \(opted out\)\s+│\s+5\b", out)
    assert "missing field first_name" in out
    assert "0 recipients received more than one" in out
    assert (tmp_path / ".clarion" / "demo.db").exists()
    # The demo says how to look at its campaign again, and that works.
    hint = re.search(r"look at it again with: CLARION_DATABASE_URL=(\S+) clarion (.+)", out)
    assert hint, out[-1000:]
    env = _env(tmp_path) | {"CLARION_DATABASE_URL": hint.group(1)}
    status = subprocess.run(
        [*CLARION, *hint.group(2).split(), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"]["sent"] > 9900


def test_embedded_start_runs_the_campaign_in_the_command(tmp_path: Path) -> None:
    contacts = tmp_path / "c.csv"
    contacts.write_text(
        "phone_number,first_name\n"
        "+12015550123,Ann\n(201) 555-0124,Bob\n+1 201 555 0123,Dup\n12,Bad\n"
    )
    spec = tmp_path / "c.yaml"
    spec.write_text(
        "name: t\nchannel: sms\naudience: {lists: [l]}\n"
        "message: {body: 'Hi {first_name}', from: Clarion}\n"
    )

    def run(*args: str) -> str:
        r = _clarion(tmp_path, *args)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    import json

    report = json.loads(run("lists", "import", str(contacts), "--list", "l", "--json"))
    assert (report["imported"], report["duplicates"], len(report["errors"])) == (2, 1, 1)
    campaign = json.loads(run("campaign", "create", str(spec), "--json"))["campaign_id"]
    status = json.loads(run("campaign", "start", str(campaign), "--json"))
    assert status["status"] == "completed"
    assert status["counts"]["sent"] == 2


def test_invalid_definition_names_the_field_and_creates_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: t\nchannel: sms\naudience: {lists: [l]}\nmessage: {bdy: 'Hi', from: Clarion}\n"
    )
    r = _clarion(tmp_path, "campaign", "create", str(spec))
    assert r.returncode == 1
    assert "message.bdy" in r.stderr
    r = _clarion(tmp_path, "campaign", "status", "1")
    assert r.returncode == 1 and "no such campaign" in r.stderr


def test_import_without_phone_column_is_a_clear_error(tmp_path: Path) -> None:
    contacts = tmp_path / "c.csv"
    contacts.write_text("mobile,first_name\n+12015550123,Ann\n")
    r = _clarion(tmp_path, "lists", "import", str(contacts), "--list", "l")
    assert r.returncode == 1
    assert "phone_number" in r.stderr and "Traceback" not in r.stderr

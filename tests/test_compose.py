"""docker-compose.yml: valid for docker-compose, and every service runs a real `clarion` command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from clarion.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_docker_compose_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed (.ci/run installs Debian's package)"
    result = subprocess.run([binary, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_services_and_their_commands() -> None:
    services = _compose()["services"]
    assert {"redis", "postgres", "migrate", "worker", "scheduler", "sandbox"} <= set(services)
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    commands |= {g.name for g in app.registered_groups if g.name}
    for name in ("migrate", "worker", "scheduler", "sandbox"):
        assert services[name]["command"][0] in commands, name
    assert "ports" not in services["worker"], "workers must scale with --scale"
    env = services["worker"]["environment"]
    assert env["CLARION_BROKER_URL"].startswith("redis://")
    assert env["CLARION_DATABASE_URL"].startswith("postgresql://")
    assert all(name.startswith("CLARION_") for name in env)

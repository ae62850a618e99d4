"""docker-compose.yml: valid against the Compose Specification, and every service runs a real
`clarion` command.

The schema (`tests/data/compose-spec.json`) is the Compose Specification's JSON schema as the
docker-compose 1.29.2 package ships it (Apache-2.0); keeping it here lets the suite check the file
without a compose binary. Beside the schema, the checks below are the ones `docker-compose config`
makes that a schema cannot: variable interpolation syntax and references between services.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from clarion.cli import app

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())

# Compose's interpolation: $$ is a literal $, otherwise $NAME or ${NAME[:-?]...}.
_INTERPOLATION = re.compile(
    r"\$(?:\$|[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?])[^}]*)?\})"
)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in _strings(key) + _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def interpolation_errors(config: dict[str, Any]) -> list[str]:
    """Strings with a `$` that compose would refuse to interpolate."""
    errors = []
    for value in _strings(config):
        stripped = _INTERPOLATION.sub("", value)
        if "$" in stripped:
            errors.append(value)
    return errors


def reference_errors(config: dict[str, Any]) -> list[str]:
    """depends_on naming unknown services; named volumes that are not declared."""
    services = config.get("services", {})
    volumes = set(config.get("volumes") or {})
    errors = []
    for name, service in services.items():
        depends = service.get("depends_on") or []
        for other in depends if isinstance(depends, list) else list(depends):
            if other not in services:
                errors.append(f"{name}: depends_on unknown service {other!r}")
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source and not source.startswith((".", "/", "~")) and source not in volumes:
                errors.append(f"{name}: volume {source!r} is not declared")
    return errors


def schema_errors(config: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(SCHEMA)
    errors = validator.iter_errors(config)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_the_file_is_valid_compose() -> None:
    config = _compose()
    assert schema_errors(config) == []
    assert interpolation_errors(config) == []
    assert reference_errors(config) == []


@pytest.mark.parametrize(
    ("mutate", "check"),
    [
        (lambda c: c["services"]["worker"].update(comand=["worker"]), schema_errors),
        (lambda c: c["services"]["worker"].update(restart=7), schema_errors),
        (lambda c: c["services"]["worker"]["depends_on"].update(nope={}), reference_errors),
        (lambda c: c["services"]["postgres"].update(volumes=["data:/x"]), reference_errors),
        (lambda c: c["services"]["worker"].update(command=["a ${UNCLOSED"]), interpolation_errors),
        (lambda c: c["services"]["worker"].update(command=["a $ b"]), interpolation_errors),
    ],
)
def test_the_checks_catch_a_broken_file(mutate: Any, check: Any) -> None:
    config = _compose()
    assert check(config) == []
    mutate(config)
    assert check(config) != []


def test_services_and_their_commands() -> None:
    services = _compose()["services"]
    expected = {"redis", "postgres", "migrate", "worker", "scheduler", "sandbox", "api"}
    assert expected <= set(services)
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    commands |= {g.name for g in app.registered_groups if g.name}
    for name in ("migrate", "worker", "scheduler", "sandbox", "api"):
        assert services[name]["command"][0] in commands, name
    assert "ports" not in services["worker"], "workers must scale with --scale"
    env = services["worker"]["environment"]
    # Redis unless CLARION_BROKER_URL says otherwise (RabbitMQ: the rabbitmq profile).
    assert env["CLARION_BROKER_URL"] == "${CLARION_BROKER_URL:-redis://redis:6379/0}"
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    assert env["CLARION_DATABASE_URL"].startswith("postgresql://")
    assert all(name.startswith("CLARION_") for name in env)
    api = services["api"]
    shared = {k: v for k, v in env.items() if k != "CLARION_METRICS_PORT"}  # workers' own port
    assert api["environment"] == shared, "the API reads the same database and broker"
    assert env["CLARION_METRICS_PORT"] == "9100"
    assert "CLARION_API_TOKENS" in env
    assert api["command"][api["command"].index("--host") + 1] == "0.0.0.0"


def test_long_running_services_come_back_after_a_crash() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        if name == "migrate":  # one-shot: it runs once and exits
            assert service.get("restart") == "no"
        else:
            assert service.get("restart") == "unless-stopped", name

"""Real `clarion` processes for the scaled-mode tests (Redis or RabbitMQ broker, PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import AMQP_URL, REDIS_URL, queue_for
from tests.processes import CLARION, stop_groups


def broker_url(broker: str) -> str:
    """The broker URL of a test's ``broker`` parameter ("redis" or "amqp")."""
    return {"redis": REDIS_URL, "amqp": AMQP_URL}[broker]


def scaled_env(
    db_url: str, redis_prefix: str, sandbox: Any, *, broker: str = "redis", **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(
        CLARION_DATABASE_URL=db_url,
        CLARION_BROKER_URL=broker_url(broker),
        # A queue of this test's own (on RabbitMQ; on Redis the key prefix separates).
        CLARION_BROKER_QUEUE=queue_for(redis_prefix),
        CLARION_REDIS_URL=REDIS_URL,
        CLARION_REDIS_KEY_PREFIX=redis_prefix,
        CLARION_PROVIDER="sandbox",
        CLARION_SANDBOX_URL=sandbox.base_url,
        CLARION_SANDBOX_USERNAME=sandbox.state.config.username,
        CLARION_SANDBOX_API_KEY=sandbox.state.config.api_key,
        CLARION_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def clarion(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLARION, *args], env=env, capture_output=True, text=True, timeout=300, check=check
    )


def clarion_json(env: dict[str, str], *args: str) -> Any:
    out = clarion(env, *args, "--json").stdout
    return json.loads(out)


@contextmanager
def processes(
    env: dict[str, str], *commands: list[str], log_dir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start long-running `clarion` processes; stop them (SIGTERM, then SIGKILL) afterwards."""
    procs = []
    try:
        for i, command in enumerate(commands):
            log = (log_dir / f"proc-{i}-{command[0]}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [*CLARION, *command],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        yield procs
    finally:
        stop_groups(procs, grace=15)


def wait_for(predicate: Any, timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)

"""Settings refused at start-up with one line naming the variables, and URL passwords
hidden from logs, errors and reprs."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from config.logging import RedactingFormatter, redact
from config.settings import Settings
from tests.procs import CLARION

SECRET = "s3cret-pa55"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:6379/0",
        f"redis://default:{SECRET}@127.0.0.1:6379/0",
        f"rediss://:{SECRET}@cache.example:6380",
        f"postgresql://clarion:{SECRET}@db/clarion",
    ],
)
def test_url_passwords_are_redacted(url: str) -> None:
    assert SECRET not in redact(f"connecting to {url} failed")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "broker %s down", (url,), None)
    assert SECRET not in RedactingFormatter("%(message)s").format(record)


def test_settings_repr_hides_url_passwords() -> None:
    settings = Settings(
        redis_url=f"redis://:{SECRET}@127.0.0.1:6379/0",
        broker_url=f"redis://:{SECRET}@127.0.0.1:6379/0",
        database_url=f"postgresql://clarion:{SECRET}@db/clarion",
    )
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert settings.redis_url.endswith(f"{SECRET}@127.0.0.1:6379/0")  # the value itself is kept


def test_a_redis_broker_without_a_shared_limiter_is_refused() -> None:
    with pytest.raises(ValueError, match=r"CLARION_REDIS_URL.*CLARION_BROKER_URL"):
        Settings(broker_url="redis://127.0.0.1:6379/0", redis_url="")


def test_the_worker_refuses_a_redis_broker_without_redis_url(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "CLARION_DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
        "CLARION_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:6379/0",
    }
    done = subprocess.run([*CLARION, "worker"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "CLARION_REDIS_URL" in lines[0] and SECRET not in done.stderr

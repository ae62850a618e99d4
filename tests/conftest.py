"""Shared fixtures.

Every test that touches PostgreSQL gets a database of its own (created and dropped
here), and every test that touches Redis gets a key prefix of its own, so test runs
(and developers) sharing one machine never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from campaigns.migrate import upgrade
from config.settings import reset_settings

PG_ADMIN_URL = os.environ.get(
    "CLARION_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CLARION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


SYSTEM_TESTS = Path(__file__).resolve().parent / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/system/ run real processes: marked ``system``, so
    ``pytest -m "not system"`` runs the unit tests alone."""
    for item in items:
        if SYSTEM_TESTS in item.path.parents:
            item.add_marker(pytest.mark.system)


def _pg_url_for(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    name = f"clarion_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_url_for(name)
    upgrade(url)
    try:
        yield url
    finally:
        from campaigns.db import get_engine

        get_engine(url).dispose()
        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path}/clarion.db"  # type: ignore[operator]
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique Redis key prefix; every key under it is deleted afterwards."""
    import redis

    prefix = f"clarion-test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


AMQP_URL = os.environ.get("CLARION_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def queue_for(redis_prefix: str) -> str:
    """The Celery queue of a test with this prefix: concurrent runs never share one."""
    return "clarion-" + redis_prefix.strip(":").replace(":", "-")


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest, redis_prefix: str) -> Iterator[str]:
    """Runs a scaled test once on the Redis broker and once on RabbitMQ; the test's
    RabbitMQ queue and exchange are deleted afterwards."""
    yield str(request.param)
    if request.param == "amqp":
        from kombu import Connection

        with Connection(AMQP_URL) as connection:
            channel = connection.channel()
            channel.queue_delete(queue_for(redis_prefix))
            channel.exchange_delete(queue_for(redis_prefix))


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never read the developer's own CLARION_* environment or .env file."""
    for key in list(os.environ):
        if key.startswith("CLARION_") or key == "SKILLBOSS_API_KEY":
            monkeypatch.delenv(key)
    reset_settings()
    yield
    reset_settings()

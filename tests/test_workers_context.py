"""workers.context: one context per worker process, built at start-up, passed to plain
functions; the dispatcher sends and hands out no clients."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import (
    worker_before_create_process,
    worker_process_init,
    worker_process_shutdown,
)

import workers.app  # noqa: F401  (connects the worker signals)
from config.settings import Settings
from workers import context


@pytest.fixture
def settings(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("CLARION_REDIS_URL", raising=False)
    from config.settings import get_settings, reset_settings

    reset_settings()
    yield get_settings()
    context.stop()
    reset_settings()


def _http(client: Any) -> Any:
    return client._core._http


def test_worker_process_init_builds_the_context_the_tasks_use(settings: Settings) -> None:
    context.stop()
    worker_process_init.send(sender=None)
    ctx = context.current()
    assert context.current() is ctx  # built once, not per task
    assert ctx.settings.database_url == settings.database_url
    # The dispatcher looks messages up through the context's gated client.
    assert ctx.dispatcher._history is ctx.lookups
    assert not hasattr(ctx.dispatcher, "lookups") and not hasattr(ctx.dispatcher, "spare")
    worker_process_shutdown.send(sender=None)
    assert _http(ctx.lookups).is_closed  # closed with the process


def test_a_context_inherited_across_a_fork_is_rebuilt_and_left_open(settings: Settings) -> None:
    parent = context.start(settings)
    parent.pid = -1  # as a prefork child sees the parent's context
    child = context.current()
    assert child is not parent
    # The parent's connections are the parent's: the child must not close them.
    assert not _http(parent.lookups).is_closed
    parent.close()


def test_limiter_stats_come_from_this_process_context_without_redis(settings: Settings) -> None:
    context.stop()
    assert context.limiter_stats(settings) is None
    ctx = context.start(settings)
    ctx.limiter.acquire(1)
    stats = context.limiter_stats(settings)
    assert stats is not None and stats == ctx.limiter.stats()


def test_a_pool_process_is_forked_with_what_its_parent_holds_frozen() -> None:
    """The parent's objects (its imported modules) are left out of the child's
    collections: frozen right before the fork, not walked by every full collection."""
    held = [["a module's object"]]
    assert any(o is held for o in gc.get_objects())
    try:
        worker_before_create_process.send(sender=None)
        assert gc.get_freeze_count() > 0
        assert not any(o is held for o in gc.get_objects())
    finally:
        gc.unfreeze()

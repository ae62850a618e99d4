"""The Celery application. Tasks live in ``workers.tasks`` and stay thin."""

from __future__ import annotations

import gc
from typing import Any

from celery import Celery
from celery.signals import (
    worker_before_create_process,
    worker_process_init,
    worker_process_shutdown,
)

from config.celeryconfig import celery_config
from config.settings import Settings, get_settings
from workers.broker import TRANSPORT

app = Celery("clarion", include=["workers.tasks"])


def configure(settings: Settings) -> Celery:
    """(Re)apply settings; the CLI calls this after it has set the environment."""
    conf = celery_config(settings)
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # kombu's Redis transport with a fix: a broker restart must not kill a worker.
        conf["broker_transport"] = TRANSPORT
    app.conf.update(conf)
    return app


configure(get_settings())


@worker_before_create_process.connect
def _freeze_before_fork(**_: Any) -> None:
    """In the parent, right before a pool process is forked: what the parent holds (the
    imported modules, about 150,000 objects) lives as long as the child does, so the
    child's collector leaves it out. Otherwise the child's first full collection walks
    it all (about 50 ms, in its first batches) and writes to every page it walks, which
    copies the pages the child shared with its parent (Python's advice for fork without
    exec). Collected first, so no garbage is frozen with it."""
    gc.collect()
    gc.freeze()


@worker_process_init.connect
def _start_worker_context(**_: Any) -> None:
    """Each prefork child builds its worker context after the fork (workers.context)."""
    from workers import context

    context.start()


@worker_process_shutdown.connect
def _stop_worker_context(**_: Any) -> None:
    from workers import context

    context.stop()

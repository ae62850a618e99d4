"""The Celery application. Tasks live in ``workers.tasks`` and stay thin."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

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


@worker_process_init.connect
def _start_worker_context(**_: Any) -> None:
    """Each prefork child builds its worker context after the fork (workers.context)."""
    from workers import context

    context.start()


@worker_process_shutdown.connect
def _stop_worker_context(**_: Any) -> None:
    from workers import context

    context.stop()

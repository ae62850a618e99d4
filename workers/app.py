"""The Celery application. Tasks live in ``workers.tasks`` and stay thin."""

from __future__ import annotations

from celery import Celery

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

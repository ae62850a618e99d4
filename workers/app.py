"""The Celery application. Tasks live in ``workers.tasks`` and stay thin."""

from __future__ import annotations

from celery import Celery

from config.celeryconfig import celery_config
from config.settings import Settings, get_settings

app = Celery("clarion", include=["workers.tasks"])


def configure(settings: Settings) -> Celery:
    """(Re)apply settings; the CLI calls this after it has set the environment."""
    app.conf.update(celery_config(settings))
    return app


configure(get_settings())

"""The one Celery configuration, for every worker and the beat process.

Tasks carry ids only; the database holds the work. Hence acks_late with prefetch 1: a
worker that dies mid-task leaves its message to be redelivered, and the row claims make
a redelivered task harmless.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings

# Redis redelivers an unacked message after this long. Our tasks run for seconds and never
# take long countdowns (waits live in the database), so an hour is ample headroom and never
# causes a duplicate run of a slow-but-alive task.
VISIBILITY_TIMEOUT_SECONDS = 3600


def celery_config(settings: Settings) -> dict[str, Any]:
    transport_options: dict[str, Any] = {}
    if settings.broker_url.startswith("memory://"):
        # The in-process broker is polled; its default 1 s would add up to a second to
        # every hop (tick -> expansion -> dispatch) of the embedded mode.
        transport_options = {"polling_interval": 0.05}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        transport_options = {
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "global_keyprefix": settings.redis_key_prefix,
        }
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # RabbitMQ, the other broker: acks late with prefetch 1 as above (Celery's advice for
        # long tasks); it has no visibility timeout, an unacknowledged message returns when
        # its worker's connection closes. The limiter and the scheduler lock stay in Redis.
        "task_default_queue": settings.broker_queue,
        "timezone": "UTC",
        "enable_utc": True,
        "worker_hijack_root_logger": False,
    }

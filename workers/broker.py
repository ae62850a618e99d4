"""The Redis broker transport: kombu's, with a worker-killing failure mended.

When Redis goes away, Celery's consumer collects the broken connection
(``kombu.Connection.collect``): kombu closes the connection's channels one after the other,
then detaches the connection from its transport (``transport.client = None``). With the
broker down, closing one channel can fail (deleting an auto-delete fanout queue, reading a
pending BRPOP): the connection error stops the loop, ``collect`` swallows it, and the
channels after it stay open. One of them holds the unacknowledged message of the task
that was running (``task_acks_late``). When it is closed later, kombu restores that
message through a new Redis pool whose parameters it reads from the detached connection:
``AttributeError: 'NoneType' object has no attribute 'hostname'``. That is not a
connection error, so Celery takes it for an unrecoverable one and the worker exits.
(kombu 5.x; the same cause as celery/kombu#582 and #970.)

Here every channel is closed even when one of them fails, and a channel remembers the
connection it was opened on, so a late close can still restore its messages (or fails
with a connection error, which Celery handles). A lost message costs nothing more: the
database holds the work, and the scheduler's tick re-kicks a run that shows no progress.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

# The stubs leave out the private methods overridden here; kombu is pinned to the versions
# whose internals this was written against (pyproject.toml).
_RedisChannel: Any = kombu_redis.Channel
_RedisTransport: Any = kombu_redis.Transport


class Channel(_RedisChannel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opened_on = self.connection.client

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport.client is not None or self._opened_on is None:
            return dict(super()._connparams(asynchronous=asynchronous))
        # Detached by Connection.collect(): read the parameters of the connection this
        # channel was opened on. The transport is discarded, so lending it back is safe.
        transport.client = self._opened_on
        try:
            return dict(super()._connparams(asynchronous=asynchronous))
        finally:
            transport.client = None


class Transport(_RedisTransport):
    Channel = Channel

    def close_connection(self, connection: Any) -> None:
        """Close every channel, even when closing one of them fails."""
        self.cycle.close()
        for channels in self._avail_channels, self.channels:
            while channels:
                try:
                    channel = channels.pop()
                except LookupError:  # pragma: no cover - another thread emptied it
                    break
                try:
                    channel.close()
                except self.connection_errors as exc:
                    log.warning("broker: a channel closed with an error: %r", exc)


# For Celery's ``broker_transport`` setting.
TRANSPORT = f"{__name__}:Transport"

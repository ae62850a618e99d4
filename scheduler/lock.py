"""Leader election for the scheduler: exactly one beat acts at a time.

Every beat process calls ``hold()`` before each tick. With Redis, the leader holds a key
with a short lease (``LEASE_SECONDS``) and renews it on every call; a standby's ``hold()``
fails until the leader stops renewing (killed, hung, partitioned), then succeeds within
one lease plus one tick, well inside 30 s. Without Redis (the embedded mode, one process)
the lock is in-process and always granted to its holder.

The lock narrows the window for double fires; it does not have to close it: each
occurrence is a unique run row, so two ticks racing still make one run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from typing import Protocol

import redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from config.settings import Settings

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0
LOCK_NAME = "scheduler:leader"


class LeaderLock(Protocol):
    """Held by at most one scheduler process at a time."""

    def hold(self) -> bool:
        """Take the lock if it is free, renew it if ours; False while another holds it."""
        ...

    def release(self) -> None:
        """Give the lock up now (a clean shutdown hands over at once)."""
        ...


class RedisLeaderLock:
    """A Redis key with a lease (redis-py's ``Lock``: SET NX PX, renewals by token)."""

    def __init__(self, client: redis.Redis, key: str, lease_seconds: float = LEASE_SECONDS):
        self.key = key
        self.lease_seconds = lease_seconds
        self._lock = Lock(client, key, timeout=lease_seconds, blocking=False, thread_local=False)
        self._held = False

    def hold(self) -> bool:
        try:
            if self._held:
                try:
                    self._lock.reacquire()  # reset the lease to its full length
                    return True
                except LockError:
                    log.warning("scheduler lock %s was lost; trying to take it again", self.key)
                    self._held = False
            self._held = bool(self._lock.acquire(blocking=False, token=uuid.uuid4().hex))
        except RedisError as exc:
            # Without Redis we cannot know who leads: act as a standby until it is back.
            log.warning("scheduler lock %s unavailable: %s", self.key, type(exc).__name__)
            self._held = False
        return self._held

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        # Expired or unreachable: the lease ends on its own.
        with contextlib.suppress(LockError, RedisError):
            self._lock.release()


class LocalLeaderLock:
    """One process, one scheduler: the in-process lock of the embedded mode."""

    _owner: object | None = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        self._me = object()

    def hold(self) -> bool:
        with LocalLeaderLock._guard:
            if LocalLeaderLock._owner is None:
                LocalLeaderLock._owner = self._me
            return LocalLeaderLock._owner is self._me

    def release(self) -> None:
        with LocalLeaderLock._guard:
            if LocalLeaderLock._owner is self._me:
                LocalLeaderLock._owner = None


def leader_lock(settings: Settings, lease_seconds: float = LEASE_SECONDS) -> LeaderLock:
    """The Redis lock when Redis is configured, else the in-process one."""
    if not settings.redis_url:
        return LocalLeaderLock()
    client = redis.Redis.from_url(settings.redis_url)
    return RedisLeaderLock(client, settings.redis_key_prefix + LOCK_NAME, lease_seconds)

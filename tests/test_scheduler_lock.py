"""The leader lock: one holder at a time, renewals, hand-over on release or lease expiry."""

from __future__ import annotations

import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.settings import Settings
from scheduler.lock import LocalLeaderLock, RedisLeaderLock, leader_lock
from tests.conftest import REDIS_URL


def _pair(prefix: str, lease: float) -> tuple[RedisLeaderLock, RedisLeaderLock]:
    client = redis.Redis.from_url(REDIS_URL)
    key = prefix + "scheduler:leader"
    return RedisLeaderLock(client, key, lease), RedisLeaderLock(client, key, lease)


def test_only_one_holds_and_renewals_keep_it(redis_prefix: str) -> None:
    leader, standby = _pair(redis_prefix, lease=1.0)
    assert leader.hold()
    assert not standby.hold()
    for _ in range(4):  # renewed past several leases
        time.sleep(0.4)
        assert leader.hold()
        assert not standby.hold()


def test_standby_takes_over_when_the_leader_stops_renewing(redis_prefix: str) -> None:
    leader, standby = _pair(redis_prefix, lease=1.0)
    assert leader.hold()
    assert not standby.hold()
    time.sleep(1.2)  # the leader is "dead": no renewal
    assert standby.hold()
    assert not leader.hold()  # the old leader finds it lost the lock


def test_release_hands_over_at_once(redis_prefix: str) -> None:
    leader, standby = _pair(redis_prefix, lease=30)
    assert leader.hold()
    leader.release()
    assert standby.hold()


def test_lock_key_uses_the_configured_prefix(redis_prefix: str) -> None:
    lock = leader_lock(Settings(redis_url=REDIS_URL, redis_key_prefix=redis_prefix))
    assert isinstance(lock, RedisLeaderLock)
    assert lock.hold()
    assert redis.Redis.from_url(REDIS_URL).exists(redis_prefix + "scheduler:leader")
    lock.release()


def test_unreachable_redis_means_standing_by() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    lock = RedisLeaderLock(client, "k", 5)
    assert not lock.hold()


def test_in_process_lock_without_redis() -> None:
    first = leader_lock(Settings(redis_url=""))
    second = LocalLeaderLock()
    assert isinstance(first, LocalLeaderLock)
    assert first.hold() and first.hold()
    assert not second.hold()
    first.release()
    assert second.hold()
    second.release()

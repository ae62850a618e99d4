"""Rate limiter semantics, for the Redis limiter and its in-process twin alike.

Against the real Redis the clock cannot be stopped, so these tests use slow rates and
assert only what time moving forward cannot break (a wait is positive and at most one
refill; a factor is at least what the elapsed time guarantees). The exact numbers are
checked on ``LocalRateLimiter`` with a clock the test moves by hand.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from config.settings import Settings
from tests.conftest import REDIS_URL
from workers.ratelimit import (
    DEMAND_GRACE_SECONDS,
    IDLE_TTL_SECONDS,
    Adaptation,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    limiter_from_settings,
)

Factory = Callable[..., RateLimiter]


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(REDIS_URL)
    yield conn
    conn.close()


@pytest.fixture(params=["redis", "local"])
def make(request: pytest.FixtureRequest) -> Factory:
    """Builds a fresh limiter of either kind (each Redis one on an account of its own)."""
    if request.param == "local":
        return lambda **kw: LocalRateLimiter(**kw)
    prefix = request.getfixturevalue("redis_prefix")
    conn = request.getfixturevalue("client")

    def build(**kw: Any) -> RateLimiter:
        return RedisRateLimiter(conn, account=uuid.uuid4().hex[:8], key_prefix=prefix, **kw)

    return build


def _grants(limiter: RateLimiter, messages: int, tries: int) -> int:
    return sum(limiter.acquire(messages) == 0.0 for _ in range(tries))


# --- grant, deny, wait ---------------------------------------------------------------


def test_requests_burst_is_granted_then_a_wait_of_at_most_one_interval(make: Factory) -> None:
    limiter = make(requests_per_second=0.5, messages_per_second=0, burst_requests=3)
    assert _grants(limiter, 1, 3) == 3
    wait = limiter.acquire(1)
    assert 0.0 < wait <= 2.0
    assert limiter.stats()["grants"] == 3


def test_a_denied_request_takes_nothing(make: Factory) -> None:
    limiter = make(requests_per_second=0.5, messages_per_second=0, burst_requests=2)
    assert _grants(limiter, 1, 2) == 2
    waits = [limiter.acquire(1) for _ in range(20)]
    # had a denial taken anything, each next wait would be longer than the one before
    assert all(0.0 < later <= earlier for earlier, later in itertools.pairwise(waits))
    assert limiter.stats()["grants"] == 2


def test_messages_are_limited_and_a_wait_covers_only_the_shortfall(make: Factory) -> None:
    limiter = make(requests_per_second=0, messages_per_second=10, burst_messages=100)
    assert limiter.acquire(60) == 0.0
    wait = limiter.acquire(60)  # 40 left, 20 short: 2 s at 10/s
    assert 0.0 < wait <= 2.0
    assert limiter.acquire(40) == 0.0
    assert limiter.stats()["messages_granted"] == 100


def test_a_request_larger_than_the_burst_goes_when_full_and_leaves_a_debt(make: Factory) -> None:
    limiter = make(requests_per_second=0, messages_per_second=10, burst_messages=5)
    assert limiter.acquire(50) == 0.0  # the bucket was full; 45 messages owed
    assert limiter.acquire(1) > 3.0  # 4.6 s of refill, less whatever time has passed


@pytest.mark.parametrize("blocking", ["requests", "messages"])
def test_both_buckets_or_neither(make: Factory, blocking: str) -> None:
    if blocking == "messages":
        limiter = make(
            requests_per_second=0.1, messages_per_second=0.1, burst_requests=5, burst_messages=10
        )
        assert limiter.acquire(8) == 0.0
        assert limiter.acquire(8) > 0.0  # 2 messages left: denied, and no request taken
        assert _grants(limiter, 1, 4) == 2  # the 2 messages, with request tokens to spare
        assert limiter.stats()["grants"] == 3
        assert limiter.stats()["request_tokens"] >= 2.0
    else:
        limiter = make(
            requests_per_second=0.1, messages_per_second=0.1, burst_requests=2, burst_messages=10
        )
        assert _grants(limiter, 1, 2) == 2
        assert limiter.acquire(3) > 0.0  # no request token: the 3 messages stay
        assert limiter.stats()["messages_granted"] == 2
        assert limiter.stats()["message_tokens"] >= 8.0


def test_zero_means_unlimited_but_a_block_still_holds(make: Factory) -> None:
    limiter = make(requests_per_second=0, messages_per_second=0)
    assert _grants(limiter, 1000, 500) == 500
    limiter.penalise(30)
    assert limiter.acquire(1) > 29.0


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_messages_must_be_a_count(make: Factory, bad: Any) -> None:
    limiter = make(requests_per_second=1, messages_per_second=1)
    with pytest.raises(ValueError, match="messages"):
        limiter.acquire(bad)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("requests_per_second", {"requests_per_second": -1, "messages_per_second": 0}),
        ("messages_per_second", {"requests_per_second": 1, "messages_per_second": float("nan")}),
        (
            "burst_requests",
            {"requests_per_second": 1, "messages_per_second": 0, "burst_requests": 0.5},
        ),
        (
            "burst_messages",
            {"requests_per_second": 1, "messages_per_second": 1, "burst_messages": 0},
        ),
        (
            "retry_after_ceiling",
            {"requests_per_second": 1, "messages_per_second": 0, "retry_after_ceiling": 0},
        ),
    ],
)
def test_bad_configuration_names_the_field(
    make: Factory, field: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=field):
        make(**kwargs)


def test_bad_adaptation_names_the_field() -> None:
    with pytest.raises(ValueError, match="backoff"):
        Adaptation(backoff=1.5)
    with pytest.raises(ValueError, match="recovery_interval"):
        Adaptation(recovery_interval=0)


# --- 429: block, cap, adapt -------------------------------------------------------------


def test_penalise_blocks_for_retry_after(make: Factory) -> None:
    limiter = make(requests_per_second=100, messages_per_second=0)
    blocked = limiter.penalise(30)
    assert 29.0 < blocked <= 30.0
    wait = limiter.acquire(1)
    assert 29.0 < wait <= 30.0
    stats = limiter.stats()
    assert 29.0 < stats["blocked_for"] <= 30.0
    assert stats["rate_limited"] == 1
    assert stats["grants"] == 0


def test_no_retry_after_means_the_default_block(make: Factory) -> None:
    limiter = make(
        requests_per_second=100, messages_per_second=0, adaptation=Adaptation(default_retry_after=7)
    )
    assert 6.0 < limiter.penalise(None) <= 7.0


def test_retry_after_above_the_ceiling_is_capped_and_logged(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = make(requests_per_second=100, messages_per_second=0, retry_after_ceiling=10)
    with caplog.at_level(logging.WARNING, logger="workers.ratelimit"):
        assert 9.0 < limiter.penalise(600) <= 10.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "600" in warnings[0].getMessage() and "ceiling" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="workers.ratelimit"):
        make(requests_per_second=100, messages_per_second=0, retry_after_ceiling=10).penalise(9)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_429_lowers_the_factor_and_the_effective_rates(make: Factory) -> None:
    limiter = make(requests_per_second=20, messages_per_second=1000)
    limiter.penalise(30)
    stats = limiter.stats()
    assert stats["factor"] == pytest.approx(0.7)
    assert stats["requests_per_second"] == pytest.approx(14.0)
    assert stats["messages_per_second"] == pytest.approx(700.0)
    assert stats["configured_requests_per_second"] == 20.0
    assert stats["recovery_per_second"] == pytest.approx(0.01)


def test_429s_during_a_block_extend_it_without_lowering_the_rate_again(make: Factory) -> None:
    limiter = make(requests_per_second=20, messages_per_second=0)
    limiter.penalise(20)
    limiter.penalise(5)  # a request already in flight when the first 429 came back
    assert limiter.stats()["factor"] == pytest.approx(0.7)
    assert 39.0 < limiter.penalise(40) <= 40.0  # a longer Retry-After extends the block
    stats = limiter.stats()
    assert stats["factor"] == pytest.approx(0.7)
    assert stats["rate_limited"] == 3
    assert stats["blocked_for"] > 39.0


def test_separate_episodes_compound_down_to_the_floor(make: Factory) -> None:
    limiter = make(requests_per_second=20, messages_per_second=0)
    limiter.penalise(0)
    assert limiter.stats()["factor"] == pytest.approx(0.7, abs=0.01)
    limiter.penalise(0)
    assert limiter.stats()["factor"] == pytest.approx(0.49, abs=0.01)
    for _ in range(10):
        limiter.penalise(0)
    assert limiter.stats()["factor"] == pytest.approx(0.1, abs=0.01)


def test_the_factor_climbs_back_after_the_block(make: Factory) -> None:
    # +0.1 every 0.1 s: from 0.7 back to 1.0 in 0.3 s after the block ends
    fast = Adaptation(recovery_step=0.1, recovery_interval=0.1)
    limiter = make(requests_per_second=20, messages_per_second=0, adaptation=fast)
    limiter.penalise(0.1)
    time.sleep(0.2)  # at least 0.1 s of recovery: factor >= 0.8
    assert limiter.stats()["factor"] >= 0.8 - 1e-9
    time.sleep(0.3)  # at least 0.4 s of recovery
    stats = limiter.stats()
    assert stats["factor"] == 1.0
    assert stats["requests_per_second"] == 20.0


def test_after_a_block_the_buckets_start_empty(make: Factory) -> None:
    limiter = make(requests_per_second=0.5, messages_per_second=0, burst_requests=5)
    limiter.penalise(0.05)
    time.sleep(0.1)
    wait = limiter.acquire(1)  # no burst after a 429: one token at 0.35 req/s
    assert 0.0 < wait <= 1 / (0.5 * 0.7)


# --- spare capacity (receipt polls) ------------------------------------------------------


def test_spare_capacity_is_taken_when_no_sender_waits(make: Factory) -> None:
    limiter = make(requests_per_second=0.5, messages_per_second=0, burst_requests=1)
    assert limiter.acquire_spare() == 0.0
    assert limiter.acquire(1000) > 0  # the spare request took the token


def test_spare_requests_keep_out_of_the_way_of_waiting_senders(
    make: Factory,
) -> None:
    limiter = make(requests_per_second=20, messages_per_second=0, burst_requests=1)
    assert limiter.acquire(1000) == 0.0
    wait = limiter.acquire(1000)  # a sender is refused: the account is saturated
    assert 0 < wait <= 0.05
    assert limiter.acquire_spare() == float("inf")
    time.sleep(0.05)
    assert limiter.acquire_spare() == float("inf")  # the sender comes back for its turn
    assert limiter.acquire(1000) == 0.0
    time.sleep(DEMAND_GRACE_SECONDS + 0.1)  # nobody asked since: the capacity is spare
    assert limiter.acquire_spare() == 0.0


# --- Redis specifics ----------------------------------------------------------------------


def test_a_block_reaches_every_worker_of_the_account_and_no_other(
    client: redis.Redis, redis_prefix: str
) -> None:
    def worker(account: str, prefix: str = redis_prefix) -> RedisRateLimiter:
        return RedisRateLimiter(
            client,
            account=account,
            key_prefix=prefix,
            requests_per_second=100,
            messages_per_second=0,
        )

    first, second = worker("acct"), worker("acct")
    first.penalise(30)
    assert second.acquire(1) > 29.0
    assert second.stats()["factor"] == pytest.approx(0.7)
    assert worker("other").acquire(1) == 0.0
    assert worker("acct", redis_prefix + "x:").acquire(1) == 0.0


def test_workers_of_one_account_share_one_bucket(client: redis.Redis, redis_prefix: str) -> None:
    workers = [
        RedisRateLimiter(
            client,
            account="acct",
            key_prefix=redis_prefix,
            requests_per_second=0.5,
            messages_per_second=0,
            burst_requests=4,
        )
        for _ in range(3)
    ]
    granted = sum(_grants(w, 1, 4) for w in workers)
    assert granted == 4
    assert workers[0].stats()["grants"] == 4


def test_state_lives_in_one_expiring_key_under_the_prefix(
    client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(
        client,
        account="acct",
        key_prefix=redis_prefix,
        requests_per_second=10,
        messages_per_second=100,
    )
    limiter.acquire(5)
    limiter.penalise(20)
    keys = [k.decode() for k in client.scan_iter(match=redis_prefix + "*")]
    assert keys == [f"{redis_prefix}ratelimit:acct:state"]
    ttl = client.pttl(keys[0]) / 1000
    # the key outlives the block (20 s) and the climb back to 1.0 (30 s), then idles
    assert 20 + 30 + IDLE_TTL_SECONDS - 5 < ttl <= 20 + 30 + IDLE_TTL_SECONDS + 2


def test_limiter_from_settings_picks_redis_when_configured(redis_prefix: str) -> None:
    settings = Settings(
        redis_url=REDIS_URL,
        redis_key_prefix=redis_prefix,
        rate_limit_requests_per_second=5,
        rate_limit_messages_per_second=0,
        retry_after_ceiling_seconds=9,
    )
    limiter = limiter_from_settings(settings, "sandbox:me")
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.key == f"{redis_prefix}ratelimit:sandbox:me:state"
    assert limiter.limits.requests_per_second == 5.0
    assert limiter.limits.burst_requests == 2.5
    assert limiter.limits.retry_after_ceiling == 9.0
    assert _grants(limiter, 1000, 3) == 2  # the burst of 2.5 holds 2 whole requests


def test_the_request_limit_can_keep_a_margin_and_a_smaller_burst() -> None:
    settings = Settings(
        rate_limit_requests_per_second=5,
        rate_limit_messages_per_second=500,
        rate_limit_margin=0.02,
        rate_limit_burst_seconds=0.2,
    )
    limits = limiter_from_settings(settings, "sandbox:me").limits  # type: ignore[attr-defined]
    assert (limits.requests_per_second, limits.burst_requests) == (pytest.approx(4.9), 1.0)
    assert (limits.messages_per_second, limits.burst_messages) == (500.0, 250.0)
    fast = Settings(rate_limit_requests_per_second=50, rate_limit_burst_seconds=0.2)
    assert limiter_from_settings(fast, "x").limits.burst_requests == 10.0  # type: ignore[attr-defined]


def test_limiter_from_settings_is_local_without_redis_and_zero_is_unlimited() -> None:
    limiter = limiter_from_settings(Settings(), "sandbox:me")
    assert isinstance(limiter, LocalRateLimiter)
    assert _grants(limiter, 1000, 200) == 200


def test_repr_names_no_connection_details(client: redis.Redis, redis_prefix: str) -> None:
    secret_client = redis.Redis.from_url("redis://user:hunter2@127.0.0.1:6379/0")
    limiter = RedisRateLimiter(
        secret_client,
        account="a",
        key_prefix=redis_prefix,
        requests_per_second=1,
        messages_per_second=1,
    )
    assert "hunter2" not in repr(limiter)
    secret_client.close()

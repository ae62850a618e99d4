"""Exact rate-limit arithmetic, on ``LocalRateLimiter`` with a clock the test moves.

The Redis script follows the same rules; tests/test_workers_ratelimit.py runs the shared
behaviour on both.
"""

from __future__ import annotations

import pytest

from workers.ratelimit import Adaptation, LocalRateLimiter


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_default_burst_is_half_a_second_of_the_rate(clock: Clock) -> None:
    limiter = LocalRateLimiter(requests_per_second=20, messages_per_second=1000, clock=clock)
    assert limiter.limits.burst_requests == 10.0
    assert limiter.limits.burst_messages == 500.0
    assert (
        LocalRateLimiter(requests_per_second=1, messages_per_second=0).limits.burst_requests == 1.0
    )


def test_refill_and_wait_are_exact(clock: Clock) -> None:
    limiter = LocalRateLimiter(requests_per_second=10, messages_per_second=0, clock=clock)
    assert [limiter.acquire(1) for _ in range(5)] == [0.0] * 5
    assert limiter.acquire(1) == pytest.approx(0.1)
    clock.advance(0.05)
    assert limiter.acquire(1) == pytest.approx(0.05)
    clock.advance(0.05)
    assert limiter.acquire(1) == 0.0
    clock.advance(100)  # a long idle fills the bucket to its burst, not beyond
    assert sum(limiter.acquire(1) == 0.0 for _ in range(10)) == 5


def test_message_debt_is_paid_before_the_next_grant(clock: Clock) -> None:
    limiter = LocalRateLimiter(requests_per_second=0, messages_per_second=100, clock=clock)
    assert limiter.acquire(1000) == 0.0  # the bucket of 50 was full: 950 owed
    assert limiter.acquire(1000) == pytest.approx((50 + 950) / 100)
    clock.advance(10)
    assert limiter.acquire(1000) == 0.0
    # over the 10 s, 2000 messages went out at 100/s with a burst of 50 (plus one batch)
    assert limiter.stats()["messages_granted"] == 2000


def test_penalty_block_factor_and_recovery_are_exact(clock: Clock) -> None:
    limiter = LocalRateLimiter(requests_per_second=20, messages_per_second=1000, clock=clock)
    assert limiter.penalise(8) == 8.0
    assert limiter.acquire(1) == 8.0
    clock.advance(8)
    stats = limiter.stats()
    assert stats["factor"] == pytest.approx(0.7)
    assert stats["blocked_for"] == 0.0
    # the buckets restart empty, at 70 % of the rate: one request in 1/14 s
    assert limiter.acquire(1) == pytest.approx(1 / 14)
    clock.advance(5)  # +0.05 per 5 s
    assert limiter.stats()["factor"] == pytest.approx(0.75)
    assert limiter.stats()["requests_per_second"] == pytest.approx(15.0)
    clock.advance(26)
    assert limiter.stats()["factor"] == 1.0
    assert limiter.stats()["messages_per_second"] == 1000.0


def test_recovery_starts_from_the_factor_reached(clock: Clock) -> None:
    limiter = LocalRateLimiter(requests_per_second=20, messages_per_second=0, clock=clock)
    limiter.penalise(0)
    clock.advance(10)  # 0.7 -> 0.8
    limiter.penalise(1)
    assert limiter.stats()["factor"] == pytest.approx(0.56)
    clock.advance(1 + 5)
    assert limiter.stats()["factor"] == pytest.approx(0.61)


def test_lower_factor_shrinks_the_burst_too(clock: Clock) -> None:
    slow = Adaptation(backoff=0.5, recovery_interval=1e9)
    limiter = LocalRateLimiter(
        requests_per_second=20, messages_per_second=0, adaptation=slow, clock=clock
    )
    limiter.penalise(1)
    clock.advance(60)
    assert sum(limiter.acquire(1) == 0.0 for _ in range(20)) == 5  # half of the burst of 10


def test_odd_retry_after_values(clock: Clock) -> None:
    limiter = LocalRateLimiter(
        requests_per_second=1, messages_per_second=0, retry_after_ceiling=60, clock=clock
    )
    assert limiter.penalise(float("nan")) == 5.0
    assert limiter.penalise(float("inf")) == 60.0
    fresh = LocalRateLimiter(requests_per_second=1, messages_per_second=0, clock=clock)
    assert fresh.penalise(-3) == 0.0
    assert fresh.stats()["rate_limited"] == 1


def test_spare_capacity_waits_out_the_demand_mark_exactly(clock: Clock) -> None:
    from workers.ratelimit import DEMAND_GRACE_SECONDS

    limiter = LocalRateLimiter(
        requests_per_second=2, messages_per_second=0, burst_requests=1, clock=clock
    )
    assert limiter.acquire(1000) == 0.0
    assert limiter.acquire(1000) == pytest.approx(0.5)  # refused: busy until 0.5 s + grace
    assert limiter.acquire_spare() == float("inf")
    clock.advance(0.5 + DEMAND_GRACE_SECONDS - 0.01)
    assert limiter.acquire_spare() == float("inf")
    clock.advance(0.02)
    assert limiter.acquire_spare() == 0.0  # nobody refused since: the token is spare
    assert limiter.acquire_spare() == pytest.approx(0.5)  # a spare refusal is a plain wait
    clock.advance(0.5)
    assert limiter.acquire_spare() == 0.0  # and marks nothing busy
    stats = limiter.stats()
    assert stats["grants"] == 3 and stats["messages_granted"] == 1000


def test_a_refused_poll_does_not_mark_the_account_busy(clock: Clock) -> None:
    limiter = LocalRateLimiter(
        requests_per_second=2, messages_per_second=0, burst_requests=1, clock=clock
    )
    assert limiter.acquire(0) == 0.0  # a STOP poll
    assert limiter.acquire(0) == pytest.approx(0.5)  # another, refused: no send is waiting
    clock.advance(0.5)
    assert limiter.acquire_spare() == 0.0


def test_a_burst_of_one_request_spaces_grants_a_full_interval_apart(clock: Clock) -> None:
    """However the asks fall (callers late, early, bunched), a burst of one request never
    grants two requests closer than 1/R: the even pacing a provider with little burst
    tolerance needs (docs/rate-limit.md)."""
    import itertools
    import random

    limiter = LocalRateLimiter(
        requests_per_second=5, messages_per_second=0, burst_requests=1, clock=clock
    )
    draw = random.Random(13)
    granted = []
    for _ in range(2000):
        clock.advance(draw.choice([0.0, 0.01, 0.05, 0.19, 0.2, 0.21, 0.7]))
        if limiter.acquire(1000) == 0.0:
            granted.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert len(granted) > 500 and min(gaps) >= 0.2 - 1e-9

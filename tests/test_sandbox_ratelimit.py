"""The sandbox's token bucket, on a hand-driven clock."""

from __future__ import annotations

from sandbox.ratelimit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_refills_at_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, capacity=4, clock=clock)
    assert [bucket.take().allowed for _ in range(5)] == [True, True, True, True, False]
    refused = bucket.take()
    assert (refused.retry_after, refused.remaining, refused.limit) == (1, 0, 4)
    assert refused.headers()["Retry-After"] == "1"
    clock.now += 0.5  # one token back
    assert bucket.take().allowed and not bucket.take().allowed
    clock.now += 60  # never more than the capacity
    assert sum(bucket.take().allowed for _ in range(10)) == 4


def test_retry_after_rounds_up_for_slow_rates() -> None:
    bucket = TokenBucket(rate=0.1, capacity=1, clock=Clock())
    assert bucket.take().allowed
    refused = bucket.take()
    assert (refused.allowed, refused.retry_after, refused.reset_seconds) == (False, 10, 10)
    assert "Retry-After" not in TokenBucket(rate=1, capacity=1, clock=Clock()).take().headers()


def test_limiter_is_per_account_and_off_at_zero() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, capacity=1, clock=clock)
    assert limiter.take("a") is not None and limiter.take("a").allowed is False  # type: ignore[union-attr]
    decision = limiter.take("b")
    assert decision is not None and decision.allowed
    assert RateLimiter(rate=0.0, capacity=1).take("a") is None

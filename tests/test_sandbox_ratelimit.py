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


def test_arrival_jitter_delays_each_request_before_the_bucket_counts_it() -> None:
    """Like a provider's, the sandbox's bucket counts a request when it arrives; with
    arrival_jitter_ms each request spends up to that long on the way, so requests sent
    at exactly the limit arrive bunched and some are refused."""
    import time

    import httpx

    from sandbox.config import SandboxConfig
    from sandbox.server import start_in_thread

    config = SandboxConfig(rate_limit_rps=5, rate_limit_burst=1, arrival_jitter_ms=400, seed=3)
    sandbox = start_in_thread(config)
    try:
        auth = (config.username, config.api_key)
        codes, took = [], []
        with httpx.Client(base_url=sandbox.base_url, auth=auth, timeout=10) as client:
            start = time.monotonic()
            for i in range(20):  # one request every 0.2 s, sent on time
                time.sleep(max(0.0, start + i * 0.2 - time.monotonic()))
                sent = time.monotonic()
                codes.append(client.get("/account").status_code)
                took.append(time.monotonic() - sent)
        assert sum(took) / len(took) > 0.1  # 0-400 ms on the way: 200 ms on average
        assert 429 in codes and codes.count(200) >= 10
    finally:
        sandbox.stop()

"""A token bucket per account: the sandbox's request rate limit.

ClickSend publishes no rate; it answers 429 with ``Retry-After`` and ``x-ratelimit-*``
headers when a client goes too fast, which is what this reproduces.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Decision:
    """The bucket's answer to one request."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int  # seconds until one request would be allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        """The headers ClickSend sends with it."""
        values = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset_seconds),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after)
        return values


@dataclass
class TokenBucket:
    """``rate`` tokens per second up to ``capacity``; one request takes one token."""

    rate: float
    capacity: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.capacity
        self.stamp = self.clock()

    def take(self) -> Decision:
        """Take a token if there is one."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        missing_full = self.capacity - self.tokens
        retry = 0 if allowed else max(1, math.ceil((1.0 - self.tokens) / self.rate))
        return Decision(
            allowed=allowed,
            limit=int(self.capacity),
            remaining=int(self.tokens),
            reset_seconds=math.ceil(missing_full / self.rate) if self.rate > 0 else 0,
            retry_after=retry,
        )


class RateLimiter:
    """One bucket per account name; rate 0 means unlimited."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, account: str) -> Decision | None:
        """The decision for one request of ``account``; None when there is no limit."""
        if self.rate <= 0:
            return None
        bucket = self._buckets.get(account)
        if bucket is None:
            bucket = self._buckets[account] = TokenBucket(self.rate, self.capacity, self.clock)
        return bucket.take()

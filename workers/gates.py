"""Provider requests other than sends (polls, look-ups, cancels, template reads) under
the account's shared rate limit.

The provider counts every request against one limit, so a receipt poll that ignores
our limiter takes a turn a send was promised, and that send gets the 429. Sends take
their turn in ``Dispatcher`` (with their message count); every other request goes
through a client gated by a ``LimiterGate``:

- ``LimiterGate(limiter)``: waits its turn like a send (STOP replies, history
  look-ups, cancels), up to ``max_wait`` seconds;
- ``LimiterGate(limiter, spare=True)``: takes only capacity no sender is waiting for
  (receipt polls): while the account is saturated it holds the request back at once.

A 429 on a gated request blocks the whole account, exactly as one on a send does.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from clicksend.errors import HeldBackError
from workers.ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass
class LimiterGate:
    limiter: RateLimiter
    spare: bool = False
    # A poll or look-up waits this long for its turn at most, then gives up for now.
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def before_request(self, where: str) -> None:
        waited = 0.0
        while True:
            try:
                wait = self.limiter.acquire_spare() if self.spare else self.limiter.acquire(0)
            except RedisError as exc:
                # No answer from the shared limiter is no permission to send.
                raise HeldBackError(f"{where}: held back, rate limiter unavailable") from exc
            if wait <= 0:
                return
            if math.isinf(wait):
                raise HeldBackError(f"{where}: held back, the account is busy sending")
            if waited + wait > self.max_wait:
                raise HeldBackError(f"{where}: held back, no turn within {self.max_wait:g} s")
            self.sleep(wait)
            waited += wait

    def rate_limited(self, retry_after: float | None) -> None:
        try:
            self.limiter.penalise(retry_after)
        except RedisError as exc:
            log.warning("rate limiter unavailable, 429 not shared with other workers: %s", exc)

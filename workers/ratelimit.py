"""The global, adaptive rate limit of one provider account.

Every worker on every machine asks the same limiter before each provider request:
``acquire(messages)`` either grants the request (taking one request and ``messages``
messages from two token buckets, both or neither) or says how long to wait. A 429 from
the provider calls ``penalise(retry_after)``: every worker of the account stops until
Retry-After has passed, and the rate drops to a fraction of the configured one, then
climbs back slowly (additive increase) while no 429 is seen.

Requests that can wait for idle capacity (receipt polls) use ``acquire_spare()``: it is
refused while any send (a request with messages) has lately been refused, so bookkeeping
never takes a turn a send wanted.

``RedisRateLimiter`` keeps the state in Redis (one atomic Lua script, Redis's clock);
``LocalRateLimiter`` is its in-process twin for the embedded mode. docs/rate-limit.md
explains the choice of defaults.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import redis

from config.settings import Settings
from workers.ratelimit_lua import RATE_LIMIT_SCRIPT

log = logging.getLogger(__name__)

# What the script's replies hold: strings (bytes unless the client decodes) and integers.
_Reply = bytes | str | int

# Default burst, in seconds of the configured rate: enough to absorb the gaps of callers
# that are busy sending, well under the burst of a provider bucket of the same rate
# (see docs/rate-limit.md).
BURST_SECONDS = 0.5
# Redis keys live this long after the last use (on top of any block, recovery or refill).
IDLE_TTL_SECONDS = 3600.0
# After its wait has passed, a refused sender still counts as wanting capacity this long:
# the time it takes to come back and ask again, with room to spare.
DEMAND_GRACE_SECONDS = 1.0
# Float rounding must not turn "wait exactly this long" into another tiny wait.
_EPS = 1e-9


class RateLimiter(Protocol):
    """What the dispatcher needs from a rate limiter."""

    def acquire(self, messages: int) -> float:
        """0.0 if one request of ``messages`` messages may go now (capacity taken),
        else the seconds to wait before asking again (nothing taken)."""
        ...

    def acquire_spare(self) -> float:
        """Like ``acquire(0)``, but ``math.inf`` while senders are waiting for capacity:
        the caller should not wait, but come back later."""
        ...

    def penalise(self, retry_after: float | None) -> float:
        """A 429 was seen: block the account, lower the rate; return the block (s)."""
        ...

    def stats(self) -> dict[str, float]:
        """Factor, effective rates, block left, 429s seen, grants."""
        ...


@dataclass(frozen=True)
class Adaptation:
    """How a limiter reacts to a 429 and recovers afterwards.

    After a 429 the rate factor is multiplied by ``backoff`` (never below
    ``min_factor``); from the end of the block it climbs by ``recovery_step`` every
    ``recovery_interval`` seconds without a 429, back to 1.0.
    """

    backoff: float = 0.7
    min_factor: float = 0.1
    recovery_step: float = 0.05
    recovery_interval: float = 5.0
    default_retry_after: float = 5.0

    def __post_init__(self) -> None:
        _check_range("backoff", self.backoff, low=0.0, high=1.0, low_open=True)
        _check_range("min_factor", self.min_factor, low=0.0, high=1.0, low_open=True)
        _check_range("recovery_step", self.recovery_step, low=0.0, low_open=True)
        _check_range("recovery_interval", self.recovery_interval, low=0.0, low_open=True)
        _check_range("default_retry_after", self.default_retry_after, low=0.0)

    @property
    def recovery_per_second(self) -> float:
        return self.recovery_step / self.recovery_interval


@dataclass(frozen=True)
class Limits:
    """The configured limit of one account; a rate of 0 means unlimited."""

    requests_per_second: float
    messages_per_second: float
    burst_requests: float
    burst_messages: float
    retry_after_ceiling: float

    @classmethod
    def build(
        cls,
        requests_per_second: float,
        messages_per_second: float,
        burst_requests: float | None = None,
        burst_messages: float | None = None,
        retry_after_ceiling: float = 120.0,
    ) -> Limits:
        """Check the numbers and fill in default bursts."""
        _check_range("requests_per_second", requests_per_second, low=0.0)
        _check_range("messages_per_second", messages_per_second, low=0.0)
        _check_range("retry_after_ceiling", retry_after_ceiling, low=0.0, low_open=True)
        if burst_requests is None:
            burst_requests = default_burst(requests_per_second)
        if burst_messages is None:
            burst_messages = default_burst(messages_per_second)
        _check_range("burst_requests", burst_requests, low=1.0)
        _check_range("burst_messages", burst_messages, low=1.0)
        return cls(
            float(requests_per_second),
            float(messages_per_second),
            float(burst_requests),
            float(burst_messages),
            float(retry_after_ceiling),
        )


def default_burst(rate: float) -> float:
    """Half a second of the rate, at least one unit."""
    return max(1.0, rate * BURST_SECONDS)


def _check_range(
    name: str,
    value: float,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
) -> None:
    ok = isinstance(value, int | float) and math.isfinite(value) and value <= high
    ok = ok and (value > low if low_open else value >= low)
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        upper = f" and <= {high:g}" if math.isfinite(high) else ""
        raise ValueError(f"{name} must be a finite number {bound}{upper}, got {value!r}")


def _check_messages(messages: int) -> int:
    if isinstance(messages, bool) or not isinstance(messages, int) or messages < 0:
        raise ValueError(f"messages must be an integer >= 0, got {messages!r}")
    return messages


def block_seconds(
    retry_after: float | None, limits: Limits, adaptation: Adaptation, account: str
) -> float:
    """The block a 429 asks for: Retry-After, or the default, capped at the ceiling."""
    if retry_after is None or math.isnan(retry_after):
        return min(adaptation.default_retry_after, limits.retry_after_ceiling)
    if retry_after > limits.retry_after_ceiling:
        log.warning(
            "account %s: Retry-After %.1f s is above the ceiling; blocking %.1f s instead",
            account,
            retry_after,
            limits.retry_after_ceiling,
        )
        return limits.retry_after_ceiling
    return max(0.0, float(retry_after))


def _log_penalty(
    account: str, blocked: float, factor: float, new_episode: bool, adaptation: Adaptation
) -> None:
    if new_episode:
        log.info(
            "account %s: 429, all workers paused %.1f s; rate factor now %.2f "
            "(climbs %.2f per %g s without a 429)",
            account,
            blocked,
            factor,
            adaptation.recovery_step,
            adaptation.recovery_interval,
        )
    else:
        log.debug("account %s: another 429 in the same episode, paused %.1f s", account, blocked)


def _stats(
    limits: Limits,
    adaptation: Adaptation,
    *,
    factor: float,
    blocked_for: float,
    grants: float,
    messages: float,
    rate_limited: float,
    request_tokens: float,
    message_tokens: float,
) -> dict[str, float]:
    return {
        "factor": factor,
        "requests_per_second": limits.requests_per_second * factor,
        "messages_per_second": limits.messages_per_second * factor,
        "configured_requests_per_second": limits.requests_per_second,
        "configured_messages_per_second": limits.messages_per_second,
        "recovery_per_second": adaptation.recovery_per_second,
        "blocked_for": blocked_for,
        "rate_limited": rate_limited,
        "grants": grants,
        "messages_granted": messages,
        "request_tokens": request_tokens,
        "message_tokens": message_tokens,
    }


class RedisRateLimiter:
    """The limit shared by every worker of an account, kept in Redis.

    Any number of instances (processes, machines) with the same ``account`` and
    ``key_prefix`` share one limit, one block and one adaptive factor.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        account: str,
        requests_per_second: float,
        messages_per_second: float,
        burst_requests: float | None = None,
        burst_messages: float | None = None,
        retry_after_ceiling: float = 120.0,
        key_prefix: str = "clarion:",
        adaptation: Adaptation | None = None,
    ) -> None:
        if not account:
            raise ValueError("account must not be empty")
        self.account = account
        self.limits = Limits.build(
            requests_per_second,
            messages_per_second,
            burst_requests,
            burst_messages,
            retry_after_ceiling,
        )
        self.adaptation = adaptation or Adaptation()
        self.key = f"{key_prefix}ratelimit:{account}:state"
        self._client = client
        self._script = client.register_script(RATE_LIMIT_SCRIPT)

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter(account={self.account!r}, key={self.key!r}, limits={self.limits!r})"
        )

    def _call(self, op: str, amount: float) -> list[_Reply]:
        lim, ad = self.limits, self.adaptation
        args = [
            op,
            repr(lim.requests_per_second),
            repr(lim.messages_per_second),
            repr(lim.burst_requests),
            repr(lim.burst_messages),
            repr(float(amount)),
            repr(ad.backoff),
            repr(ad.min_factor),
            repr(ad.recovery_step),
            repr(ad.recovery_interval),
            repr(IDLE_TTL_SECONDS),
            repr(DEMAND_GRACE_SECONDS),
        ]
        return cast(list[_Reply], self._script(keys=[self.key], args=args))

    def acquire(self, messages: int) -> float:
        granted, wait = self._call("acquire", _check_messages(messages))
        return 0.0 if int(granted) else float(wait)

    def acquire_spare(self) -> float:
        granted, wait = self._call("spare", 0)
        if int(granted):
            return 0.0
        return math.inf if float(wait) < 0 else float(wait)

    def penalise(self, retry_after: float | None) -> float:
        block = block_seconds(retry_after, self.limits, self.adaptation, self.account)
        blocked, factor, new_episode = self._call("penalise", block)
        blocked_s, factor_f = float(blocked), float(factor)
        _log_penalty(self.account, blocked_s, factor_f, bool(int(new_episode)), self.adaptation)
        return blocked_s

    def stats(self) -> dict[str, float]:
        values = [float(v) for v in self._call("stats", 0)]
        factor, blocked_for, grants, messages, rate_limited, rt, mt = values
        return _stats(
            self.limits,
            self.adaptation,
            factor=factor,
            blocked_for=blocked_for,
            grants=grants,
            messages=messages,
            rate_limited=rate_limited,
            request_tokens=rt,
            message_tokens=mt,
        )


@dataclass
class _Bucket:
    """The state and rules of ``RATE_LIMIT_SCRIPT``, in Python (keep the two in step)."""

    limits: Limits
    adaptation: Adaptation
    rt: float | None = None
    mt: float | None = None
    ts: float | None = None
    f0: float | None = None
    t0: float = 0.0
    bu: float = -math.inf
    dw: float = -math.inf  # senders are waiting until then
    grants: int = 0
    msgs: int = 0
    n429: int = 0

    def factor(self, now: float) -> float:
        if self.f0 is None:
            return 1.0
        since = now - self.t0
        if since <= 0:
            return self.f0
        ad = self.adaptation
        return min(1.0, self.f0 + ad.recovery_step * since / ad.recovery_interval)

    def _level(self, tokens: float | None, rate: float, cap: float, now: float) -> float:
        if tokens is None:
            return cap
        elapsed = max(0.0, now - (self.ts if self.ts is not None else now))
        return min(cap, tokens + elapsed * rate)

    def _caps(self, f: float) -> tuple[float, float]:
        return max(1.0, self.limits.burst_requests * f), max(1.0, self.limits.burst_messages * f)

    def blocked_for(self, now: float) -> float:
        return max(0.0, self.bu - now)

    def acquire(self, now: float, messages: int, *, spare: bool = False) -> float:
        blocked = self.blocked_for(now)
        if blocked > 0:
            return blocked
        if spare and self.dw > now:
            return math.inf
        f = self.factor(now)
        req_cap, msg_cap = self._caps(f)
        req_rate, msg_rate = (
            self.limits.requests_per_second * f,
            self.limits.messages_per_second * f,
        )
        wait, rt, mt = 0.0, None, None
        if req_rate > 0:
            rt = self._level(self.rt, req_rate, req_cap, now)
            if rt < 1 - _EPS:
                wait = max(wait, (1 - rt) / req_rate)
        if msg_rate > 0:
            mt = self._level(self.mt, msg_rate, msg_cap, now)
            need = min(messages, msg_cap)
            if mt < need - _EPS:
                wait = max(wait, (need - mt) / msg_rate)
        if wait > 0:
            if not spare and messages > 0:
                self.dw = now + wait + DEMAND_GRACE_SECONDS
            return wait
        self.ts, self.grants, self.msgs = now, self.grants + 1, self.msgs + messages
        if rt is not None:
            self.rt = rt - 1
        if mt is not None:
            self.mt = mt - messages
        return 0.0

    def penalise(self, now: float, block: float) -> tuple[float, float, bool]:
        until = max(self.bu, now + block)
        new_episode = self.blocked_for(now) <= 0
        f0 = self.f0 if self.f0 is not None else 1.0
        if new_episode:
            f0 = max(self.adaptation.min_factor, self.factor(now) * self.adaptation.backoff)
        self.bu, self.f0, self.t0, self.ts = until, f0, until, until
        self.rt, self.mt, self.n429 = 0.0, 0.0, self.n429 + 1
        return until - now, f0, new_episode

    def snapshot(self, now: float) -> dict[str, float]:
        f = self.factor(now)
        req_cap, msg_cap = self._caps(f)
        lim = self.limits
        rt = (
            self._level(self.rt, lim.requests_per_second * f, req_cap, now)
            if lim.requests_per_second
            else 0.0
        )
        mt = (
            self._level(self.mt, lim.messages_per_second * f, msg_cap, now)
            if lim.messages_per_second
            else 0.0
        )
        return _stats(
            lim,
            self.adaptation,
            factor=f,
            blocked_for=self.blocked_for(now),
            grants=float(self.grants),
            messages=float(self.msgs),
            rate_limited=float(self.n429),
            request_tokens=rt,
            message_tokens=mt,
        )


class LocalRateLimiter:
    """The same limit inside one process (the embedded mode), shared by its threads."""

    def __init__(
        self,
        *,
        requests_per_second: float,
        messages_per_second: float,
        burst_requests: float | None = None,
        burst_messages: float | None = None,
        retry_after_ceiling: float = 120.0,
        account: str = "local",
        adaptation: Adaptation | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self.limits = Limits.build(
            requests_per_second,
            messages_per_second,
            burst_requests,
            burst_messages,
            retry_after_ceiling,
        )
        self.adaptation = adaptation or Adaptation()
        self._bucket = _Bucket(self.limits, self.adaptation)
        self._clock = clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalRateLimiter(account={self.account!r}, limits={self.limits!r})"

    def acquire(self, messages: int) -> float:
        messages = _check_messages(messages)
        with self._lock:
            return self._bucket.acquire(self._clock(), messages)

    def acquire_spare(self) -> float:
        with self._lock:
            return self._bucket.acquire(self._clock(), 0, spare=True)

    def penalise(self, retry_after: float | None) -> float:
        block = block_seconds(retry_after, self.limits, self.adaptation, self.account)
        with self._lock:
            blocked, factor, new_episode = self._bucket.penalise(self._clock(), block)
        _log_penalty(self.account, blocked, factor, new_episode, self.adaptation)
        return blocked

    def stats(self) -> dict[str, float]:
        with self._lock:
            return self._bucket.snapshot(self._clock())


# A provider counts requests when they arrive, and the time from our grant to the arrival
# varies (building a 1000-message body, a worker's turn on a busy CPU, the network), so
# requests granted exactly at its rate and burst can arrive bunched and overflow its
# bucket (the condition B + R*J <= Bp of docs/rate-limit.md). The request limit can be
# granted with a margin under the configured rate (CLARION_RATE_LIMIT_MARGIN) and with a
# burst of CLARION_RATE_LIMIT_BURST_SECONDS of it (at least one request). The defaults
# (no margin, half a second) measured best: bench/RESULTS.md, "The limit as the provider
# sees it".
def provider_request_limits(
    requests_per_second: float, margin: float, burst_seconds: float
) -> tuple[float, float | None]:
    """(rate, burst) the limiter grants requests at for a provider limit of
    ``requests_per_second`` (0: unlimited, and the burst left to the default)."""
    if requests_per_second <= 0:
        return requests_per_second, None
    return requests_per_second * (1 - margin), max(1.0, requests_per_second * burst_seconds)


def limiter_from_settings(settings: Settings, account: str) -> RateLimiter:
    """The Redis limiter when ``redis_url`` is set (scaled mode), else the local one."""
    rps, burst = provider_request_limits(
        settings.rate_limit_requests_per_second,
        settings.rate_limit_margin,
        settings.rate_limit_burst_seconds,
    )
    mps = settings.rate_limit_messages_per_second
    ceiling = settings.retry_after_ceiling_seconds
    if settings.redis_url:
        return RedisRateLimiter(
            redis.Redis.from_url(settings.redis_url),
            account=account,
            key_prefix=settings.redis_key_prefix,
            requests_per_second=rps,
            messages_per_second=mps,
            burst_requests=burst,
            retry_after_ceiling=ceiling,
        )
    return LocalRateLimiter(
        account=account,
        requests_per_second=rps,
        messages_per_second=mps,
        burst_requests=burst,
        retry_after_ceiling=ceiling,
    )

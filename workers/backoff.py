"""Retry later or give up: the one decision for a message whose try failed transiently
(a send that failed, an unknown outcome that the look-up did not find), with exponential
backoff and full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from campaigns.claims import Failed, Later

if TYPE_CHECKING:
    from config.settings import Settings


def backoff_seconds(
    attempt: int, base: float, ceiling: float, rng: random.Random | None = None
) -> float:
    """Delay before attempt number ``attempt + 1`` (attempt counts from 1)."""
    exp = _nominal(attempt, base, ceiling)
    # Jitter spreads a burst of failed batches so they don't all retry in the same second.
    return (rng or random).uniform(exp / 2, exp)


def next_try(now: datetime, attempt: int, base: float, ceiling: float) -> datetime:
    return now + timedelta(seconds=backoff_seconds(attempt, base, ceiling))


def _nominal(attempt: int, base: float, ceiling: float) -> float:
    return min(ceiling, base * (2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries a message gets and how long it waits between them."""

    max_attempts: int
    base_seconds: float
    max_seconds: float


def retry_policy(settings: Settings) -> RetryPolicy:
    """``CLARION_MAX_ATTEMPTS`` and the backoff bounds."""
    return RetryPolicy(
        settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds
    )


def retry_or_give_up(
    policy: RetryPolicy,
    row_id: int,
    attempts_before: int,
    now: datetime,
    reason: str,
    *,
    can_retry: bool = True,
) -> Later | Failed:
    """After a failed try: back to pending after a backoff, or failed once the tries are
    used up (or when ``can_retry`` is false)."""
    attempts = attempts_before + 1
    if can_retry and attempts < policy.max_attempts:
        when = next_try(now, attempts, policy.base_seconds, policy.max_seconds)
        return Later(row_id, attempts, when, reason)
    return Failed(
        row_id, attempts, f"{reason} (after {attempts} attempts)" if can_retry else reason
    )


def outage_window(policy: RetryPolicy) -> float:
    """How long a run's requests may fail to connect before it pauses: the waits of a
    message's whole retry schedule (without jitter), as when each was a try."""
    return sum(
        _nominal(k, policy.base_seconds, policy.max_seconds) for k in range(1, policy.max_attempts)
    )


def outage_retry(policy: RetryPolicy, now: datetime, unreachable_for: float) -> datetime:
    """When to try again, ``unreachable_for`` seconds into an outage: the retry schedule's
    next wait after the waits that already fit in that time."""
    base, ceiling = policy.base_seconds, policy.max_seconds
    attempt, waited = 1, 0.0
    while waited + (wait := _nominal(attempt, base, ceiling)) <= unreachable_for:
        waited += wait
        attempt += 1
    return next_try(now, attempt, base, ceiling)

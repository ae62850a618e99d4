"""Exponential backoff with full jitter for transient send failures."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def backoff_seconds(
    attempt: int, base: float, ceiling: float, rng: random.Random | None = None
) -> float:
    """Delay before attempt number ``attempt + 1`` (attempt counts from 1)."""
    exp = min(ceiling, base * (2 ** max(0, attempt - 1)))
    # Jitter spreads a burst of failed batches so they don't all retry in the same second.
    return (rng or random).uniform(exp / 2, exp)


def next_try(now: datetime, attempt: int, base: float, ceiling: float) -> datetime:
    return now + timedelta(seconds=backoff_seconds(attempt, base, ceiling))

"""Faults on demand: which send requests fail with a 500, are accepted and then dropped, or
are held longer than a client waits and then accepted."""

from __future__ import annotations

import random
from enum import Enum


class Fault(Enum):
    """What happens to one send request."""

    NONE = "none"
    ERROR = "error"  # answered 500, nothing accepted
    DROP = "drop"  # accepted and recorded, then the connection closes with no answer
    # held for a while (a provider that is slow, not silent), then accepted and answered
    HOLD = "hold"


class FaultPicker:
    """Chooses a fault per send request with the configured shares.

    A seed makes the sequence of choices repeatable, so tests can count on it.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Start a fresh sequence of choices."""
        self._random = random.Random(seed)

    def pick(self, error_rate: float, drop_rate: float, hold_rate: float = 0.0) -> Fault:
        """One draw: ERROR with probability error_rate, DROP with drop_rate, HOLD with
        hold_rate, else NONE."""
        if error_rate <= 0 and drop_rate <= 0 and hold_rate <= 0:
            return Fault.NONE
        draw = self._random.random()
        if draw < error_rate:
            return Fault.ERROR
        if draw < error_rate + drop_rate:
            return Fault.DROP
        if draw < error_rate + drop_rate + hold_rate:
            return Fault.HOLD
        return Fault.NONE

    def chance(self, rate: float) -> bool:
        """True with probability ``rate`` (receipt failures)."""
        return rate > 0 and self._random.random() < rate

    def delay(self, most: float) -> float:
        """A delay drawn evenly from 0..``most`` (arrival jitter)."""
        return self._random.uniform(0.0, most) if most > 0 else 0.0

"""workers.backoff: the one "retry later or give up" decision of dispatch and reconcile."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from campaigns.claims import Failed, Later
from workers.backoff import RetryPolicy, backoff_seconds, retry_or_give_up

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3, base_seconds=10.0, max_seconds=25.0)


def test_a_try_left_goes_back_to_pending_after_a_backoff() -> None:
    decision = retry_or_give_up(POLICY, 7, 1, NOW, "provider status THROTTLED")
    assert isinstance(decision, Later) and (decision.id, decision.attempts) == (7, 2)
    assert decision.error == "provider status THROTTLED"
    # Second attempt: 10 * 2 = 20 s, jittered over its upper half.
    assert decision.not_before is not None
    assert NOW + timedelta(seconds=10) <= decision.not_before <= NOW + timedelta(seconds=20)


def test_the_last_try_gives_up_and_says_after_how_many() -> None:
    decision = retry_or_give_up(POLICY, 7, 2, NOW, "connection failed")
    assert decision == Failed(7, 3, "connection failed (after 3 attempts)")


def test_no_retry_possible_gives_up_at_once() -> None:
    decision = retry_or_give_up(POLICY, 7, 0, NOW, "no history", can_retry=False)
    assert decision == Failed(7, 1, "no history")


def test_backoff_grows_to_its_ceiling() -> None:
    rng = random.Random(1)
    assert all(5.0 <= backoff_seconds(1, 10.0, 25.0, rng) <= 10.0 for _ in range(50))
    assert all(12.5 <= backoff_seconds(9, 10.0, 25.0, rng) <= 25.0 for _ in range(50))

"""workers.backoff: the one "retry later or give up" decision of dispatch and reconcile."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from campaigns.claims import Failed, Later
from workers.backoff import (
    RetryPolicy,
    backoff_seconds,
    outage_retry,
    outage_window,
    retry_or_give_up,
)

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


def test_an_outage_lasts_as_long_as_a_messages_retry_schedule() -> None:
    # The waits before the 2nd and 3rd try: 10 s and then 20 s.
    assert outage_window(POLICY) == 30.0
    assert outage_window(RetryPolicy(max_attempts=5, base_seconds=2.0, max_seconds=300.0)) == 30.0
    # One try only: the first refused connection pauses.
    assert outage_window(RetryPolicy(max_attempts=1, base_seconds=2.0, max_seconds=9.0)) == 0.0


def test_the_waits_in_an_outage_grow_as_a_messages_would() -> None:
    def wait(unreachable_for: float) -> float:
        return (outage_retry(POLICY, NOW, unreachable_for) - NOW).total_seconds()

    # First refused connection: the first try's wait (10 s, jittered over its upper half).
    assert all(5.0 <= wait(0.0) <= 10.0 for _ in range(20))
    # Ten seconds in, the first wait has passed: the second's (20 s).
    assert all(10.0 <= wait(10.0) <= 20.0 for _ in range(20))
    # Past both, the ceiling (25 s).
    assert all(12.5 <= wait(40.0) <= 25.0 for _ in range(20))

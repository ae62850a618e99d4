"""The beat scheduler sends the tick only while it holds the leader lock."""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest

from config.settings import reset_settings
from workers.app import app
from workers.beat import LeaderScheduler, beat_schedule


class FakeLock:
    def __init__(self) -> None:
        self.held = False
        self.released = False

    def hold(self) -> bool:
        return self.held

    def release(self) -> None:
        self.released = True


def test_only_the_leader_sends_the_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARION_SCHEDULER_TICK_SECONDS", "0.2")
    reset_settings()
    lock = FakeLock()
    sent: list[str] = []

    def record(self: LeaderScheduler, entry: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(entry.task)

    app.conf.beat_schedule = beat_schedule()  # what run_beat sets
    with (
        mock.patch("workers.beat.leader_lock", return_value=lock),
        mock.patch.object(LeaderScheduler, "apply_async", record),
    ):
        scheduler = LeaderScheduler(app=app, lazy=True)
        scheduler.setup_schedule()
        for _ in range(3):  # a standby: the entry falls due, nothing is sent
            assert scheduler.tick() <= 0.2
            time.sleep(0.25)
        assert sent == []
        lock.held = True
        for _ in range(3):
            scheduler.tick()
            time.sleep(0.25)
        assert sent and set(sent) == {"clarion.tick"}
        scheduler.close()
    assert lock.released
    assert beat_schedule()["clarion-tick"]["options"] == {"expires": 5.0}

"""A history look-up that meets the provider's 429 part-way resumes where it stopped,
so a long walk under a tight limit still finishes."""

from __future__ import annotations

import httpx

from clicksend.client import ClickSendClient
from clicksend.pagination import paginate
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread
from workers.gates import LimiterGate
from workers.ratelimit import LocalRateLimiter
from workers.reconcile import _look_up


def test_paginate_can_start_at_a_later_page() -> None:
    pages = {1: [1, 2], 2: [3, 4], 3: [5]}

    def fetch(page: int, size: int) -> dict[str, object]:
        return {"data": [{"n": n} for n in pages[page]], "current_page": page, "last_page": 3}

    assert [e["n"] for e in paginate(fetch, dict, limit=15, first_page=2)] == [3, 4, 5]


def test_a_look_up_under_a_tight_provider_limit_finishes() -> None:
    handle = start_in_thread(SandboxConfig(api_key="lookup-key"))
    try:
        phones = [f"+1201555{i:04d}" for i in range(450)]  # five pages of history
        messages = [{"to": p, "body": "hi", "custom_string": "run-k"} for p in phones]
        with ClickSendClient(handle.base_url, "sandbox", "lookup-key", timeout=10) as client:
            client.send_sms(messages)
            # Two requests a second, one at a time: the walk meets 429s part-way.
            handle.state.reconfigure({"rate_limit_rps": 2, "rate_limit_burst": 1})
            limiter = LocalRateLimiter(account="k", requests_per_second=0, messages_per_second=0)
            gated = client.gated(LimiterGate(limiter))
            found = _look_up(gated, "sms", "run-k", set(phones), 0, 2**31)
        assert set(found) == set(phones)
        stats = httpx.get(f"{handle.root_url}/_sandbox/stats", timeout=10).json()
        assert stats["rate_limited"] > 0  # the walk did meet the limit
    finally:
        handle.stop()

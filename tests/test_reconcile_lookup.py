"""A history look-up that meets the provider's 429 part-way resumes where it stopped,
so a long walk under a tight limit still finishes."""

from __future__ import annotations

import httpx

from clicksend.client import ClickSendClient
from clicksend.pagination import paginate
from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread
from tests.seed import us_numbers
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


def test_numbers_the_provider_never_took_are_asked_for_by_number_not_by_walking_the_window() -> (
    None
):
    """A dead worker's batch the provider never took: its rows are not in a window that
    holds a whole run's history (300,000 messages: 3,000 pages). Walking to the window's
    end for them took longer than the run; asking for each number costs a request each."""
    handle = start_in_thread(SandboxConfig(api_key="lookup-key"))
    try:
        sent = us_numbers(20_000)  # 200 pages of history
        never = us_numbers(4, start=100_000)
        late = sent[-3:]  # found on the walk's last page: asked for by number first
        with ClickSendClient(handle.base_url, "sandbox", "lookup-key", timeout=30) as client:
            for i in range(0, len(sent), 1000):
                client.send_sms(
                    [{"to": p, "body": "hi", "custom_string": "run-k"} for p in sent[i : i + 1000]]
                )
            before = _history_requests(handle)
            found = _look_up(client, "sms", "run-k", {*never, *late}, 0, 2**31)
        assert set(found) == set(late)
        assert all(found[p].custom_string == "run-k" for p in late)
        wanted = len(never) + len(late)
        # At most a page walked per number still missing, then one request per number.
        assert _history_requests(handle) - before <= 2 * wanted
    finally:
        handle.stop()


def test_a_number_asked_for_matches_only_the_runs_own_message() -> None:
    """The number had messages of other runs in the window: only this run's counts."""
    handle = start_in_thread(SandboxConfig(api_key="lookup-key"))
    try:
        filler = us_numbers(2000)
        target = us_numbers(1, start=100_000)[0]
        with ClickSendClient(handle.base_url, "sandbox", "lookup-key", timeout=30) as client:
            client.send_sms([{"to": target, "body": "a", "custom_string": "run-other"}])
            for i in range(0, len(filler), 1000):
                client.send_sms(
                    [
                        {"to": p, "body": "hi", "custom_string": "run-x"}
                        for p in filler[i : i + 1000]
                    ]
                )
            assert _look_up(client, "sms", "run-k", {target}, 0, 2**31) == {}
            client.send_sms([{"to": target, "body": "b", "custom_string": "run-k"}])
            found = _look_up(client, "sms", "run-k", {target}, 0, 2**31)
        assert found[target].custom_string == "run-k"
    finally:
        handle.stop()


def _history_requests(handle: SandboxHandle) -> int:
    stats = httpx.get(f"{handle.root_url}/_sandbox/stats", timeout=10).json()
    return int(stats["requests_by_endpoint"].get("GET /v3/sms/history", 0))

"""Sandbox faults and limits: 429 with its headers, a share of 500s, accept-then-drop,
run-time configuration, stats and reset."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread

AUTH = ("sandbox", "sandbox-key")
AU = "+61412345678"


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig()


@pytest.fixture
def sandbox(config: SandboxConfig) -> Iterator[SandboxHandle]:
    handle = start_in_thread(config)
    yield handle
    handle.stop()


def _send(sandbox: SandboxHandle, client: httpx.Client, key: str) -> httpx.Response:
    body = {"messages": [{"to": AU, "body": f"hello {key}", "custom_string": key}]}
    return client.post(f"{sandbox.base_url}/sms/send", json=body, auth=AUTH)


@pytest.mark.parametrize("config", [SandboxConfig(rate_limit_rps=0.01, rate_limit_burst=2)])
def test_rate_limit_answers_429_with_headers(sandbox: SandboxHandle) -> None:
    with httpx.Client(timeout=30) as client:
        first, second, third = (_send(sandbox, client, f"k{i}") for i in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert third.json()["response_code"] == "TOO_MANY_REQUESTS"
    assert int(third.headers["Retry-After"]) >= 1
    assert third.headers["x-ratelimit-remaining"] == "0"
    assert int(third.headers["ratelimit-reset"]) >= int(third.headers["Retry-After"])
    stats = httpx.get(f"{sandbox.root_url}/_sandbox/stats").json()
    assert stats["rate_limited"] == 1
    ledger = httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()
    assert ledger["accepted_total"] == 2  # the refused request accepted nothing


@pytest.mark.parametrize("config", [SandboxConfig(error_rate=0.3, seed=7)])
def test_share_of_500s_accepts_nothing(sandbox: SandboxHandle) -> None:
    with httpx.Client(timeout=30) as client:
        answers = [_send(sandbox, client, f"k{i}") for i in range(100)]
    failed = [a for a in answers if a.status_code == 500]
    succeeded = [a for a in answers if a.status_code == 200]
    assert len(failed) + len(succeeded) == 100
    assert 15 <= len(failed) <= 45
    assert failed[0].json()["response_code"] == "INTERNAL_SERVER_ERROR"
    ledger = httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()
    assert ledger["accepted_total"] == len(succeeded)
    assert httpx.get(f"{sandbox.root_url}/_sandbox/stats").json()["errors_injected"] == len(failed)


def test_same_seed_gives_same_fault_sequence() -> None:
    outcomes = []
    for _ in range(2):
        handle = start_in_thread(SandboxConfig(error_rate=0.5, seed=11))
        try:
            with httpx.Client(timeout=30) as client:
                outcomes.append([_send(handle, client, f"k{i}").status_code for i in range(20)])
        finally:
            handle.stop()
    assert outcomes[0] == outcomes[1] and {200, 500} == set(outcomes[0])


@pytest.mark.parametrize("config", [SandboxConfig(drop_rate=1.0)])
def test_accept_then_drop_closes_without_answer_but_ledger_counts(sandbox: SandboxHandle) -> None:
    messages = [{"to": f"+6141234567{i}", "body": "hi", "custom_string": "run-9"} for i in range(5)]
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            f"{sandbox.base_url}/sms/send", json={"messages": messages}, auth=AUTH, timeout=30
        )
    ledger = httpx.get(
        f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": "run-9"}
    ).json()
    assert ledger["accepted_total"] == 5 and ledger["duplicates"] == []
    assert ledger["by_custom_string"] == {"run-9": 5}
    history = httpx.get(f"{sandbox.base_url}/sms/history", auth=AUTH).json()["data"]
    assert history["total"] == 5  # a client can find what was accepted
    assert httpx.get(f"{sandbox.root_url}/_sandbox/stats").json()["drops_injected"] == 1


@pytest.mark.parametrize("config", [SandboxConfig(hold_rate=1.0, hold_seconds=1.5)])
def test_held_request_is_accepted_after_the_client_gave_up(sandbox: SandboxHandle) -> None:
    messages = [{"to": f"+6141234567{i}", "body": "hi", "custom_string": "run-h"} for i in range(3)]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{sandbox.base_url}/sms/send", json={"messages": messages}, auth=AUTH, timeout=0.3
        )
    ledger_url = f"{sandbox.root_url}/_sandbox/ledger"
    # The provider is still working on it: nothing in the ledger or the history yet.
    assert httpx.get(ledger_url, params={"custom_string": "run-h"}).json()["accepted_total"] == 0
    assert httpx.get(f"{sandbox.base_url}/sms/history", auth=AUTH).json()["data"]["total"] == 0
    time.sleep(2.0)
    ledger = httpx.get(ledger_url, params={"custom_string": "run-h"}).json()
    assert ledger["accepted_total"] == 3 and ledger["duplicates"] == []
    assert httpx.get(f"{sandbox.base_url}/sms/history", auth=AUTH).json()["data"]["total"] == 3
    assert httpx.get(f"{sandbox.root_url}/_sandbox/stats").json()["holds_injected"] == 1


def test_faults_change_at_run_time(sandbox: SandboxHandle) -> None:
    admin = f"{sandbox.root_url}/_sandbox/config"
    changed = httpx.post(admin, json={"drop_rate": 1.0}).json()
    assert changed["changed"] == ["drop_rate"]
    with httpx.Client(timeout=30) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            _send(sandbox, client, "a")
        httpx.post(admin, json={"drop_rate": 0.0, "error_rate": 1.0})
        assert _send(sandbox, client, "b").status_code == 500
        httpx.post(admin, json={"error_rate": 0, "rate_limit_rps": 0.01, "rate_limit_burst": 1})
        assert _send(sandbox, client, "c").status_code == 200
        assert _send(sandbox, client, "d").status_code == 429
    ledger = httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()
    assert sorted(ledger["by_custom_string"]) == ["a", "c"]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"api_key": "x"}, "api_key"), ({"error_rate": "lots"}, "error_rate"), ({"nope": 1}, "nope")],
)
def test_bad_config_change_is_refused_naming_the_field(
    sandbox: SandboxHandle, change: dict[str, object], field: str
) -> None:
    answer = httpx.post(f"{sandbox.root_url}/_sandbox/config", json=change)
    assert answer.status_code == 400 and answer.json()["response_msg"].startswith(field)
    assert sandbox.state.config.api_key == "sandbox-key"


def test_stats_and_reset(sandbox: SandboxHandle) -> None:
    with httpx.Client(timeout=30) as client:
        for i in range(3):
            _send(sandbox, client, f"k{i}")
        client.get(f"{sandbox.base_url}/account", auth=AUTH)
    stats = httpx.get(f"{sandbox.root_url}/_sandbox/stats").json()
    assert stats["requests_by_endpoint"]["POST /v3/sms/send"] == 3
    assert stats["requests_by_endpoint"]["GET /v3/account"] == 1
    assert stats["messages_accepted"] == 3
    assert stats["max_requests_in_1s"] >= 1
    assert httpx.post(f"{sandbox.root_url}/_sandbox/reset").status_code == 200
    assert httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()["accepted_total"] == 0


def test_ledger_reports_duplicates(sandbox: SandboxHandle) -> None:
    with httpx.Client(timeout=30) as client:
        _send(sandbox, client, "k1")
        _send(sandbox, client, "k1")
        _send(sandbox, client, "k2")
    ledger = httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()
    assert ledger["duplicates"] == [f"k1|{AU}"]
    assert ledger["pairs"] == {f"k1|{AU}": 2, f"k2|{AU}": 1}
    assert ledger["by_recipient"] == {AU: 3}
    only = httpx.get(f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": "k2"}).json()
    assert only["accepted_total"] == 1 and only["duplicates"] == []


def test_concurrent_clients_lose_nothing(sandbox: SandboxHandle) -> None:
    def client(number: int) -> list[str]:
        ids = []
        with httpx.Client(timeout=60) as http:
            for batch in range(10):
                messages = [
                    {
                        "to": f"+614123{number}{batch}{i:03d}",
                        "body": "x",
                        "custom_string": f"c{number}",
                    }
                    for i in range(50)
                ]
                answer = http.post(
                    f"{sandbox.base_url}/sms/send", json={"messages": messages}, auth=AUTH
                )
                ids += [m["message_id"] for m in answer.json()["data"]["messages"]]
        return ids

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = [i for chunk in pool.map(client, range(4)) for i in chunk]
    assert len(ids) == len(set(ids)) == 2000
    ledger = httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()
    assert ledger["accepted_total"] == 2000 and ledger["duplicates"] == []
    assert ledger["by_custom_string"] == {f"c{n}": 500 for n in range(4)}

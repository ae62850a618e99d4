"""The SkillBoss front of the sandbox: Bearer auth, ClickSend operations under
/clicksend/v3, and POST /v1/run models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread

BEARER = {"Authorization": "Bearer sandbox-skillboss-key"}


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread()
    yield handle
    handle.stop()


def _run(
    sandbox: SandboxHandle, body: dict[str, Any], headers: dict[str, str] = BEARER
) -> httpx.Response:
    return httpx.post(f"{sandbox.root_url}/v1/run", json=body, headers=headers, timeout=30)


def test_clicksend_operations_under_the_hub_path(sandbox: SandboxHandle) -> None:
    base = f"{sandbox.root_url}/clicksend/v3"
    account = httpx.get(f"{base}/account", headers=BEARER)
    assert account.status_code == 200 and account.json()["response_code"] == "SUCCESS"
    sent = httpx.post(
        f"{base}/sms/send",
        json={
            "messages": [{"to": "+15551234567", "body": "x"}, {"to": "+61412345678", "body": "y"}]
        },
        headers=BEARER,
    ).json()
    assert [m["status"] for m in sent["data"]["messages"]] == ["INVALID_RECIPIENT", "SUCCESS"]
    assert httpx.get(f"{base}/account", auth=("sandbox", "sandbox-key")).status_code == 401
    assert (
        httpx.get(f"{base}/account", headers={"Authorization": "Bearer wrong"}).status_code == 401
    )
    # the ClickSend path does not take the hub's key
    assert httpx.get(f"{sandbox.base_url}/account", headers=BEARER).status_code == 401


def test_notify_send_renders_template_and_is_in_the_ledger(sandbox: SandboxHandle) -> None:
    base = f"{sandbox.root_url}/clicksend/v3"
    template = httpx.post(
        f"{base}/sms/templates",
        json={"template_name": "promo", "body": "Hi {name}!"},
        headers=BEARER,
    ).json()["data"]
    answer = _run(
        sandbox,
        {
            "model": "prelude/notify-send",
            "inputs": {"template_id": "promo", "to": "+61412345678", "variables": {"name": "Ann"}},
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "success"
    assert body["result"]["to"] == "+61412345678" and body["result"]["template_id"] == "promo"
    history = httpx.get(f"{base}/sms/history", headers=BEARER).json()["data"]["data"]
    assert [h["body"] for h in history] == ["Hi Ann!"]
    ledger = httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()
    assert ledger["by_recipient"] == {"+61412345678": 1}
    by_id = _run(
        sandbox,
        {
            "model": "prelude/notify-send",
            "inputs": {
                "template_id": str(template["template_id"]),
                "to": "+61412345679",
                "variables": {"name": "Bo"},
            },
        },
    )
    assert by_id.json()["status"] == "success"


def test_verify_send_and_check(sandbox: SandboxHandle) -> None:
    target = {"type": "phone_number", "value": "+61412345678"}
    sent = _run(sandbox, {"model": "prelude/verify-send", "inputs": {"target": target}}).json()
    assert sent["status"] == "success" and sent["result"]["status"] == "success"
    wrong = _run(
        sandbox, {"model": "prelude/verify-check", "inputs": {"target": target, "code": "000000"}}
    )
    assert wrong.json()["result"]["status"] == "failure"
    right = _run(
        sandbox, {"model": "prelude/verify-check", "inputs": {"target": target, "code": "123456"}}
    )
    assert right.json()["result"]["status"] == "success"
    again = _run(
        sandbox, {"model": "prelude/verify-check", "inputs": {"target": target, "code": "123456"}}
    )
    assert again.json()["result"]["status"] == "expired_or_not_found"


def test_discover_lists_the_models(sandbox: SandboxHandle) -> None:
    answer = _run(sandbox, {"discover": True}).json()
    assert answer["status"] == "success"
    assert {m["id"] for m in answer["result"]["models"]} == {
        "prelude/notify-send",
        "prelude/verify-send",
        "prelude/verify-check",
    }


def test_errors(sandbox: SandboxHandle) -> None:
    unauthorized = _run(sandbox, {"discover": True}, headers={"Authorization": "Bearer nope"})
    assert unauthorized.status_code == 401 and unauthorized.json()["status"] == "error"
    unknown = _run(sandbox, {"model": "prelude/teleport", "inputs": {}})
    assert unknown.status_code == 400 and "model" in unknown.json()["error"]["message"]
    missing = _run(sandbox, {"model": "prelude/notify-send", "inputs": {"to": "+61412345678"}})
    assert missing.status_code == 400 and "template_id" in missing.json()["error"]["message"]
    invalid = _run(
        sandbox,
        {
            "model": "prelude/notify-send",
            "inputs": {"template_id": "t", "to": "+1555", "variables": {}},
        },
    )
    assert invalid.status_code == 400 and "INVALID_RECIPIENT" in invalid.json()["error"]["message"]


def test_hub_rate_limit_answers_in_hub_shape() -> None:
    handle = start_in_thread(SandboxConfig(rate_limit_rps=0.01, rate_limit_burst=1))
    try:
        assert _run(handle, {"discover": True}).status_code == 200
        limited = _run(handle, {"discover": True})
        assert limited.status_code == 429 and limited.json()["status"] == "error"
        assert int(limited.headers["Retry-After"]) >= 1
    finally:
        handle.stop()

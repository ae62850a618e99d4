"""Sandbox SMS: per-message statuses, parts and prices, balance, throttle, schedule and
cancel, history (q, dates, paging), templates, auth and bad bodies."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread

AUTH = ("sandbox", "sandbox-key")
AU = "+61412345678"  # valid, not a test number: charged


@pytest.fixture
def config() -> SandboxConfig:
    """Overridden by parametrisation where a test needs other settings."""
    return SandboxConfig()


@pytest.fixture
def sandbox(config: SandboxConfig) -> Iterator[SandboxHandle]:
    handle = start_in_thread(config)
    yield handle
    handle.stop()


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, auth=AUTH, timeout=30) as client:
        yield client


def send(api: httpx.Client, *messages: dict[str, Any]) -> dict[str, Any]:
    answer = api.post("/sms/send", json={"messages": list(messages)})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_partial_failure_is_http_200_with_per_message_statuses(api: httpx.Client) -> None:
    data = send(
        api,
        {"to": AU, "body": "hello", "custom_string": "k1"},
        {"to": "+1555123", "body": "hello"},
        {"to": "+61422222222", "body": "   "},
    )
    assert data["response_code"] == "SUCCESS"
    ok, invalid, empty = data["data"]["messages"]
    assert [m["status"] for m in (ok, invalid, empty)] == [
        "SUCCESS",
        "INVALID_RECIPIENT",
        "EMPTY_MESSAGE",
    ]
    assert len(ok["message_id"]) == 36 and ok["message_id"] == ok["message_id"].upper()
    assert ok["message_price"] == "0.0250" and ok["message_parts"] == 1
    assert isinstance(ok["schedule"], int)
    for blocked in (invalid, empty):
        assert (blocked["schedule"], blocked["message_parts"], blocked["message_price"]) == (
            "",
            0,
            "0.0000",
        )
    assert data["data"]["total_price"] == 0.025
    assert (data["data"]["queued_count"], data["data"]["blocked_count"]) == (1, 2)


def test_test_numbers_succeed_without_charge(api: httpx.Client) -> None:
    numbers = ["+61411111111", "+61422222222", "+14055555555", "+447777777777"]
    data = send(api, *({"to": n, "body": "hi"} for n in numbers))
    assert [m["status"] for m in data["data"]["messages"]] == ["SUCCESS"] * 4
    assert api.get("/account").json()["data"]["balance"] == "1000000.000000"


def test_parts_and_prices_follow_gsm_and_ucs2(api: httpx.Client) -> None:
    data = send(
        api,
        {"to": AU, "body": "a" * 161},
        {"to": AU, "body": "ж" * 71},
        {"to": AU, "body": "a" * 2000},
    )
    parts = [m["message_parts"] for m in data["data"]["messages"]]
    prices = [m["message_price"] for m in data["data"]["messages"]]
    assert parts == [2, 2, 6]
    assert prices == ["0.0500", "0.0500", "0.1500"]
    balance = Decimal(api.get("/account").json()["data"]["balance"])
    assert balance == Decimal("1000000") - Decimal("0.25")


def test_price_request_charges_nothing_and_records_nothing(
    api: httpx.Client, sandbox: SandboxHandle
) -> None:
    answer = api.post("/sms/price", json={"messages": [{"to": AU, "body": "a" * 200}]}).json()
    assert answer["data"]["total_price"] == 0.05
    assert answer["data"]["messages"][0]["message_parts"] == 2
    assert httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()["accepted_total"] == 0
    assert api.get("/account").json()["data"]["balance"] == "1000000.000000"


@pytest.mark.parametrize("config", [SandboxConfig(balance=Decimal("0.06"))])
def test_insufficient_credit_once_balance_cannot_cover(api: httpx.Client) -> None:
    data = send(api, *({"to": AU, "body": f"m{i}"} for i in range(4)))
    statuses = [m["status"] for m in data["data"]["messages"]]
    assert statuses == ["SUCCESS", "SUCCESS", "INSUFFICIENT_CREDIT", "INSUFFICIENT_CREDIT"]
    assert api.get("/account").json()["data"]["balance"] == "0.010000"


@pytest.mark.parametrize("config", [SandboxConfig(throttle_window_seconds=60)])
def test_same_body_to_same_number_is_throttled(api: httpx.Client, sandbox: SandboxHandle) -> None:
    first = send(api, {"to": AU, "body": "same"}, {"to": AU, "body": "other"})
    again = send(api, {"to": AU, "body": "same"}, {"to": "+61412345679", "body": "same"})
    assert [m["status"] for m in first["data"]["messages"]] == ["SUCCESS", "SUCCESS"]
    assert [m["status"] for m in again["data"]["messages"]] == ["THROTTLED", "SUCCESS"]
    assert (
        httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 61}).status_code == 200
    )
    later = send(api, {"to": AU, "body": "same"})
    assert later["data"]["messages"][0]["status"] == "SUCCESS"


def test_invalid_sender_and_schedule(api: httpx.Client) -> None:
    data = send(
        api,
        {"to": AU, "body": "x", "from": "WayTooLongSenderName"},
        {"to": AU, "body": "x", "schedule": "tomorrow"},
    )
    assert [m["status"] for m in data["data"]["messages"]] == [
        "INVALID_SENDER_ID",
        "INVALID_SCHEDULE",
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"to": AU, "body": "x"}] * 1001}, "at most 1000"),
        ({"messages": [{"to": AU, "body": "x"}, "nope"]}, "messages[1]"),
    ],
)
def test_unusable_body_is_400(api: httpx.Client, body: dict[str, Any], fragment: str) -> None:
    answer = api.post("/sms/send", json=body)
    assert answer.status_code == 400
    assert answer.json()["response_code"] == "BAD_REQUEST"
    assert fragment in answer.json()["response_msg"]


def test_not_json_is_400(api: httpx.Client) -> None:
    answer = api.post("/sms/send", content=b"{nope", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and "body" in answer.json()["response_msg"]


def test_bad_credentials_get_clicksend_401(sandbox: SandboxHandle) -> None:
    for auth in [("sandbox", "wrong"), ("other", "sandbox-key")]:
        answer = httpx.get(f"{sandbox.base_url}/account", auth=auth)
        assert answer.status_code == 401
        assert answer.json()["response_code"] == "UNAUTHORIZED"
        assert "sandbox-key" not in answer.text
    assert httpx.get(f"{sandbox.base_url}/account").status_code == 401


def test_scheduled_message_waits_then_is_sent(api: httpx.Client, sandbox: SandboxHandle) -> None:
    future = sandbox.state.now_int() + 3600
    message = send(api, {"to": AU, "body": "later", "schedule": future})["data"]["messages"][0]
    assert message["schedule"] == future
    history = api.get("/sms/history").json()["data"]["data"]
    assert history[0]["status"] == "Scheduled"
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 3601})
    assert api.get("/sms/history").json()["data"]["data"][0]["status"] in {"Sent", "Delivered"}


def test_cancel_one_and_cancel_all_by_custom_string(
    api: httpx.Client, sandbox: SandboxHandle
) -> None:
    future = sandbox.state.now_int() + 3600
    sent = send(
        api,
        {"to": AU, "body": "a", "schedule": future, "custom_string": "run-1"},
        {"to": "+61412345679", "body": "b", "schedule": future, "custom_string": "run-1"},
        {"to": "+61412345670", "body": "c", "schedule": future, "custom_string": "run-2"},
        {"to": "+61412345671", "body": "d", "custom_string": "run-1"},  # already sent
    )["data"]["messages"]
    balance_before = Decimal(api.get("/account").json()["data"]["balance"])
    one = api.put(f"/sms/{sent[2]['message_id']}/cancel")
    assert one.status_code == 200
    assert api.put(f"/sms/{sent[2]['message_id']}/cancel").status_code == 400  # not scheduled now
    assert api.put("/sms/NO-SUCH-ID/cancel").status_code == 404
    count = api.put("/sms/cancel-all", json={"custom_string": "run-1"}).json()["data"]["count"]
    assert count == 2  # the sent one cannot be cancelled; run-2's was cancelled already
    balance_after = Decimal(api.get("/account").json()["data"]["balance"])
    assert balance_after - balance_before == Decimal("0.0750")  # the three cancelled are refunded
    ledger = httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()
    assert ledger["accepted_total"] == 4 and ledger["cancelled_total"] == 3
    assert "run-2|+61412345670" in ledger["cancelled"]
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 7200})
    statuses = {m["to"]: m["status"] for m in api.get("/sms/history").json()["data"]["data"]}
    assert statuses[AU] == "Cancelled" and statuses["+61412345671"] == "Delivered"
    receipt = api.get(f"/sms/receipts/{sent[0]['message_id']}").json()["data"]
    assert receipt["status_code"] == 301


def test_cancel_all_without_filter_cancels_every_scheduled(
    api: httpx.Client, sandbox: SandboxHandle
) -> None:
    future = sandbox.state.now_int() + 600
    send(
        api,
        *(
            {"to": AU, "body": f"{i}", "schedule": future, "custom_string": f"k{i}"}
            for i in range(3)
        ),
    )
    assert api.put("/sms/cancel-all", json={}).json()["data"]["count"] == 3


def _history(api: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = api.get("/sms/history", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["data"])


def test_history_q_filters_to_from_status_message_id_but_not_custom_string(
    api: httpx.Client,
) -> None:
    sent = send(
        api,
        {"to": AU, "body": "a", "from": "Shop", "custom_string": "key-1"},
        {"to": "+61412345679", "body": "b", "custom_string": "key-2"},
    )["data"]["messages"]
    assert [m["to"] for m in _history(api, q=f"to:{AU}")["data"]] == [AU]
    unescaped = api.get(f"/sms/history?q=to:{AU}").json()["data"]  # "+" read as a space
    assert [m["to"] for m in unescaped["data"]] == [AU]
    assert [m["to"] for m in _history(api, q="from:Shop")["data"]] == [AU]
    only = _history(api, q=f"message_id:{sent[1]['message_id']}")["data"]
    assert [m["message_id"] for m in only] == [sent[1]["message_id"]]
    assert _history(api, q="status:sent")["total"] == 2
    assert _history(api, q="status:delivered")["total"] == 0
    # custom_string is not searched: the filter is ignored, every message comes back
    assert _history(api, q="custom_string:key-1")["total"] == 2
    # a bare word looks in to/from/status/message_id, never custom_string
    assert _history(api, q="key-1")["total"] == 0


def test_history_dates_are_unix_seconds_inclusive(
    api: httpx.Client, sandbox: SandboxHandle
) -> None:
    first = send(api, {"to": AU, "body": "a"})["data"]["messages"][0]["date"]
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 100})
    second = send(api, {"to": AU, "body": "b"})["data"]["messages"][0]["date"]
    assert _history(api, date_from=first, date_to=first)["total"] == 1
    assert _history(api, date_from=first + 1)["total"] == 1
    assert _history(api, date_to=second)["total"] == 2
    assert _history(api, date_from=second + 1)["total"] == 0
    assert api.get("/sms/history", params={"date_from": "yesterday"}).status_code == 400


def test_history_pagination_fields_and_limits(api: httpx.Client) -> None:
    send(api, *({"to": AU, "body": f"m{i}", "custom_string": f"k{i}"} for i in range(40)))
    first = _history(api)
    assert (first["total"], first["per_page"], first["current_page"], first["last_page"]) == (
        40,
        15,
        1,
        3,
    )
    assert (first["from"], first["to"], first["prev_page_url"]) == (1, 15, None)
    assert "page=2" in first["next_page_url"]
    last = _history(api, page=3)
    assert (last["from"], last["to"], last["next_page_url"]) == (31, 40, None)
    assert "page=2" in last["prev_page_url"]
    assert _history(api, limit=5)["per_page"] == 15  # held to 15..100
    assert _history(api, limit=500)["per_page"] == 100
    seen = [m["custom_string"] for page in (1, 2, 3) for m in _history(api, page=page)["data"]]
    assert sorted(seen) == sorted(f"k{i}" for i in range(40))
    assert _history(api, page=9)["data"] == []


def test_templates_crud(api: httpx.Client) -> None:
    created = api.post(
        "/sms/templates", json={"template_name": "Welcome", "body": "Hi {name}"}
    ).json()["data"]
    template_id = created["template_id"]
    assert isinstance(template_id, int)
    listed = api.get("/sms/templates").json()["data"]
    assert [t["template_name"] for t in listed["data"]] == ["Welcome"]
    updated = api.put(f"/sms/templates/{template_id}", json={"body": "Hello {name}"}).json()["data"]
    assert updated == {
        "template_id": template_id,
        "template_name": "Welcome",
        "body": "Hello {name}",
    }
    assert api.delete(f"/sms/templates/{template_id}").status_code == 200
    assert api.get(f"/sms/templates/{template_id}").status_code == 404
    bad = api.post("/sms/templates", json={"template_name": "x"})
    assert bad.status_code == 400 and "body" in bad.json()["response_msg"]


def test_send_to_a_contact_list(api: httpx.Client) -> None:
    list_id = api.post("/lists", json={"list_name": "VIP"}).json()["data"]["list_id"]
    for number in (AU, "+61412345679"):
        api.post(f"/lists/{list_id}/contacts", json={"phone_number": number})
    data = send(api, {"list_id": list_id, "body": "hi all"})
    assert sorted(m["to"] for m in data["data"]["messages"]) == [AU, "+61412345679"]
    assert all(m["list_id"] == str(list_id) for m in data["data"]["messages"])

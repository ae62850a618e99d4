"""Sandbox MMS and voice: statuses, parts, prices, history, receipts, cancel, languages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.server import SandboxHandle, start_in_thread

AUTH = ("sandbox", "sandbox-key")
AU = "+61412345678"
JPG = "https://example.com/picture.jpg"


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread()
    yield handle
    handle.stop()


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, auth=AUTH, timeout=30) as client:
        yield client


def _statuses(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [m["status"] for m in answer.json()["data"]["messages"]]


def test_mms_statuses(api: httpx.Client) -> None:
    messages: list[dict[str, Any]] = [
        {"to": AU, "body": "pic", "subject": "Sale"},
        {"to": AU, "body": "pic"},
        {"to": "+1555", "body": "pic", "subject": "Sale"},
    ]
    answer = api.post("/mms/send", json={"media_file": JPG, "messages": messages})
    assert _statuses(answer) == ["SUCCESS", "SUBJECT_REQUIRED", "INVALID_RECIPIENT"]
    first = answer.json()["data"]["messages"][0]
    assert (first["message_price"], first["_media_file_url"], first["subject"]) == (
        "0.3000",
        JPG,
        "Sale",
    )
    bad_media = api.post(
        "/mms/send", json={"media_file": "https://example.com/a.pdf", "messages": messages[:1]}
    )
    assert _statuses(bad_media) == ["INVALID_MEDIA_FILE"]
    no_media = api.post("/mms/send", json={"messages": messages[:1]})
    assert _statuses(no_media) == ["INVALID_MEDIA_FILE"]
    history = api.get("/mms/history").json()["data"]
    assert history["total"] == 1 and history["data"][0]["subject"] == "Sale"


def test_mms_price_and_long_body_truncated(api: httpx.Client, sandbox: SandboxHandle) -> None:
    answer = api.post(
        "/mms/price",
        json={"media_file": JPG, "messages": [{"to": AU, "body": "x" * 2000, "subject": "S"}]},
    )
    assert answer.json()["data"]["total_price"] == 0.3
    assert len(answer.json()["data"]["messages"][0]["body"]) == 1500
    assert httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()["accepted_total"] == 0


def test_voice_statuses_parts_and_languages(api: httpx.Client) -> None:
    langs = api.get("/voice/lang").json()["data"]
    codes = {lang["code"]: lang["gender"] for lang in langs}
    assert "en-us" in codes and isinstance(codes["en-us"], list) and isinstance(codes["ja-jp"], str)
    messages = [
        {"to": AU, "body": "a" * 301, "voice": "female", "lang": "en-au"},
        {"to": AU, "body": "hi", "voice": "female", "lang": "xx-yy"},
        {"to": AU, "body": "hi", "voice": "robot", "lang": "en-au"},
        {"to": AU, "body": "hi", "voice": "male", "lang": "ja-jp"},  # ja-jp has no male voice
        {"to": AU, "body": "a" * 5000, "require_input": 1, "machine_detection": 1},
    ]
    answer = api.post("/voice/send", json={"messages": messages})
    assert _statuses(answer) == [
        "SUCCESS",
        "INVALID_LANG",
        "INVALID_VOICE",
        "INVALID_VOICE",
        "SUCCESS",
    ]
    first, *_, last = answer.json()["data"]["messages"]
    assert (first["message_parts"], first["message_price"]) == (2, "0.1400")
    assert (last["message_parts"], last["require_input"], last["machine_detection"]) == (4, 1, 1)
    assert api.get("/voice/history").json()["data"]["total"] == 2


def test_voice_schedule_cancel_and_receipts(api: httpx.Client, sandbox: SandboxHandle) -> None:
    future = sandbox.state.now_int() + 600
    sent = api.post(
        "/voice/send",
        json={
            "messages": [
                {"to": AU, "body": "a", "schedule": future, "custom_string": "v1"},
                {"to": AU, "body": "b", "schedule": future, "custom_string": "v2"},
                {"to": AU, "body": "c", "custom_string": "v3"},
            ]
        },
    ).json()["data"]["messages"]
    assert api.put(f"/voice/{sent[0]['message_id']}/cancel").status_code == 200
    assert api.put("/voice/cancel-all", json={}).json()["data"]["count"] == 1
    assert api.put(f"/sms/{sent[1]['message_id']}/cancel").status_code == 404  # a voice id
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 1200})
    receipts = api.get("/voice/receipts").json()["data"]["data"]
    codes = {r["message_id"]: r["status_code"] for r in receipts}
    assert codes == {
        sent[0]["message_id"]: "301",
        sent[1]["message_id"]: "301",
        sent[2]["message_id"]: "201",
    }
    assert api.get("/sms/receipts").json()["data"]["total"] == 0

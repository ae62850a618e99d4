"""Sandbox receipts (poll, mark read, push with retries) and inbound replies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread

AUTH = ("sandbox", "sandbox-key")
AU = "+61412345678"


class Receiver:
    """A tiny receipt endpoint: answers 500 to the first ``failures`` posts, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.posts: list[dict[str, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                with receiver.lock:
                    receiver.posts.append(form | {"_content_type": self.headers["Content-Type"]})
                    failing = len(receiver.posts) <= receiver.failures
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/receipts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} pushes, got {len(self.posts)}")


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread(SandboxConfig(receipt_delay_seconds=30))
    yield handle
    handle.stop()


def _send(sandbox: SandboxHandle, *messages: dict[str, Any]) -> list[dict[str, Any]]:
    answer = httpx.post(
        f"{sandbox.base_url}/sms/send", json={"messages": list(messages)}, auth=AUTH
    )
    return list(answer.json()["data"]["messages"])


def _advance(sandbox: SandboxHandle, seconds: float) -> None:
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": seconds})


def test_receipts_appear_after_the_delay_and_can_be_marked_read(sandbox: SandboxHandle) -> None:
    sent = _send(
        sandbox, {"to": AU, "body": "a", "custom_string": "k1"}, {"to": "+61411111111", "body": "b"}
    )
    api = httpx.Client(base_url=sandbox.base_url, auth=AUTH)
    assert api.get("/sms/receipts").json()["data"]["total"] == 0
    pending = api.get(f"/sms/receipts/{sent[0]['message_id']}").json()["data"]
    assert pending["status_code"] == 200
    _advance(sandbox, 31)
    receipts = api.get("/sms/receipts").json()["data"]
    assert receipts["total"] == 2
    by_id = {r["message_id"]: r for r in receipts["data"]}
    first = by_id[sent[0]["message_id"]]
    assert (first["status_code"], first["custom_string"], first["message_type"]) == (
        201,
        "k1",
        "sms",
    )
    assert api.get(f"/sms/receipts/{sent[0]['message_id']}").json()["data"]["status_code"] == 201
    assert api.put("/sms/receipts-read", json={}).status_code == 200
    assert api.get("/sms/receipts").json()["data"]["total"] == 0
    history = api.get("/sms/history").json()["data"]["data"]
    assert {h["status"] for h in history} == {"Delivered"}
    ledger = httpx.get(f"{sandbox.root_url}/_sandbox/ledger").json()
    assert ledger["delivered_total"] == 2
    api.close()


def test_failure_share_gives_301_receipts() -> None:
    handle = start_in_thread(SandboxConfig(receipt_delay_seconds=5, receipt_failure_rate=1.0))
    try:
        sent = _send(handle, {"to": AU, "body": "a"})
        _advance(handle, 6)
        receipt = httpx.get(
            f"{handle.base_url}/sms/receipts/{sent[0]['message_id']}", auth=AUTH
        ).json()
        assert receipt["data"]["status_code"] == 301
    finally:
        handle.stop()


def test_receipts_are_pushed_form_encoded_and_retried_on_non_200() -> None:
    receiver = Receiver(failures=2)
    handle = start_in_thread(
        SandboxConfig(receipt_delay_seconds=0, receipt_url=receiver.url, receipt_retry_seconds=0.05)
    )
    try:
        sent = _send(handle, {"to": AU, "body": "a", "custom_string": "key-7"})
        posts = receiver.wait_for(3)
        assert [p["message_id"] for p in posts] == [sent[0]["message_id"]] * 3
        last = posts[-1]
        assert last["_content_type"].startswith("application/x-www-form-urlencoded")
        assert (last["status_code"], last["custom_string"], last["message_type"]) == (
            "201",
            "key-7",
            "sms",
        )
        time.sleep(0.3)  # no further pushes once one was answered 200
        assert len(receiver.posts) == 3
    finally:
        handle.stop()
        receiver.server.shutdown()


def test_push_gives_up_after_max_attempts() -> None:
    receiver = Receiver(failures=100)
    handle = start_in_thread(
        SandboxConfig(
            receipt_delay_seconds=0,
            receipt_url=receiver.url,
            receipt_retry_seconds=0.02,
            receipt_max_attempts=3,
        )
    )
    try:
        _send(handle, {"to": AU, "body": "a"})
        receiver.wait_for(3)
        time.sleep(0.3)
        assert len(receiver.posts) == 3
    finally:
        handle.stop()
        receiver.server.shutdown()


def test_inbound_reply_is_linked_to_the_message_it_answers(sandbox: SandboxHandle) -> None:
    sent = _send(
        sandbox, {"to": AU, "body": "Sale!", "from": "+61481000001", "custom_string": "run-3"}
    )
    injected = httpx.post(f"{sandbox.root_url}/_sandbox/inbound", json={"from": AU, "body": "STOP"})
    assert injected.status_code == 200
    api = httpx.Client(base_url=sandbox.base_url, auth=AUTH)
    inbound = api.get("/sms/inbound").json()["data"]
    assert inbound["total"] == 1
    reply = inbound["data"][0]
    assert (reply["from"], reply["body"], reply["to"]) == (AU, "STOP", "+61481000001")
    assert reply["original_message_id"] == sent[0]["message_id"]
    assert (reply["custom_string"], reply["_keyword"]) == ("run-3", "stop")
    assert api.put("/sms/inbound-read", json={}).status_code == 200
    assert api.get("/sms/inbound").json()["data"]["total"] == 0
    api.close()


def test_inbound_injection_needs_a_sender(sandbox: SandboxHandle) -> None:
    answer = httpx.post(f"{sandbox.root_url}/_sandbox/inbound", json={"body": "STOP"})
    assert answer.status_code == 400 and answer.json()["response_msg"].startswith("from")

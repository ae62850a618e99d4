"""Request bodies and answers go through orjson, with the bytes httpx's own JSON would
carry and the values the standard library would read."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clicksend.client import ClickSendClient
from clicksend.http import decode_json, encode_json

BASE = "https://rest.clicksend.test/v3"


def _httpx_body(value: Any) -> bytes:
    return httpx.Request("POST", BASE, json=value).content


@pytest.mark.parametrize(
    "value",
    [
        {"messages": [{"to": "+61411111111", "body": "Grüße, 20% off — 😀", "schedule": 0}]},
        {"list_name": 'quote " and \\ backslash\n', "nested": {"a": [1, 2.5, None, True]}},
        {},
        [],
        {"big": 2**70},  # past orjson's 64 bits: the standard library writes it
        {1: "a key that is not a string"},  # the same
    ],
)
def test_a_body_is_what_httpx_would_send(value: Any) -> None:
    assert encode_json(value) == _httpx_body(value)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"data": {"messages": [{"to": "+61411111111", "message_price": "0.0285"}]}}',
        '{"text": "Grüße 😀", "n": 1.5e3}'.encode(),
        b'{"n": NaN, "big": 123456789012345678901234567890}',  # orjson refuses both
        '{"utf16": "yes"}'.encode("utf-16"),  # the standard library detects it
    ],
)
def test_an_answer_reads_as_the_standard_library_reads_it(raw: bytes) -> None:
    assert repr(decode_json(raw)) == repr(json.loads(raw))


def test_a_send_carries_the_encoded_body_as_json() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"http_code": 200, "data": {"messages": []}})

    messages = [{"to": "+61411111111", "body": "Grüße", "from": "Clarion"}]
    with ClickSendClient(
        BASE, "user", "key", timeout=5, transport=httpx.MockTransport(answer)
    ) as client:
        client.send_sms(messages)
    [request] = seen
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"messages": messages}
    assert request.content == _httpx_body({"messages": messages})

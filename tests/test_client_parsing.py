"""Answers are parsed tolerantly: odd fields never raise and no per-message result is lost."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
import pytest

from clicksend.client import ClickSendClient
from clicksend.models import HistoryItem, MessageResult, Receipt, SendResponse
from clicksend.resources import Contact, VoiceLang

BASE = "https://rest.clicksend.test/v3"

# The shape of a real partial failure (reference README): HTTP 200, response_code SUCCESS,
# one message accepted and one refused with schedule "", message_parts 0 and a string price.
PARTIAL_FAILURE: dict[str, Any] = {
    "http_code": 200,
    "response_code": "SUCCESS",
    "response_msg": "Messages queued for delivery.",
    "data": {
        "total_price": 0.0792,
        "total_count": 2,
        "queued_count": 1,
        "messages": [
            {
                "direction": "out",
                "date": 1718728461,
                "to": "+61411111111",
                "body": "Hello",
                "from": "+61447254068",
                "schedule": 1718728461,
                "message_id": "1EF2D909-D81A-65FA-BEC7-33227BD3AB16",
                "message_parts": 1,
                "message_price": "0.0792",
                "custom_string": "run-42",
                "status": "SUCCESS",
            },
            {
                "to": "+61400000000",
                "body": "Hello",
                "from": "+61447238703",
                "schedule": "",
                "message_id": "1EF2D909-D8CB-6684-AFF9-DDE3218AE055",
                "message_parts": 0,
                "message_price": "0.0000",
                "custom_string": "run-42",
                "status": "INVALID_RECIPIENT",
            },
        ],
        "_currency": {"currency_name_short": "AUD", "currency_prefix_d": "$"},
        "blocked_count": 1,
    },
}

# Recorded from the real service (rudderlabs/rudder-transformer,
# test/integrations/destinations/clicksend/network.ts): two of four refused.
RECORDED_FOUR: dict[str, Any] = {
    "http_code": 200,
    "response_code": "SUCCESS",
    "response_msg": "Messages queued for delivery.",
    "data": {
        "total_price": 15.41,
        "total_count": 4,
        "queued_count": 2,
        "messages": [
            {"direction": "out", "date": 1718728461, "to": "+919XXXXXXX8", "from": "+61447254068",
             "schedule": 1718728461, "message_id": "1EF2D909-D81A-65FA-BEC7-33227BD3AB16",
             "message_parts": 1, "message_price": "7.7050", "from_email": None, "list_id": None,
             "custom_string": "", "contact_id": None, "country": "IN", "status": "SUCCESS"},
            {"direction": "out", "date": 1718728461, "to": "+919XXXXXXX9", "from": "+61447254068",
             "schedule": 1718728461, "message_id": "1EF2D909-D8C4-6D02-9EF0-1575A27E0783",
             "message_parts": 1, "message_price": "7.7050", "custom_string": "",
             "status": "SUCCESS"},
            {"to": "+614XXXXXX7", "from": "+61447238703", "schedule": "",
             "message_id": "1EF2D909-D8CB-6684-AFF9-DDE3218AE055", "message_parts": 0,
             "message_price": "0.0000", "custom_string": "", "is_shared_system_number": True,
             "country": "AU", "carrier": "Optus", "status": "COUNTRY_NOT_ENABLED"},
            {"to": "+614XXXXXXX2", "from": "+61447268001", "schedule": "",
             "message_id": "1EF2D909-D8D2-645C-A69F-57D016B5E549", "message_parts": 0,
             "message_price": "0.0000", "custom_string": "", "is_shared_system_number": True,
             "country": "AU", "carrier": "Optus", "status": "COUNTRY_NOT_ENABLED"},
        ],
        "_currency": {"currency_name_short": "INR"},
        "blocked_count": 2,
    },
}  # fmt: skip


def answering(body: Any) -> ClickSendClient:
    return ClickSendClient(
        BASE, "user", "key", transport=httpx.MockTransport(lambda _: httpx.Response(200, json=body))
    )


def test_real_partial_failure_parses_every_message() -> None:
    response = answering(PARTIAL_FAILURE).send_sms(
        [
            {"to": "+61411111111", "body": "Hello", "custom_string": "run-42"},
            {"to": "+61400000000", "body": "Hello", "custom_string": "run-42"},
        ]
    )
    assert (response.http_code, response.response_code) == (200, "SUCCESS")
    assert response.total_price == Decimal("0.0792")
    assert (response.total_count, response.queued_count, response.currency) == (2, 1, "AUD")
    ok, refused = response.messages
    assert ok.status == "SUCCESS"
    assert ok.schedule == 1718728461
    assert ok.message_parts == 1
    assert ok.message_price == Decimal("0.0792")
    assert ok.custom_string == "run-42"
    assert refused.to == "+61400000000"
    assert refused.status == "INVALID_RECIPIENT"
    assert refused.schedule is None
    assert refused.message_parts == 0
    assert refused.message_price == Decimal("0.0000")
    assert refused.message_id == "1EF2D909-D8CB-6684-AFF9-DDE3218AE055"
    assert refused.raw["from"] == "+61447238703"


def test_recorded_four_message_answer_keeps_all_four() -> None:
    response = SendResponse.from_json(RECORDED_FOUR)
    assert [m.status for m in response.messages] == [
        "SUCCESS",
        "SUCCESS",
        "COUNTRY_NOT_ENABLED",
        "COUNTRY_NOT_ENABLED",
    ]
    assert response.total_price == Decimal("15.41")
    assert sum(m.message_price for m in response.messages) == response.total_price
    assert all(m.custom_string is None for m in response.messages)  # "" means none


def test_odd_message_fields_never_raise_and_never_drop_a_result() -> None:
    body = copy.deepcopy(PARTIAL_FAILURE)
    body["data"]["total_price"] = "not a number"
    body["data"]["messages"] += [
        {"to": "+61422222222", "schedule": "1721099039,", "message_parts": "1.00",
         "message_price": None, "status": "queued"},
        {"to": "+61433333333"},  # no status, no id, no price
        "garbage entry",
        {"schedule": "0", "message_parts": [], "message_price": {"x": 1}, "status": 7},
    ]  # fmt: skip
    response = SendResponse.from_json(body)
    assert len(response.messages) == 6
    odd = response.messages[2]
    assert (odd.schedule, odd.message_parts, odd.message_price, odd.status) == (
        1721099039,
        1,
        Decimal("0"),
        "QUEUED",
    )
    bare = response.messages[3]
    assert (bare.to, bare.status, bare.message_id) == ("+61433333333", "UNKNOWN", None)
    assert response.messages[4].raw == {"value": "garbage entry"}
    last = response.messages[5]
    assert (last.schedule, last.message_parts, last.status) == (None, 0, "7")
    assert response.total_price == Decimal("0")


def test_send_answer_without_data_gives_an_empty_result() -> None:
    response = SendResponse.from_json({"response_code": "SUCCESS", "data": None})
    assert response.messages == []
    assert response.total_count == 0


def test_history_item_from_documented_example() -> None:
    item = HistoryItem.from_json(
        {
            "direction": "out", "date": 1715660441, "to": "+61426729707", "body": "test",
            "status": "Sent", "from": "+61447254068", "schedule": "1715660441",
            "status_code": "201", "message_id": "1EF11A95-31A2-6B70-A3E2-750B2DF4583F",
            "message_parts": "1.00", "message_price": "0.070000", "custom_string": None,
        }
    )  # fmt: skip
    assert item.from_ == "+61447254068"
    assert (item.date, item.schedule, item.status_code) == (1715660441, 1715660441, 201)
    assert (item.message_parts, item.message_price) == (1, Decimal("0.07"))
    assert item.custom_string is None


def test_receipt_with_string_timestamps() -> None:
    receipt = Receipt.from_json(
        {"timestamp_send": "1442381791", "timestamp": "1442381791", "message_id": "31BC",
         "status_code": "301", "status_text": "Cancelled", "error_code": None, "digits": 2}
    )  # fmt: skip
    assert (receipt.status_code, receipt.timestamp, receipt.error_code) == (301, 1442381791, None)


def test_voice_lang_gender_string_or_list() -> None:
    data = {
        "data": [
            {"code": "en-us", "country": "English, US", "gender": "male"},
            {"code": "en-au", "country": "English, Australia", "gender": ["female", "male"]},
            {"code": "xx", "gender": None},
        ]
    }
    langs = answering(data).voice_langs()
    assert [lang.genders for lang in langs] == [("male",), ("female", "male"), ()]
    assert VoiceLang.from_json("nonsense").code == ""


def test_contact_fields_and_account() -> None:
    contact = Contact.from_json(
        {"contact_id": "552786", "list_id": 428, "phone_number": "+16783270696",
         "custom_1": "VIP", "email": None, "date_updated": 1783997542, "_list_name": "x"}
    )  # fmt: skip
    assert contact.contact_id == 552786
    assert contact.fields == {"phone_number": "+16783270696", "custom_1": "VIP"}
    account = answering(
        {"data": {"username": "u@example.com", "balance": "2.005718",
                  "_currency": {"currency_name_short": "USD"}}}
    ).account()  # fmt: skip
    assert (account.username, account.balance, account.currency) == (
        "u@example.com",
        Decimal("2.005718"),
        "USD",
    )


@pytest.mark.parametrize("value", [None, "", "abc", [], {}])
def test_message_result_from_any_value(value: Any) -> None:
    result = MessageResult.from_json({"message_price": value, "schedule": value, "to": value})
    assert result.message_price == Decimal("0")
    assert result.schedule is None

"""The sandbox's answers validate against ClickSend's own OpenAPI response schemas
(tests/data/clicksend-v3-openapi-subset.yaml, from ClickSend's Go SDK v6.0.0)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from sandbox.server import SandboxHandle, start_in_thread

SPEC_PATH = Path(__file__).parent / "data" / "clicksend-v3-openapi-subset.yaml"
AUTH = ("sandbox", "sandbox-key")
AU, AU2 = "+61412345678", "+61412345679"
JPG = "https://example.com/picture.jpg"


@cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        # The C loader when PyYAML has it: the file is 900 kB.
        return dict(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def check(path: str, method: str, answer: httpx.Response) -> Any:
    """Validate a 200 answer against the schema ClickSend documents for it; return the JSON."""
    assert answer.status_code == 200, answer.text
    operation = spec()["paths"][path][method]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    # The document's components go along so the schema's $refs resolve.
    OAS30Validator({**schema, "components": spec()["components"]}).validate(answer.json())
    return answer.json()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, auth=AUTH, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def sent(api: httpx.Client, sandbox: SandboxHandle) -> dict[str, Any]:
    """Messages of every kind, some scheduled, and a few receipts and replies."""
    future = sandbox.state.now_int() + 3600
    sms: list[dict[str, Any]] = [
        {"to": AU, "body": f"hello {i}", "custom_string": f"k{i}"} for i in range(3)
    ]
    sms.append({"to": AU2, "body": "later", "schedule": future, "custom_string": "later"})
    answer = check("/v3/sms/send", "post", api.post("/sms/send", json={"messages": sms}))
    mms = api.post(
        "/mms/send", json={"media_file": JPG, "messages": [{"to": AU, "body": "p", "subject": "S"}]}
    )
    voice = api.post(
        "/voice/send",
        json={
            "messages": [
                {"to": AU, "body": "v", "voice": "female", "lang": "en-au"},
                {"to": AU, "body": "w", "schedule": future},
                {"to": AU2, "body": "x", "schedule": future},
            ]
        },
    )
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 5})
    httpx.post(f"{sandbox.root_url}/_sandbox/inbound", json={"from": AU, "body": "STOP"})
    return {"sms": answer, "mms": mms.json(), "voice": voice.json()}


def test_sms_send_with_blocked_messages(api: httpx.Client) -> None:
    answer = api.post(
        "/sms/send", json={"messages": [{"to": AU, "body": "ok"}, {"to": "+1555", "body": "no"}]}
    )
    body = answer.json()
    blocked = body["data"]["messages"][1]
    # ClickSend's schema types schedule as an integer, but the real service answers "" for a
    # blocked message (a recorded response); the sandbox follows the service.
    assert blocked["schedule"] == "" and blocked["status"] == "INVALID_RECIPIENT"
    trimmed = copy.deepcopy(body)
    del trimmed["data"]["messages"][1]["schedule"]
    schema = spec()["paths"]["/v3/sms/send"]["post"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    OAS30Validator({**schema, "components": spec()["components"]}).validate(trimmed)


def test_sms_answers(api: httpx.Client, sent: dict[str, Any]) -> None:
    scheduled = sent["sms"]["data"]["messages"][3]["message_id"]
    first = sent["sms"]["data"]["messages"][0]["message_id"]
    check(
        "/v3/sms/price",
        "post",
        api.post("/sms/price", json={"messages": [{"to": AU, "body": "x"}]}),
    )
    check("/v3/sms/history", "get", api.get("/sms/history", params={"limit": 15, "q": f"to:{AU}"}))
    check("/v3/sms/receipts", "get", api.get("/sms/receipts"))
    check("/v3/sms/receipts/{message_id}", "get", api.get(f"/sms/receipts/{first}"))
    check("/v3/sms/inbound", "get", api.get("/sms/inbound"))
    check("/v3/sms/{message_id}/cancel", "put", api.put(f"/sms/{scheduled}/cancel"))
    check("/v3/sms/cancel-all", "put", api.put("/sms/cancel-all", json={"custom_string": "none"}))
    check("/v3/sms/receipts-read", "put", api.put("/sms/receipts-read", json={}))
    check("/v3/sms/inbound-read", "put", api.put("/sms/inbound-read", json={}))


def test_template_answers(api: httpx.Client) -> None:
    created = check(
        "/v3/sms/templates",
        "post",
        api.post("/sms/templates", json={"template_name": "T", "body": "B"}),
    )["data"]
    check("/v3/sms/templates", "get", api.get("/sms/templates"))
    path = "/v3/sms/templates/{template_id}"
    tid = created["template_id"]
    check(path, "get", api.get(f"/sms/templates/{tid}"))
    check(path, "put", api.put(f"/sms/templates/{tid}", json={"body": "C"}))
    check(path, "delete", api.delete(f"/sms/templates/{tid}"))


def test_mms_answers(api: httpx.Client, sent: dict[str, Any]) -> None:
    body = {"media_file": JPG, "messages": [{"to": AU, "body": "p", "subject": "S"}]}
    check("/v3/mms/send", "post", api.post("/mms/send", json=body))
    check("/v3/mms/price", "post", api.post("/mms/price", json=body))
    check("/v3/mms/history", "get", api.get("/mms/history"))


def test_voice_answers(api: httpx.Client, sent: dict[str, Any]) -> None:
    body = {"messages": [{"to": AU, "body": "v", "voice": "male", "lang": "en-gb"}]}
    check("/v3/voice/send", "post", api.post("/voice/send", json=body))
    check("/v3/voice/price", "post", api.post("/voice/price", json=body))
    check("/v3/voice/lang", "get", api.get("/voice/lang"))
    check("/v3/voice/history", "get", api.get("/voice/history"))
    check("/v3/voice/receipts", "get", api.get("/voice/receipts"))
    waiting = sent["voice"]["data"]["messages"][1]["message_id"]
    check("/v3/voice/{message_id}/cancel", "put", api.put(f"/voice/{waiting}/cancel"))
    check("/v3/voice/cancel-all", "put", api.put("/voice/cancel-all", json={}))


def test_account_countries_and_addresses(api: httpx.Client) -> None:
    check("/v3/account", "get", api.get("/account"))
    check("/v3/countries", "get", api.get("/countries"))
    added = check(
        "/v3/email/addresses",
        "post",
        api.post("/email/addresses", json={"email_address": "a@example.com"}),
    )["data"]
    check("/v3/email/addresses", "get", api.get("/email/addresses"))
    check(
        "/v3/email/addresses/{email_address_id}",
        "delete",
        api.delete(f"/email/addresses/{added['email_address_id']}"),
    )


def test_list_and_contact_answers(api: httpx.Client) -> None:
    for number in range(31):  # three pages, so page 2 has both a next and a previous URL
        api.post("/lists", json={"list_name": f"filler {number}"})
    # ClickSend types these URLs as plain strings; on the first or last page the service (a
    # Laravel paginator) answers null, so the page checked is a middle one.
    check("/v3/lists", "get", api.get("/lists", params={"page": 2}))
    lid = check("/v3/lists", "post", api.post("/lists", json={"list_name": "L"}))["data"]["list_id"]
    other = api.post("/lists", json={"list_name": "M"}).json()["data"]["list_id"]
    check("/v3/lists/{list_id}", "get", api.get(f"/lists/{lid}"))
    check("/v3/lists/{list_id}", "put", api.put(f"/lists/{lid}", json={"list_name": "L2"}))
    contacts = "/v3/lists/{list_id}/contacts"
    cid = check(contacts, "post", api.post(f"/lists/{lid}/contacts", json={"phone_number": AU}))[
        "data"
    ]["contact_id"]
    check(contacts, "get", api.get(f"/lists/{lid}/contacts"))
    one = "/v3/lists/{list_id}/contacts/{contact_id}"
    check(one, "get", api.get(f"/lists/{lid}/contacts/{cid}"))
    check(one, "put", api.put(f"/lists/{lid}/contacts/{cid}", json={"first_name": "A"}))
    copy_path = "/v3/lists/{from_list_id}/contacts/{contact_id}/copy/{to_list_id}"
    copied = check(copy_path, "put", api.put(f"/lists/{lid}/contacts/{cid}/copy/{other}"))["data"]
    transfer = "/v3/lists/{from_list_id}/contacts/{contact_id}/transfer/{to_list_id}"
    check(
        transfer, "put", api.put(f"/lists/{other}/contacts/{copied['contact_id']}/transfer/{lid}")
    )
    check(
        "/v3/lists/{list_id}/remove-duplicates/",
        "put",
        api.put(f"/lists/{lid}/remove-duplicates", json={}),
    )
    opt_out = api.get("/lists").json()["data"]["data"][0]["list_id"]
    check(
        "/v3/lists/{list_id}/remove-opted-out-contacts/{opt_out_list_id}",
        "put",
        api.put(f"/lists/{lid}/remove-opted-out-contacts/{opt_out}"),
    )
    check(one, "delete", api.delete(f"/lists/{lid}/contacts/{cid}"))
    check("/v3/lists/{list_id}", "delete", api.delete(f"/lists/{other}"))

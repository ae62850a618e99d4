"""Contract: every request the client can make exists in ClickSend's OpenAPI file, and its
JSON body validates against that operation's request schema.

The OpenAPI file is ClickSend's own (Go SDK v6.0.0, cut to the paths this project uses),
copied into tests/data so the suite needs nothing outside the repository.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from clicksend.client import ClickSendClient

SPEC_PATH = Path(__file__).parent / "data" / "clicksend-v3-openapi-subset.yaml"

# Endpoints the source document names that the OpenAPI subset does not describe.
NOT_IN_SUBSET = {("GET", "/v3/mms/receipts")}

# Where the file's schema contradicts the same operation's own description and every one of
# its code samples, the request follows the description; the test checks against the schema
# corrected the same way (and below, that the file really says otherwise).
SCHEMA_ERRATA = {
    # "field_order | [string] | true | Order of fields in file"; the schema says "string".
    ("import_contacts_request", "field_order"): {"type": "array", "items": {"type": "string"}},
}

ANSWER = {
    "http_code": 200,
    "response_code": "SUCCESS",
    "response_msg": "ok",
    "data": {"current_page": 1, "last_page": 1, "data": [{}], "messages": [{}], "count": 1},
}


@cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)
        return loaded


@cache
def corrected_components() -> dict[str, Any]:
    components = copy.deepcopy(spec()["components"])
    for (schema, prop), fixed in SCHEMA_ERRATA.items():
        components["schemas"][schema]["properties"][prop] = fixed
    return components


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template.rstrip("/"))
    pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{pattern}/?$")


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """(path template, operation) for a concrete request, preferring literal matches."""
    matches = [
        (template.count("{"), template, ops[method.lower()])
        for template, ops in spec()["paths"].items()
        if method.lower() in ops and _template_regex(template).match(path)
    ]
    if not matches:
        return None
    _, template, operation = min(matches, key=lambda m: m[0])
    return template, operation


def contract_problems(request: httpx.Request) -> list[str]:
    """Why this request breaks the contract (empty when it keeps it)."""
    path = request.url.path.removeprefix("/clicksend")  # the hub serves the same API
    key = (request.method, path)
    found = find_operation(request.method, path)
    if found is None:
        return [] if key in NOT_IN_SUBSET else [f"{request.method} {path}: not in the OpenAPI file"]
    template, operation = found
    where = f"{request.method} {template}"
    body = json.loads(request.content) if request.content else None
    declared = operation.get("requestBody")
    if declared is None:
        return [f"{where}: sends a body the operation does not take"] if body is not None else []
    if body is None:
        return [f"{where}: requestBody required but none sent"] if declared.get("required") else []
    schema = declared["content"]["application/json"]["schema"]
    validator = OAS30Validator({**schema, "components": corrected_components()})
    return [f"{where}: {error.message}" for error in validator.iter_errors(body)]


class Recorder:
    """A mock transport that answers every request with a generic success and keeps it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=ANSWER)


SMS: list[dict[str, Any]] = [
    {"to": "+61411111111", "body": "Hi {first_name}", "from": "Clarion", "source": "clarion",
     "custom_string": "run-1", "schedule": 1893456000},
    {"to": "+61422222222", "body": "Hi", "custom_string": "run-1", "from": None},
]  # fmt: skip
VOICE = [
    {"to": "+61411111111", "body": "Hello", "voice": "female", "lang": "en-au",
     "machine_detection": 1, "require_input": 0, "schedule": 1893456000, "custom_string": "r"},
]  # fmt: skip
MMS = [{"to": "+61411111111", "body": "Look", "subject": "Hi", "from": "+61400000000"}]
MEDIA = "https://example.com/a.jpg"

# One call per public method: name -> how to call it.
CALLS: dict[str, Callable[[ClickSendClient], Any]] = {
    "account": lambda c: c.account(),
    "countries": lambda c: c.countries(),
    "email_addresses": lambda c: list(c.email_addresses()),
    "add_email_address": lambda c: c.add_email_address("sender@example.com"),
    "delete_email_address": lambda c: c.delete_email_address(12),
    "send_sms": lambda c: c.send_sms(SMS),
    "price_sms": lambda c: c.price_sms(SMS),
    "sms_history": lambda c: list(c.sms_history(date_from=1, date_to=2, q="to:+61411111111")),
    "sms_inbound": lambda c: list(c.sms_inbound()),
    "mark_sms_inbound_read": lambda c: c.mark_sms_inbound_read(1893456000),
    "sms_receipts": lambda c: list(c.sms_receipts()),
    "sms_receipt": lambda c: c.sms_receipt("1EF2D909-D81A-65FA-BEC7-33227BD3AB16"),
    "mark_sms_receipts_read": lambda c: c.mark_sms_receipts_read(),
    "cancel_sms": lambda c: c.cancel_sms("1EF2D909-D81A-65FA-BEC7-33227BD3AB16"),
    "cancel_all_sms": lambda c: (c.cancel_all_sms(), c.cancel_all_sms("run-1")),
    "sms_templates": lambda c: list(c.sms_templates()),
    "sms_template": lambda c: c.sms_template(5),
    "create_sms_template": lambda c: c.create_sms_template("Welcome", "Hi {first_name}"),
    "update_sms_template": lambda c: c.update_sms_template(5, name="W2", body="Hello"),
    "delete_sms_template": lambda c: c.delete_sms_template(5),
    "send_mms": lambda c: c.send_mms(MEDIA, MMS),
    "price_mms": lambda c: c.price_mms(MEDIA, MMS),
    "mms_history": lambda c: list(c.mms_history(date_from=1, date_to=2)),
    "mms_receipts": lambda c: list(c.mms_receipts()),
    "send_voice": lambda c: c.send_voice(VOICE),
    "price_voice": lambda c: c.price_voice(VOICE),
    "voice_langs": lambda c: c.voice_langs(),
    "voice_history": lambda c: list(c.voice_history(date_from=1, date_to=2)),
    "voice_receipts": lambda c: list(c.voice_receipts()),
    "cancel_voice": lambda c: c.cancel_voice("BF7AD270-0DE2-418B-B606-71D527D9C1AE"),
    "cancel_all_voice": lambda c: (c.cancel_all_voice(), c.cancel_all_voice("run-1")),
    "lists": lambda c: list(c.lists()),
    "get_list": lambda c: c.get_list(428),
    "create_list": lambda c: c.create_list("Customers"),
    "rename_list": lambda c: c.rename_list(428, "Clients"),
    "delete_list": lambda c: c.delete_list(428),
    "remove_duplicates": lambda c: c.remove_duplicates(428, ["phone_number", "first_name"]),
    "remove_opted_out": lambda c: c.remove_opted_out(428, 3555277),
    "import_contacts": lambda c: c.import_contacts(
        428, "https://example.com/c.csv", ["phone_number", "first_name"]
    ),
    "contacts": lambda c: list(c.contacts(428, updated_after=1700000000)),
    "get_contact": lambda c: c.get_contact(428, 552786),
    "create_contact": lambda c: c.create_contact(
        428, {"phone_number": "+61411111111", "first_name": "Ann", "custom_1": 7, "email": None}
    ),
    "update_contact": lambda c: c.update_contact(428, 552786, {"last_name": "Lee"}),
    "delete_contact": lambda c: c.delete_contact(428, 552786),
    "copy_contact": lambda c: c.copy_contact(428, 552786, 429),
    "transfer_contact": lambda c: c.transfer_contact(428, 552786, 429),
}

NOT_REQUESTS = {"close", "skillboss", "base_url", "gated"}


def public_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(ClickSendClient)
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    } - NOT_REQUESTS


def make_client(kind: str, transport: httpx.MockTransport) -> ClickSendClient:
    if kind == "hub":
        return ClickSendClient.skillboss("https://hub.test", "hub-key", transport=transport)
    return ClickSendClient("https://rest.clicksend.com/v3", "user", "key", transport=transport)


def test_every_public_method_is_covered() -> None:
    assert set(CALLS) == public_methods()


@pytest.mark.parametrize("kind", ["direct", "hub"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_request_keeps_the_contract(kind: str, name: str) -> None:
    recorder = Recorder()
    with make_client(kind, httpx.MockTransport(recorder)) as client:
        CALLS[name](client)
    assert recorder.requests, f"{name} made no request"
    prefix = "/clicksend/v3/" if kind == "hub" else "/v3/"
    problems = [p for r in recorder.requests for p in contract_problems(r)]
    assert problems == []
    assert all(r.url.path.startswith(prefix) for r in recorder.requests)


def test_the_checker_rejects_what_breaks_the_contract() -> None:
    def req(method: str, path: str, body: Any = None) -> httpx.Request:
        return httpx.Request(method, f"https://rest.clicksend.com{path}", json=body)

    assert contract_problems(req("POST", "/v3/sms/sendd", {"messages": []}))
    assert contract_problems(req("DELETE", "/v3/sms/send"))
    assert contract_problems(req("POST", "/v3/sms/send", {"messages": [{"to": "+6141"}]}))
    assert contract_problems(
        req("POST", "/v3/sms/send", {"messages": [{"body": "x", "schedule": "soon"}]})
    )
    assert contract_problems(req("PUT", "/v3/lists/1/import", {"field_order": 3}))
    assert contract_problems(req("GET", "/v3/account", {"x": 1}))
    assert not contract_problems(req("POST", "/v3/sms/send", {"messages": [{"body": "x"}]}))


def test_documented_exceptions_are_real() -> None:
    for method, path in NOT_IN_SUBSET:
        assert find_operation(method, path) is None
    schemas = spec()["components"]["schemas"]
    for schema, prop in SCHEMA_ERRATA:
        assert schemas[schema]["properties"][prop] != SCHEMA_ERRATA[(schema, prop)]


def test_message_checks_name_the_row_and_field() -> None:
    recorder = Recorder()
    client = make_client("direct", httpx.MockTransport(recorder))
    bad: list[tuple[list[Any], str]] = [
        ([], "messages: between 1 and 1000"),
        ([{"to": "+1", "body": "x"}] * 1001, "got 1001"),
        ([{"to": "+1", "body": "x"}, {"body": "x"}], "messages[1].to"),
        ([{"to": "+1", "body": ""}], "messages[0].body"),
        ([{"to": "+1", "body": "x", "schedule": "tomorrow"}], "messages[0].schedule"),
        ([{"to": "+1", "body": "x"}, "text"], "messages[1]: must be a mapping"),
    ]
    for messages, expected in bad:
        with pytest.raises(ValueError, match=re.escape(expected)):
            client.send_sms(messages)
    with pytest.raises(ValueError, match=r"contact\.nickname"):
        client.create_contact(1, {"nickname": "x"})
    assert recorder.requests == []
    client.send_sms([{"to": "+1", "body": "x", "schedule": "1893456000"}])
    sent = json.loads(recorder.requests[0].content)["messages"][0]
    assert sent["schedule"] == 1893456000
    assert len(recorder.requests) == 1

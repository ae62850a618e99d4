"""Sandbox contact lists, contacts, import, email sender addresses, account and countries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sandbox.server import SandboxHandle, start_in_thread

AUTH = ("sandbox", "sandbox-key")


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread()
    yield handle
    handle.stop()


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, auth=AUTH, timeout=30) as client:
        yield client


def _data(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_every_account_has_an_opt_out_list(api: httpx.Client) -> None:
    lists = _data(api.get("/lists"))
    assert [row["list_name"] for row in lists["data"]] == ["Opt-Out List"]


def test_list_lifecycle(api: httpx.Client) -> None:
    created = _data(api.post("/lists", json={"list_name": "Customers"}))
    list_id = created["list_id"]
    assert _data(api.get(f"/lists/{list_id}"))["_contacts_count"] == 0
    assert (
        _data(api.put(f"/lists/{list_id}", json={"list_name": "Clients"}))["list_name"] == "Clients"
    )
    assert api.post("/lists", json={}).json()["response_msg"].startswith("list_name")
    assert api.delete(f"/lists/{list_id}").status_code == 200
    assert api.get(f"/lists/{list_id}").status_code == 404


def test_contacts_crud_copy_transfer(api: httpx.Client) -> None:
    a = _data(api.post("/lists", json={"list_name": "A"}))["list_id"]
    b = _data(api.post("/lists", json={"list_name": "B"}))["list_id"]
    contact = _data(
        api.post(f"/lists/{a}/contacts", json={"phone_number": "+61412345678", "first_name": "Ann"})
    )
    cid = contact["contact_id"]
    assert (contact["list_id"], contact["first_name"], contact["_list_name"]) == (a, "Ann", "A")
    updated = _data(api.put(f"/lists/{a}/contacts/{cid}", json={"last_name": "Lee"}))
    assert (updated["first_name"], updated["last_name"]) == ("Ann", "Lee")
    assert _data(api.get(f"/lists/{a}/contacts/{cid}"))["last_name"] == "Lee"
    copy = _data(api.put(f"/lists/{a}/contacts/{cid}/copy/{b}"))
    assert copy["list_id"] == b and copy["contact_id"] != cid
    moved = _data(api.put(f"/lists/{a}/contacts/{cid}/transfer/{b}"))
    assert (moved["list_id"], moved["contact_id"]) == (b, cid)
    assert _data(api.get(f"/lists/{a}/contacts"))["total"] == 0
    assert _data(api.get(f"/lists/{b}/contacts"))["total"] == 2
    assert api.delete(f"/lists/{b}/contacts/{cid}").status_code == 200
    assert api.get(f"/lists/{b}/contacts/{cid}").status_code == 404
    bad = api.post(f"/lists/{a}/contacts", json={"phone_number": "+61412345678", "shoe_size": "9"})
    assert bad.status_code == 400 and bad.json()["response_msg"].startswith("shoe_size")


def test_contacts_updated_after(api: httpx.Client, sandbox: SandboxHandle) -> None:
    list_id = _data(api.post("/lists", json={"list_name": "A"}))["list_id"]
    old = _data(api.post(f"/lists/{list_id}/contacts", json={"phone_number": "+61412345678"}))
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 100})
    new = _data(api.post(f"/lists/{list_id}/contacts", json={"phone_number": "+61412345679"}))
    rows = _data(
        api.get(f"/lists/{list_id}/contacts", params={"updated_after": old["date_updated"]})
    )
    assert [r["contact_id"] for r in rows["data"]] == [new["contact_id"]]


def test_remove_duplicates_and_opted_out(api: httpx.Client) -> None:
    list_id = _data(api.post("/lists", json={"list_name": "A"}))["list_id"]
    for number in ["+61412345678", "+61412345678", "+61412345679", "+61412345670"]:
        api.post(f"/lists/{list_id}/contacts", json={"phone_number": number})
    assert _data(api.put(f"/lists/{list_id}/remove-duplicates", json={}))["deleted"] == 1
    opt_out = _data(api.get("/lists"))["data"][0]["list_id"]
    api.post(f"/lists/{opt_out}/contacts", json={"phone_number": "+61412345679"})
    removed = _data(api.put(f"/lists/{list_id}/remove-opted-out-contacts/{opt_out}"))
    assert removed["deleted"] == 1
    left = {c["phone_number"] for c in _data(api.get(f"/lists/{list_id}/contacts"))["data"]}
    assert left == {"+61412345678", "+61412345670"}


def test_import_from_csv_url(api: httpx.Client) -> None:
    csv_text = b"phone_number,first_name\n+61412345678,Ann\n+61412345679,Bob\n"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(csv_text)))
            self.end_headers()
            self.wfile.write(csv_text)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        list_id = _data(api.post("/lists", json={"list_name": "A"}))["list_id"]
        url = f"http://127.0.0.1:{server.server_address[1]}/contacts.csv"
        result = _data(api.post(f"/lists/{list_id}/import", json={"file_url": url}))
        assert len(result["ids"]) == 2
        names = sorted(
            c["first_name"] for c in _data(api.get(f"/lists/{list_id}/contacts"))["data"]
        )
        assert names == ["Ann", "Bob"]
        bad = api.post(
            f"/lists/{list_id}/import", json={"file_url": url, "field_order": "phone,first_name"}
        )
        assert bad.status_code == 400 and bad.json()["response_msg"].startswith("field_order")
    finally:
        server.shutdown()


def test_email_addresses(api: httpx.Client) -> None:
    added = _data(api.post("/email/addresses", json={"email_address": "news@example.com"}))
    assert _data(api.get("/email/addresses"))["data"] == [added]
    assert api.post("/email/addresses", json={"email_address": "nope"}).status_code == 400
    assert api.delete(f"/email/addresses/{added['email_address_id']}").status_code == 200
    assert _data(api.get("/email/addresses"))["total"] == 0
    assert api.delete("/email/addresses/999").status_code == 404


def test_account_and_countries(api: httpx.Client) -> None:
    account = _data(api.get("/account"))
    assert account["username"] == "sandbox" and account["_currency"]["currency_name_short"] == "USD"
    assert "sandbox-key" not in str(account)
    countries = {c["code"]: c["value"] for c in _data(api.get("/countries"))}
    assert countries["AU"] == "Australia" and countries["US"] == "United States"


def test_the_sandbox_knows_the_contact_fields_the_client_knows() -> None:
    # Two copies on purpose (the sandbox imports nothing of the product); they must agree.
    from clicksend.resources import CONTACT_FIELDS
    from sandbox.records import CONTACT_FIELDS as SANDBOX_FIELDS

    assert SANDBOX_FIELDS == CONTACT_FIELDS

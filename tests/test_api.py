"""The HTTP API through httpx against the real app (uvicorn on loopback), on SQLite and
PostgreSQL: campaigns, lists and contacts, suppressions, messages, webhooks."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, insert, select

from campaigns.db import session_scope
from campaigns.models import Message, Suppression, WebhookEvent
from sandbox.server import start_in_thread
from tests.apiclient import WEBHOOK_SECRET, api_client
from tests.seed import seed_campaign, seed_list, us_numbers

DEFINITION = {
    "name": "spring",
    "channel": "sms",
    "audience": {"lists": ["customers"]},
    "message": {"body": "Hi {first_name}", "from": "Clarion"},
}
YAML = """
name: autumn
channel: sms
audience: {lists: [customers]}
message: {body: 'Hello {first_name}', from: Clarion}
"""


@pytest.fixture
def client(db_url: str) -> Iterator[httpx.Client]:
    """The API, with the sandbox provider (balance checks at start) in a thread."""
    sandbox = start_in_thread()
    try:
        with api_client(db_url, sandbox_url=sandbox.base_url) as c:
            yield c
    finally:
        sandbox.stop()


# -- campaigns ---------------------------------------------------------------------------


def test_campaign_create_list_update_delete(db_url: str, client: httpx.Client) -> None:
    seed_list(db_url, "customers", us_numbers(3))
    made = client.post("/api/v1/campaigns", json=DEFINITION)
    assert made.status_code == 201, made.text
    spring = made.json()
    assert spring["status"] == "draft" and spring["definition"]["name"] == "spring"
    yaml = client.post(
        "/api/v1/campaigns", content=YAML, headers={"Content-Type": "application/yaml"}
    )
    assert yaml.status_code == 201, yaml.text
    again = client.post("/api/v1/campaigns", json=DEFINITION)
    assert again.status_code == 409 and again.json()["field"] == "name"

    bad = client.post("/api/v1/campaigns", json={**DEFINITION, "message": {"bdy": "x"}})
    assert bad.status_code == 422
    assert any(e["field"].startswith("message") for e in bad.json()["errors"])
    unknown = client.post(
        "/api/v1/campaigns", json={**DEFINITION, "name": "x", "audience": {"lists": ["nope"]}}
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "audience.lists"

    first = client.get("/api/v1/campaigns", params={"limit": 1}).json()
    assert [c["name"] for c in first["items"]] == ["spring"] and first["next_cursor"]
    second = client.get(
        "/api/v1/campaigns", params={"limit": 1, "cursor": first["next_cursor"]}
    ).json()
    assert [c["name"] for c in second["items"]] == ["autumn"] and second["next_cursor"] is None

    changed = client.put(
        f"/api/v1/campaigns/{spring['id']}",
        json={**DEFINITION, "message": {"body": "New {first_name}", "from": "Clarion"}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["definition"]["message"]["body"] == "New {first_name}"

    started = client.post(f"/api/v1/campaigns/{spring['id']}/start")
    assert started.status_code == 200, started.text
    assert started.json()["action"] == "started" and started.json()["run_ids"]
    assert (
        client.get("/api/v1/campaigns", params={"status": "draft"}).json()["items"][0]["name"]
        == "autumn"
    )
    refused = client.delete(f"/api/v1/campaigns/{spring['id']}")
    assert refused.status_code == 409 and "only a draft" in refused.json()["error"]
    again_start = client.post(f"/api/v1/campaigns/{spring['id']}/start")
    assert again_start.status_code == 409 and "not a draft" in again_start.json()["error"]
    assert client.delete(f"/api/v1/campaigns/{yaml.json()['id']}").status_code == 204
    assert client.get(f"/api/v1/campaigns/{yaml.json()['id']}").status_code == 404


def test_stats_and_runs(db_url: str, client: httpx.Client) -> None:
    phones = us_numbers(4)
    seed_list(db_url, "customers", phones)
    campaign_id, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        session.execute(
            insert(Message),
            [
                {
                    "run_id": run_id,
                    "phone": phones[0],
                    "status": "sent",
                    "provider_message_id": "m0",
                    "delivery_status": "delivered",
                },
                {
                    "run_id": run_id,
                    "phone": phones[1],
                    "status": "sent",
                    "provider_message_id": "m1",
                    "delivery_status": "failed",
                },
                {
                    "run_id": run_id,
                    "phone": phones[2],
                    "status": "failed",
                    "error": "INVALID_RECIPIENT",
                },
                {"run_id": run_id, "phone": phones[3], "status": "pending"},
            ],
        )
    stats = client.get(f"/api/v1/campaigns/{campaign_id}/stats").json()
    assert stats["run_id"] == run_id
    assert (stats["delivered"], stats["undelivered"]) == (1, 1)
    assert stats["counts"]["sent"] == 2 and stats["remaining"] == 1
    assert stats["failure_reasons"] == {"INVALID_RECIPIENT": 1}
    assert "eta_seconds" in stats and "sent_per_second" in stats
    runs = client.get(f"/api/v1/campaigns/{campaign_id}/runs").json()
    assert [r["id"] for r in runs["items"]] == [run_id]

    page = client.get(f"/api/v1/runs/{run_id}/messages", params={"limit": 3}).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = client.get(
        f"/api/v1/runs/{run_id}/messages", params={"limit": 3, "cursor": page["next_cursor"]}
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    failed = client.get(f"/api/v1/runs/{run_id}/messages", params={"status": "failed"}).json()
    assert [m["phone"] for m in failed["items"]] == [phones[2]]
    undelivered = client.get(
        f"/api/v1/runs/{run_id}/messages", params={"status": "undelivered"}
    ).json()
    assert [m["phone"] for m in undelivered["items"]] == [phones[1]]
    by_number = client.get(
        f"/api/v1/runs/{run_id}/messages", params={"phone": phones[3][-7:]}
    ).json()
    assert [m["phone"] for m in by_number["items"]] == [phones[3]]
    bad = client.get(f"/api/v1/runs/{run_id}/messages", params={"status": "snt"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"
    exported = client.get(f"/api/v1/runs/{run_id}/messages.csv", params={"status": "sent"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["phone"] for r in rows] == phones[:2]
    assert client.get("/api/v1/runs/999/messages").status_code == 404


# -- lists and suppressions --------------------------------------------------------------


def test_lists_upload_with_bad_rows_search_export_delete(client: httpx.Client) -> None:
    made = client.post("/api/v1/lists", json={"name": "vips"})
    assert made.status_code == 201, made.text
    list_id = made.json()["id"]
    assert client.post("/api/v1/lists", json={"name": "vips"}).status_code == 409
    assert client.post("/api/v1/lists", json={"name": ""}).json()["field"] == "name"
    upload = (
        "phone_number,first_name\n+12015550123,Ann\n12,Bad\n(201) 555-0124,Bob\n+12015550123,Dup\n"
    )
    report = client.post(
        f"/api/v1/lists/{list_id}/contacts",
        files={"file": ("c.csv", upload, "text/csv")},
    )
    assert report.status_code == 200, report.text
    data = report.json()
    assert (data["imported"], data["duplicates"]) == (2, 1)
    assert [(e["row"], e["field"]) for e in data["errors"]] == [(3, "phone_number")]
    raw = client.post(
        f"/api/v1/lists/{list_id}/contacts",
        content="phone_number,first_name\n+12015550125,Cy\n",
        headers={"Content-Type": "text/csv"},
    )
    assert raw.status_code == 200 and raw.json()["imported"] == 1
    no_phone = client.post(
        f"/api/v1/lists/{list_id}/contacts",
        content="mobile\n+12015550126\n",
        headers={"Content-Type": "text/csv"},
    )
    assert no_phone.status_code == 422 and "phone_number" in no_phone.json()["error"]

    listed = client.get("/api/v1/lists").json()["items"]
    assert [(item["name"], item["contacts"]) for item in listed] == [("vips", 3)]
    page = client.get(f"/api/v1/lists/{list_id}/contacts", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    found = client.get(f"/api/v1/lists/{list_id}/contacts", params={"phone": "5550124"}).json()
    assert [c["phone"] for c in found["items"]] == ["+12015550124"]
    exported = client.get(f"/api/v1/lists/{list_id}/export")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["phone_number"]: r["first_name"] for r in rows} == {
        "+12015550123": "Ann",
        "+12015550124": "Bob",
        "+12015550125": "Cy",
    }
    client.post("/api/v1/campaigns", json={**DEFINITION, "audience": {"lists": ["vips"]}})
    in_use = client.delete(f"/api/v1/lists/{list_id}")
    assert in_use.status_code == 409 and "spring" in in_use.json()["error"]


def test_suppressions(db_url: str, client: httpx.Client) -> None:
    added = client.post("/api/v1/suppressions", json={"phone": "(201) 555-0123"})
    assert added.status_code == 201 and added.json() == {"phone": "+12015550123", "added": True}
    assert (
        client.post("/api/v1/suppressions", json={"phone": "+12015550123"}).json()["added"] is False
    )
    bad = client.post("/api/v1/suppressions", json={"phone": "12"})
    assert bad.status_code == 422 and bad.json()["field"] == "phone"
    report = client.post(
        "/api/v1/suppressions/import",
        content="phone_number,reason\n+12015550124,asked\nnope,x\n+12015550123,again\n",
        headers={"Content-Type": "text/csv"},
    ).json()
    assert (report["rows"], report["added"], report["already"]) == (3, 1, 1)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(3, "phone_number")]
    listed = client.get("/api/v1/suppressions").json()["items"]
    assert {s["phone"]: s["reason"] for s in listed} == {
        "+12015550123": "added by hand",
        "+12015550124": "asked",
    }
    assert client.delete("/api/v1/suppressions/+12015550124").status_code == 204
    assert client.delete("/api/v1/suppressions/+12015550124").status_code == 404
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1


# -- webhooks ----------------------------------------------------------------------------


def _wait(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_receipt_webhook_form_and_json_applied_once(db_url: str) -> None:
    phones = us_numbers(2)
    seed_list(db_url, "customers", phones)
    _, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        session.execute(
            insert(Message),
            [
                {"run_id": run_id, "phone": p, "status": "sent", "provider_message_id": f"M{i}"}
                for i, p in enumerate(phones)
            ],
        )
    form = {
        "messageid": "M0",
        "status_code": "201",
        "status_text": "Delivered",
        "timestamp": "1764300000",
        "custom_string": "k",
    }
    as_json = {
        "message_id": "M1",
        "status_code": 301,
        "status_text": "Failed",
        "timestamp": 1764300001,
    }
    with api_client(db_url, auth=False) as client:
        url = f"/webhooks/{WEBHOOK_SECRET}/receipts"
        for _ in range(3):  # ClickSend retries; a proxy may duplicate
            assert client.post(url, data=form).status_code == 200
            assert client.post(url, json=as_json).status_code == 200
        assert client.post("/webhooks/wrong/receipts", data=form).status_code == 404
        missing = client.post(url, data={"status_code": "201"})
        assert missing.status_code == 422 and missing.json()["field"] == "message_id"
        # A late "queued" receipt for a delivered message does not undo it.
        late = {**form, "status_code": "200", "timestamp": "1764300002"}
        assert client.post(url, data=late).status_code == 200

        def applied() -> bool:
            with session_scope(db_url) as session:
                return not session.scalar(
                    select(func.count()).where(WebhookEvent.applied_at.is_(None))
                )

        _wait(applied)
    with session_scope(db_url) as session:
        events = session.scalar(select(func.count()).select_from(WebhookEvent))
        statuses = dict(session.execute(select(Message.phone, Message.delivery_status)).all())
    assert events == 3  # two receipts and the late one, each once
    assert statuses == {phones[0]: "delivered", phones[1]: "failed"}


def test_inbound_stop_webhook_suppresses_at_once(db_url: str) -> None:
    with api_client(db_url, auth=False) as client:
        url = f"/webhooks/{WEBHOOK_SECRET}/inbound"
        stop = {
            "from": "+12015550199",
            "body": "Stop please",
            "message_id": "IN1",
            "timestamp": "1764300000",
        }
        assert client.post(url, data=stop).status_code == 200
        assert client.post(url, json=stop).status_code == 200  # a replay
        chat = {"from": "+12015550198", "body": "thanks!", "message_id": "IN2"}
        assert client.post(url, json=[chat]).status_code == 200

        def suppressed() -> list[str]:
            with session_scope(db_url) as session:
                return list(session.scalars(select(Suppression.phone)))

        _wait(lambda: suppressed() == ["+12015550199"])
        with session_scope(db_url) as session:
            assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 2


def test_webhooks_off_without_a_secret(sqlite_url: str) -> None:
    with api_client(sqlite_url, auth=False, webhook_secret="") as client:
        answer = client.post("/webhooks/x/receipts", data={"messageid": "M"})
    assert answer.status_code == 404


def test_schedule_lists_upcoming(db_url: str, client: httpx.Client) -> None:
    seed_list(db_url, "customers", us_numbers(1))
    at = datetime(2031, 1, 2, 9, 0, tzinfo=UTC)
    made = client.post(
        "/api/v1/campaigns",
        json={**DEFINITION, "schedule": {"send_at": at.isoformat()}},
    ).json()
    started = client.post(f"/api/v1/campaigns/{made['id']}/start").json()
    assert started["action"] == "scheduled"
    assert started["next_occurrence"].startswith("2031-01-02T09:00")
    items = client.get("/api/v1/schedule").json()
    assert items[0]["campaign_id"] == made["id"]
    assert items[0]["next"][0].startswith("2031-01-02T09:00")

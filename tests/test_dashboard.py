"""The dashboard's pages over real HTTP on the real app: login, every page, the buttons,
the CSV upload's report, suppressions, and /metrics behind the token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, update

from api.dashboard.auth import COOKIE
from campaigns.activity import record_minute
from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Campaign, Message, Run, Suppression
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread
from tests.apiclient import TOKEN, api_settings, serve_app
from tests.seed import seed_campaign, seed_list, us_numbers


@pytest.fixture
def ui(db_url: str) -> Iterator[httpx.Client]:
    with (
        serve_app(api_settings(db_url)) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        page = client.post("/ui/login", data={"token": TOKEN, "next": "/ui/"})
        assert page.status_code == 303
        yield client


def text(page: httpx.Response) -> str:
    """The visible text of a page, tags stripped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))


def test_pages_need_a_login_and_a_wrong_token_is_refused(sqlite_url: str) -> None:
    with (
        serve_app(api_settings(sqlite_url)) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        page = client.get("/ui/lists")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login?next=/ui/lists"
        refused = client.post("/ui/login", data={"token": "nope", "next": "/ui/"})
        assert refused.status_code == 401
        assert "token: not one of CLARION_API_TOKENS" in refused.text
        assert COOKIE not in client.cookies
        # A forged cookie is no session.
        client.cookies.set(COOKIE, TOKEN, path="/ui")
        assert client.get("/ui/").status_code == 303
        assert client.get("/metrics").status_code == 401
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert "clarion_provider_requests_total" in ok.text or "clarion_messages" in ok.text


def test_campaign_page_shows_live_counts_chart_failures_and_sample(
    db_url: str, ui: httpx.Client
) -> None:
    seed_list(db_url, "customers", us_numbers(40), fields={"first_name": "Ann"})
    campaign_id, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
        session.execute(update(Run).where(Run.id == run_id).values(status="sending"))
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="active"))
        ids = list(session.scalars(select(Message.id).where(Message.run_id == run_id)))
        session.execute(update(Message).where(Message.id.in_(ids[:25])).values(status="sent"))
        session.execute(
            update(Message)
            .where(Message.id.in_(ids[25:28]))
            .values(status="failed", error="provider status INVALID_RECIPIENT")
        )
        session.execute(
            update(Message).where(Message.id.in_(ids[:5])).values(delivery_status="Delivered")
        )
        record_minute(session, run_id, utcnow(), accepted=25, rate_limited=2)
    page = ui.get(f"/ui/campaigns/{campaign_id}")
    assert page.status_code == 200
    body = text(page)
    assert "28 of 40" in body
    assert re.search(r"pending 12 sent 25 delivered 5 undelivered 0 failed 3 suppressed 0", body)
    assert "provider status INVALID_RECIPIENT 3" in body
    assert "GSM7, 1 part" in body  # the sample message and its parts
    assert 'id="pause"' in page.text and 'data-confirm="Pause campaign' in page.text
    assert "<svg" in page.text and "25 accepted, 2 429s" in page.text

    live = ui.get(f"/ui/campaigns/{campaign_id}/live")
    assert live.status_code == 200 and 'id="count-sent"' in live.text
    failures = ui.get(
        f"/ui/campaigns/{campaign_id}/runs/{run_id}/failures",
        params={"reason": "provider status INVALID_RECIPIENT"},
    )
    assert len(re.findall(r"<tr><td class=\"muted\">", failures.text)) == 3

    table = text(ui.get("/ui/"))
    assert "active" in table and "28 / 40" in table

    paused = ui.post(f"/ui/campaigns/{campaign_id}/pause")
    assert paused.status_code == 303
    with session_scope(db_url) as session:
        assert session.get(Run, run_id).status == "paused"  # type: ignore[union-attr]
    again = text(ui.get(paused.headers["location"]))
    assert f"campaign {campaign_id} paused" in again
    assert 'id="resume"' in ui.get(f"/ui/campaigns/{campaign_id}").text


def test_lists_upload_reports_bad_rows_and_suppressions(db_url: str, ui: httpx.Client) -> None:
    csv = "phone_number,first_name\n+12015550123,Ann\nnot-a-number,Bob\n+12015550124,Cy\n"
    page = ui.post(
        "/ui/lists/upload",
        data={"name": "vip"},
        files={"file": ("vip.csv", csv.encode(), "text/csv")},
    )
    assert page.status_code == 200
    body = text(page)
    assert "2 imported" in body and "1 rejected" in body
    assert re.search(r"3 phone_number \S", body)  # the bad row and its field
    assert re.search(r"vip local 2", text(ui.get("/ui/lists")))

    bad = ui.post("/ui/suppressions/add", data={"phone": "12", "reason": "x"})
    assert bad.status_code == 400 and "phone:" in text(bad)
    added = ui.post("/ui/suppressions/add", data={"phone": "+1 201 555 0199", "reason": "asked"})
    assert added.status_code == 303
    found = text(ui.get("/ui/suppressions", params={"q": "5550199"}))
    assert "+12015550199 asked" in found
    assert "None" in text(ui.get("/ui/suppressions", params={"q": "999999"}))
    with session_scope(db_url) as session:
        sid = session.scalar(select(Suppression.id))
    assert ui.post(f"/ui/suppressions/{sid}/remove").status_code == 303
    with session_scope(db_url) as session:
        assert session.scalar(select(Suppression.id)) is None

    assert ui.get("/ui/schedule").status_code == 200


def test_account_page_shows_the_balance_or_says_why_not(sqlite_url: str) -> None:
    sandbox = start_in_thread(SandboxConfig(api_key="account-key", balance=Decimal("1234.5")))
    try:
        for key, expect in (("account-key", "1,234.50 USD"), ("wrong-key", "HTTP 401")):
            settings = api_settings(sqlite_url, sandbox_url=sandbox.base_url, sandbox_api_key=key)
            with (
                serve_app(settings) as base,
                httpx.Client(base_url=base, timeout=30) as client,
            ):
                client.post("/ui/login", data={"token": TOKEN})
                page = client.get("/ui/account")
                assert page.status_code == 200
                assert expect in text(page)
                assert key not in page.text  # the key never shows, even in the error
    finally:
        sandbox.stop()

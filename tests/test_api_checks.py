"""The API's preview, checks and test sends, over real HTTP against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from campaigns.db import session_scope
from campaigns.runs import create_campaign
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread
from tests.apiclient import api_client
from tests.seed import definition, seed_list, us_numbers


@pytest.fixture
def provider() -> Any:
    handle = start_in_thread(SandboxConfig(api_key="api-guard-key"))
    yield (
        {
            "provider": "clicksend",
            "clicksend_base_url": handle.base_url,
            "clicksend_username": handle.state.config.username,
            "clicksend_api_key": "api-guard-key",
        },
        handle,
    )
    handle.stop()


def _campaign(url: str, body: str) -> int:
    with session_scope(url) as session:
        return create_campaign(session, definition(["customers"], body=body)).id


def test_preview_and_checks(sqlite_url: str, provider: Any, tmp_path: Path) -> None:
    settings, _ = provider
    seed_list(sqlite_url, "customers", us_numbers(3))
    campaign_id = _campaign(sqlite_url, "Code {promo_code} for {first_name}")
    with api_client(sqlite_url, **settings) as client:
        answer = client.get(f"/api/v1/campaigns/{campaign_id}/preview", params={"count": 2})
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert len(data["messages"]) == 2 and data["messages"][0]["status"] == "failed"
        assert data["totals"]["recipients"] == 3
        checks = client.get(f"/api/v1/campaigns/{campaign_id}/checks").json()
        assert checks["ok"] is False
        assert [e["check"] for e in checks["errors"]] == ["placeholder_missing_all"]
        assert "opt_out" in [w["check"] for w in checks["warnings"]]
        missing = client.get("/api/v1/campaigns/999/preview")
        assert missing.status_code == 404 and missing.json()["field"] == "campaign_id"


def test_check_a_definition_before_creating_it(sqlite_url: str, provider: Any) -> None:
    settings, _ = provider
    seed_list(sqlite_url, "customers", us_numbers(3))
    with api_client(sqlite_url, **settings) as client:
        good = client.post(
            "/api/v1/checks",
            json=definition(["customers"], body="Hi {first_name}. Reply STOP to opt out"),
        )
        assert good.status_code == 200, good.text
        assert good.json()["ok"] is True and good.json()["totals"]["messages"] == 3
        long = client.post(
            "/api/v1/checks", json=definition(["customers"], body="x" * 1000 + " STOP")
        )
        assert [e["check"] for e in long.json()["errors"]] == ["parts"]
        bad = client.post("/api/v1/checks", json={"name": "x"})
        assert bad.status_code == 422 and bad.json()["error"]


def test_test_send(sqlite_url: str, provider: Any) -> None:
    settings, handle = provider
    seed_list(sqlite_url, "customers", us_numbers(2))
    campaign_id = _campaign(sqlite_url, "Hi {first_name}. Reply STOP to opt out")
    with api_client(sqlite_url, **settings) as client:
        sent = client.post(f"/api/v1/campaigns/{campaign_id}/test", json={"to": ["+14055555555"]})
        assert sent.status_code == 200, sent.text
        assert sent.json()["messages"][0]["status"] == "SUCCESS"
        assert [(m.to, m.body) for m in handle.state.order] == [
            ("+14055555555", "Hi N0. Reply STOP to opt out")
        ]
        bad = client.post(f"/api/v1/campaigns/{campaign_id}/test", json={"to": ["12"]})
        assert bad.status_code == 422 and bad.json()["field"] == "to"


def test_the_shared_start_checks_first(sqlite_url: str, provider: Any) -> None:
    """workers.control.start, behind the CLI, the API and the dashboard's button."""
    from decimal import Decimal

    from campaigns.runs import CampaignError, get_campaign
    from config.settings import Settings
    from workers import control
    from workers.preflight import StartRefused

    values, handle = provider
    settings = Settings(database_url=sqlite_url, broker_url="memory://", **values)
    seed_list(sqlite_url, "customers", us_numbers(3))
    broken = _campaign(sqlite_url, "Code {promo_code}. Reply STOP to opt out")
    with pytest.raises(StartRefused) as refused:
        control.start(settings, broken, enqueue=False)
    assert isinstance(refused.value, CampaignError)  # the dashboard shows it as it is
    assert "no recipient has a value for promo_code" in str(refused.value)
    handle.state.balance = Decimal("0.01")
    fine = _campaign(sqlite_url, "Hi {first_name}. Reply STOP to opt out")
    with pytest.raises(StartRefused, match="top up, or start with --force"):
        control.start(settings, fine, enqueue=False)
    outcome = control.start(settings, fine, enqueue=False, force=True)
    assert outcome.action == "started"
    assert "balance is 0.010000" in outcome.to_json()["forced"]
    with session_scope(sqlite_url) as session:
        assert get_campaign(session, broken).status == "draft"
        assert get_campaign(session, fine).status == "active"


def test_api_start_refuses_what_the_balance_cannot_cover_unless_forced(
    sqlite_url: str, provider: Any
) -> None:
    from decimal import Decimal

    settings, handle = provider
    handle.state.balance = Decimal("0.01")
    seed_list(sqlite_url, "customers", us_numbers(3))
    campaign_id = _campaign(sqlite_url, "Hi {first_name}. Reply STOP to opt out")
    # A real broker is not needed: an unscheduled start only enqueues (in memory here).
    with api_client(sqlite_url, **settings) as client:
        refused = client.post(f"/api/v1/campaigns/{campaign_id}/start")
        assert refused.status_code == 409, refused.text
        assert "top up" in refused.json()["error"]
        forced = client.post(f"/api/v1/campaigns/{campaign_id}/start", params={"force": "true"})
        assert forced.status_code == 200, forced.text
        assert forced.json()["action"] == "started"
        assert "balance is 0.010000" in forced.json()["extra"]["forced"]


def test_api_create_runs_the_checks(sqlite_url: str, provider: Any) -> None:
    settings, _ = provider
    seed_list(sqlite_url, "customers", us_numbers(3))
    with api_client(sqlite_url, **settings) as client:
        refused = client.post(
            "/api/v1/campaigns", json=definition(["customers"], body="Code {promo_code}. STOP")
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "message.body {promo_code}"
        assert "[placeholder_missing_all]" in refused.json()["errors"][0]["message"]
        assert client.get("/api/v1/campaigns").json()["items"] == []
        created = client.post(
            "/api/v1/campaigns", json=definition(["customers"], body="Hi {first_name}, 20% off")
        )
        assert created.status_code == 201, created.text
        assert [w["check"] for w in created.json()["warnings"]] == ["opt_out", "sender_id"]


def test_an_unreadable_balance_stops_a_start_unless_forced(sqlite_url: str) -> None:
    from campaigns.runs import get_campaign
    from config.settings import Settings
    from workers import control
    from workers.preflight import StartRefused

    # Nothing listens on the discard port: GET /account cannot be answered.
    settings = Settings(
        database_url=sqlite_url,
        provider="clicksend",
        clicksend_base_url="http://127.0.0.1:9/v3",
        clicksend_username="u",
        clicksend_api_key="k",
        http_timeout_seconds=2,
    )
    seed_list(sqlite_url, "customers", us_numbers(2))
    campaign_id = _campaign(sqlite_url, "Hi {first_name}. Reply STOP to opt out")
    with pytest.raises(StartRefused, match="balance could not be read"):
        control.start(settings, campaign_id, enqueue=False)
    outcome = control.start(settings, campaign_id, enqueue=False, force=True)
    assert outcome.action == "started" and "could not be read" in outcome.to_json()["forced"]
    with session_scope(sqlite_url) as session:
        assert get_campaign(session, campaign_id).status == "active"

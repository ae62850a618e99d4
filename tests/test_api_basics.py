"""The API's frame: token auth, JSON errors naming the field, /health, /openapi.json."""

from __future__ import annotations

import pytest

from api.auth import token_matches
from tests.apiclient import TOKEN, api_client


def test_health_and_openapi_answer_without_a_token(db_url: str) -> None:
    with api_client(db_url, auth=False) as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        doc = client.get("/openapi.json")
        assert doc.status_code == 200
        assert "/api/v1/campaigns" in doc.json()["paths"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "not-bearer"],
)
def test_api_refuses_without_a_valid_token(db_url: str, headers: dict[str, str]) -> None:
    with api_client(db_url, auth=False) as client:
        answer = client.get("/api/v1/campaigns", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]
    assert TOKEN not in answer.text


def test_every_configured_token_is_accepted(sqlite_url: str) -> None:
    with api_client(sqlite_url, auth=False) as client:
        for token in ("other-token", TOKEN):
            answer = client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text


def test_no_configured_token_refuses_everything(sqlite_url: str) -> None:
    with api_client(sqlite_url, api_tokens="") as client:
        answer = client.get("/api/v1/campaigns")
    assert answer.status_code == 401
    assert "CLARION_API_TOKENS" in answer.json()["error"]


def test_token_comparison() -> None:
    assert token_matches("b", ["a", "b"])
    assert not token_matches("", ["a"])
    assert not token_matches("a", [])
    assert not token_matches("ab", ["a"])


def test_bad_query_value_names_the_field(db_url: str) -> None:
    with api_client(db_url) as client:
        answer = client.get("/api/v1/campaigns", params={"limit": 0})
    assert answer.status_code == 422
    body = answer.json()
    assert body["field"] == "limit"
    assert body["error"].startswith("limit: ")


def test_unknown_campaign_is_404_naming_it(db_url: str) -> None:
    with api_client(db_url) as client:
        answer = client.get("/api/v1/campaigns/999")
    assert answer.status_code == 404
    assert answer.json()["error"] == "campaign_id: campaign 999: no such campaign"

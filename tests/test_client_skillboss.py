"""The SkillBoss hub: /v1/run unwrapping and errors, and ClickSend through the hub."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clicksend import errors
from clicksend.client import ClickSendClient
from clicksend.skillboss import SkillBossClient
from config.settings import Settings
from workers.context import provider_client

HUB = "https://api.skillboss.test"


class Hub:
    """Answers every request with ``status``/``body`` and keeps what it was sent."""

    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None):
        self.body, self.status, self.headers = body, status, headers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body, headers=self.headers)

    def client(self) -> SkillBossClient:
        return SkillBossClient(HUB, "hub-key", transport=httpx.MockTransport(self))

    def sent(self, index: int = 0) -> Any:
        return json.loads(self.requests[index].content)


def test_run_posts_model_and_inputs_and_unwraps_result() -> None:
    hub = Hub({"status": "success", "result": {"id": "msg_01", "status": "submitted"}})
    result = hub.client().run("prelude/notify-send", {"to": "+15551234567"})
    assert result == {"id": "msg_01", "status": "submitted"}
    request = hub.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/run")
    assert request.headers["Authorization"] == "Bearer hub-key"
    assert hub.sent() == {"model": "prelude/notify-send", "inputs": {"to": "+15551234567"}}


def test_helpers_send_the_documented_inputs() -> None:
    hub = Hub({"status": "success", "result": {}})
    client = hub.client()
    client.notify_send("tmpl_1", "+15551234567", {"message": "Hello"})
    client.verify_send("+15551234567")
    client.verify_check("+15551234567", "12345")
    client.discover()
    assert hub.sent(0) == {
        "model": "prelude/notify-send",
        "inputs": {
            "template_id": "tmpl_1",
            "to": "+15551234567",
            "variables": {"message": "Hello"},
        },
    }
    target = {"type": "phone_number", "value": "+15551234567"}
    assert hub.sent(1) == {"model": "prelude/verify-send", "inputs": {"target": target}}
    assert hub.sent(2) == {
        "model": "prelude/verify-check",
        "inputs": {"target": target, "code": "12345"},
    }
    assert hub.sent(3) == {"discover": True}


def test_discover_without_envelope_returns_the_answer() -> None:
    catalogue = {"models": [{"id": "prelude/notify-send"}]}
    assert Hub(catalogue).client().discover() == catalogue


@pytest.mark.parametrize(
    ("body", "cls", "code"),
    [
        ({"status": "error", "error": "template not found"}, errors.BadRequestError, None),
        ({"status": "error", "code": 401, "message": "bad key"}, errors.AuthenticationError, 401),
        (
            {"status": "failed", "error": {"code": 429, "message": "slow"}},
            errors.RateLimitedError,
            429,
        ),
        ({"status": "error", "status_code": 502, "message": "upstream"}, errors.ServerError, 502),
        ({"result": {}}, errors.BadRequestError, None),
        (["not", "an", "object"], errors.BadRequestError, None),
    ],
)
def test_non_success_status_raises_from_the_hierarchy(
    body: Any, cls: type[errors.ClickSendError], code: int | None
) -> None:
    with pytest.raises(cls) as caught:
        Hub(body).client().run("prelude/notify-send", {})
    assert type(caught.value) is cls
    assert caught.value.status_code == code
    assert "prelude/notify-send" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, errors.AuthenticationError), (429, errors.RateLimitedError), (500, errors.ServerError)],
)
def test_http_errors_map_like_clicksend(status: int, cls: type[errors.ClickSendError]) -> None:
    hub = Hub({"status": "error", "message": "nope"}, status, {"Retry-After": "20"})
    with pytest.raises(cls) as caught:
        hub.client().notify_send("t", "+15551234567", {})
    assert caught.value.status_code == status
    if isinstance(caught.value, errors.RateLimitedError):
        assert caught.value.retry_after == 20


def test_clicksend_through_the_hub_uses_bearer_and_hub_paths() -> None:
    hub = Hub({"http_code": 200, "response_code": "SUCCESS", "data": {"username": "u"}})
    client = ClickSendClient.skillboss(HUB + "/", "hub-key", transport=httpx.MockTransport(hub))
    assert client.account().username == "u"
    client.send_sms([{"to": "+15551234567", "body": "Hello", "source": "api"}])
    assert [r.url.path for r in hub.requests] == ["/clicksend/v3/account", "/clicksend/v3/sms/send"]
    assert all(r.headers["Authorization"] == "Bearer hub-key" for r in hub.requests)


@pytest.mark.parametrize(
    ("fields", "url", "auth"),
    [
        (
            {"provider": "sandbox", "sandbox_url": "http://127.0.0.1:9/v3"},
            "http://127.0.0.1:9/v3/account",
            "Basic c2FuZGJveDpzYW5kYm94LWtleQ==",  # sandbox:sandbox-key
        ),
        (
            {"provider": "clicksend", "clicksend_username": "me", "clicksend_api_key": "k"},
            "https://rest.clicksend.com/v3/account",
            "Basic bWU6aw==",  # me:k
        ),
        (
            {"provider": "skillboss", "skillboss_api_key": "hub-key"},
            "https://api.skillboss.com/clicksend/v3/account",
            "Bearer hub-key",
        ),
    ],
)
def test_provider_client_picks_the_provider(fields: dict[str, Any], url: str, auth: str) -> None:
    settings = Settings(_env_file=None, http_timeout_seconds=12.5, **fields)  # type: ignore[call-arg]
    hub = Hub({"data": {"username": "u"}})
    client = provider_client(settings, transport=httpx.MockTransport(hub))
    client.account()
    assert str(hub.requests[0].url) == url
    assert hub.requests[0].headers["Authorization"] == auth
    assert hub.requests[0].extensions["timeout"]["read"] == 12.5

"""The API key never shows: not in reprs, log lines, exception messages; and every request
carries a timeout."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from pydantic import SecretStr

from clicksend.client import ClickSendClient
from clicksend.errors import ClickSendError
from clicksend.skillboss import SkillBossClient
from config.settings import Settings
from workers.context import provider_client

KEY = "sk-live-7f3a9c0e5d2b41a8"


def leaks(text: str) -> bool:
    encoded = base64.b64encode(f"user:{KEY}".encode()).decode()
    return KEY in text or encoded in text


def every_failure() -> list[httpx.Response | Exception]:
    return [
        httpx.Response(400, json={"response_code": "BAD_REQUEST", "response_msg": "bad"}),
        httpx.Response(401, json={"response_code": "UNAUTHORIZED", "response_msg": "no"}),
        httpx.Response(403, json={}),
        httpx.Response(404, text="missing"),
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(500),
        httpx.Response(200, text="not json"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("closed"),
    ]


@pytest.mark.parametrize("outcome", every_failure(), ids=lambda o: type(o).__name__)
def test_key_absent_from_errors_and_logs(
    outcome: httpx.Response | Exception, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    caplog.set_level(logging.DEBUG)
    for client in (
        ClickSendClient("https://x.test/v3", "user", KEY, transport=httpx.MockTransport(handler)),
        ClickSendClient.skillboss("https://hub.test", KEY, transport=httpx.MockTransport(handler)),
    ):
        with pytest.raises(ClickSendError) as caught:
            client.send_sms([{"to": "+61411111111", "body": "hi"}])
        exc = caught.value
        assert not leaks(str(exc)) and not leaks(repr(exc))
        assert not leaks(str(exc.__cause__))
        assert not leaks(repr(client))
    assert caplog.records, "the client should log its requests at DEBUG"
    assert not any(leaks(r.getMessage()) for r in caplog.records)


def test_reprs_hide_the_key() -> None:
    clients: list[object] = [
        ClickSendClient("https://x.test/v3", "user", KEY),
        ClickSendClient.skillboss("https://hub.test", KEY),
        SkillBossClient("https://hub.test", KEY),
        provider_client(
            Settings(_env_file=None, provider="clicksend", clicksend_api_key=SecretStr(KEY))  # type: ignore[call-arg]
        ),
    ]
    for client in clients:
        assert not leaks(repr(client))
        assert not leaks(str(vars(client)))


def test_base_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="base_url") as caught:
        ClickSendClient(f"https://user:{KEY}@x.test/v3", "user", KEY)
    assert not leaks(str(caught.value))


class _Unauthorised(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"http_code":401,"response_code":"UNAUTHORIZED","response_msg":"Invalid."}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorised)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v3"
    server.shutdown()
    server.server_close()


def test_real_transport_logs_no_key(loopback_server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = ClickSendClient(loopback_server, "user", KEY, timeout=5)
    with client, pytest.raises(ClickSendError) as caught:
        client.account()
    assert caught.value.status_code == 401
    messages = [r.getMessage() for r in caplog.records]
    assert any("/account" in m for m in messages)
    assert not any(leaks(m) for m in messages)
    assert not leaks(str(caught.value))


@pytest.mark.parametrize("timeout", [0, -1])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        ClickSendClient("https://x.test/v3", "user", KEY, timeout=timeout)


def test_every_request_carries_a_timeout() -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"data": {"count": 1}})

    transport = httpx.MockTransport(handler)
    client = ClickSendClient("https://x.test/v3", "user", KEY, timeout=7.5, transport=transport)
    client.account()
    client.cancel_all_sms("run")
    list(client.sms_history())
    hub = SkillBossClient("https://hub.test", KEY, timeout=4, transport=transport)
    with pytest.raises(ClickSendError):
        hub.run("m", {})
    assert len(seen) == 4
    assert seen[:3] == [dict.fromkeys(("connect", "read", "write", "pool"), 7.5)] * 3
    assert seen[3] == dict.fromkeys(("connect", "read", "write", "pool"), 4)

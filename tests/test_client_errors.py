"""Each failure of a ClickSend call raises its own class, with ClickSend's codes attached."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from clicksend import errors
from clicksend.client import ClickSendClient
from clicksend.errors import retry_after_seconds

BASE = "https://rest.clicksend.test/v3"


def client_answering(handler: Callable[[httpx.Request], httpx.Response]) -> ClickSendClient:
    return ClickSendClient(BASE, "user", "key-123", transport=httpx.MockTransport(handler))


def failing(status: int, body: object, headers: dict[str, str] | None = None) -> ClickSendClient:
    return client_answering(lambda _: httpx.Response(status, json=body, headers=headers))


def envelope(status: int, code: str, msg: str) -> dict[str, object]:
    return {"http_code": status, "response_code": code, "response_msg": msg, "data": None}


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "BAD_REQUEST", errors.BadRequestError),
        (401, "UNAUTHORIZED", errors.AuthenticationError),
        (403, "FORBIDDEN", errors.ForbiddenError),
        (404, "NOT_FOUND", errors.NotFoundError),
        (405, "METHOD_NOT_ALLOWED", errors.BadRequestError),
        (422, "INVALID_REQUEST", errors.BadRequestError),
        (429, "TOO_MANY_REQUESTS", errors.RateLimitedError),
        (500, "INTERNAL_SERVER_ERROR", errors.ServerError),
        (503, "SERVICE_UNAVAILABLE", errors.ServerError),
    ],
)
def test_http_status_maps_to_its_class(status: int, code: str, cls: type) -> None:
    client = failing(status, envelope(status, code, "Something specific went wrong."))
    with pytest.raises(cls) as caught:
        client.send_sms([{"to": "+61411111111", "body": "hi"}])
    exc = caught.value
    assert type(exc) is cls
    assert isinstance(exc, errors.ClickSendError)
    assert exc.status_code == status
    assert exc.response_code == code
    assert exc.response_msg == "Something specific went wrong."
    assert "POST /sms/send" in str(exc) and str(status) in str(exc)


def test_bad_request_keeps_clicksends_message_even_with_a_numeric_code() -> None:
    # Recorded from the real service: response_code is the number 400 here.
    body = {
        "http_code": 400,
        "response_code": 400,
        "response_msg": "preg_replace(): bad",
        "data": None,
    }
    with pytest.raises(errors.BadRequestError) as caught:
        failing(400, body).create_contact(1, {"phone_number": "+61411111111"})
    assert caught.value.response_code == "400"
    assert caught.value.response_msg == "preg_replace(): bad"


def test_error_without_json_body_still_maps_by_status() -> None:
    client = client_answering(lambda _: httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(errors.ServerError) as caught:
        client.account()
    assert caught.value.status_code == 502
    assert caught.value.response_code is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "23"}, 23.0),
        ({"Retry-After": "7", "ratelimit-reset": "50"}, 7.0),
        ({"ratelimit-reset": "31"}, 31.0),
        ({"x-ratelimit-reset": "12"}, 12.0),
        ({}, None),
    ],
)
def test_rate_limited_carries_retry_after(headers: dict[str, str], expected: float | None) -> None:
    client = failing(429, envelope(429, "TOO_MANY_REQUESTS", "Slow down."), headers)
    with pytest.raises(errors.RateLimitedError) as caught:
        client.send_sms([{"to": "+61411111111", "body": "hi"}])
    assert caught.value.retry_after == expected


def test_retry_after_as_http_date_and_epoch_reset() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds({"Retry-After": later}, now=now.timestamp()) == pytest.approx(30)
    epoch = str(int(now.timestamp()) + 45)
    assert retry_after_seconds({"X-RateLimit-Reset": epoch}, now=now.timestamp()) == 45
    # An unreadable Retry-After falls through to the next header.
    assert retry_after_seconds({"Retry-After": "soon", "ratelimit-reset": "9"}, now=0) == 9


def raising(exc: Exception) -> ClickSendClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return client_answering(handler)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out"),
        httpx.WriteTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
    ],
)
def test_failure_after_sending_is_outcome_unknown(exc: Exception) -> None:
    with pytest.raises(errors.OutcomeUnknownError) as caught:
        raising(exc).send_sms([{"to": "+61411111111", "body": "hi"}])
    assert caught.value.__cause__ is exc


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")]
)
def test_failure_before_sending_is_connection_failed(exc: Exception) -> None:
    with pytest.raises(errors.ConnectionFailedError):
        raising(exc).send_sms([{"to": "+61411111111", "body": "hi"}])


def test_success_status_with_unreadable_body_is_outcome_unknown() -> None:
    client = client_answering(lambda _: httpx.Response(200, text="<html>proxy page</html>"))
    with pytest.raises(errors.OutcomeUnknownError) as caught:
        client.send_sms([{"to": "+61411111111", "body": "hi"}])
    assert caught.value.status_code == 200


def test_refused_connection_on_a_real_socket_is_connection_failed() -> None:
    # A port that was just free: nothing listens there, so the connect is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ClickSendClient(f"http://127.0.0.1:{port}/v3", "user", "key-123", timeout=5)
    with client, pytest.raises(errors.ConnectionFailedError):
        client.account()


@pytest.mark.parametrize(
    "failure",
    [
        lambda _: httpx.Response(502, json={"response_code": "BAD_GATEWAY"}),
        lambda _: httpx.Response(503, text="down"),
        lambda _: httpx.Response(200, text="<html>proxy page</html>"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_every_unknown_outcome_is_caught_by_one_category(failure: Any) -> None:
    # 5xx, a timeout after sending and a dropped connection all mean "may have been acted
    # on": a caller catches them with one class and looks the messages up.
    client = client_answering(failure) if not isinstance(failure, Exception) else raising(failure)
    with pytest.raises(errors.OutcomeUnknownError):
        client.send_sms([{"to": "+61411111111", "body": "hi"}])


def test_no_error_class_shares_a_name_with_httpx() -> None:
    ours = {name for name, value in vars(errors).items() if isinstance(value, type)}
    assert ours & set(vars(httpx)) == set()

"""The SkillBoss API hub's model endpoint, ``POST /v1/run`` (Bearer auth).

The hub answers ``{"status": "success", "result": {...}}``; ``run`` returns ``result``.
Any other status, and any HTTP error, raises the same ``clicksend.errors`` classes as the
ClickSend client (an HTTP-like ``status_code``/``code`` in the body picks the class; a
failure without one is a ``BadRequestError``). The hub's ClickSend v3 paths are served by
``ClickSendClient.skillboss``.

Models used here (Prelude behind the hub): ``prelude/notify-send`` (a template set up in
Prelude's dashboard, sent with ``variables``), ``prelude/verify-send`` and
``prelude/verify-check`` (one-time codes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from clicksend.coerce import as_mapping, to_int, to_str
from clicksend.errors import BadRequestError, ClickSendError, class_for_status
from clicksend.http import BearerAuth, Closing, HttpCore

RUN_PATH = "/v1/run"
NOTIFY_SEND = "prelude/notify-send"
VERIFY_SEND = "prelude/verify-send"
VERIFY_CHECK = "prelude/verify-check"


class SkillBossClient(Closing):
    """Calls models through the hub at ``base_url`` (e.g. ``https://api.skillboss.com``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = HttpCore(base_url, BearerAuth(api_key), timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"SkillBossClient({self._core.base_url!r})"

    def close(self) -> None:
        self._core.close()

    def run(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v1/run ``{"model": model, "inputs": inputs}``; the unwrapped ``result``."""
        body = self._core.request("POST", RUN_PATH, json={"model": model, "inputs": dict(inputs)})
        return unwrap(body, f"POST {RUN_PATH} {model}")

    def discover(self) -> dict[str, Any]:
        """POST /v1/run ``{"discover": true}``: what the hub offers (the whole answer when
        it carries no status envelope)."""
        body = self._core.request("POST", RUN_PATH, json={"discover": True})
        if isinstance(body, Mapping) and "status" in body:
            return unwrap(body, f"POST {RUN_PATH} discover")
        return dict(as_mapping(body))

    def notify_send(
        self,
        template_id: str,
        to: str,
        variables: Mapping[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
    ) -> dict[str, Any]:
        """Send a Prelude template message to ``to`` (E.164) with its ``variables``;
        ``correlation_id`` is echoed back and kept with the message (our run key)."""
        inputs: dict[str, Any] = {
            "template_id": template_id,
            "to": to,
            "variables": dict(variables or {}),
        }
        if correlation_id:
            inputs["correlation_id"] = correlation_id
        return self.run(NOTIFY_SEND, inputs)

    def verify_send(self, to: str, **options: Any) -> dict[str, Any]:
        """Start a one-time-code verification of ``to``; ``options`` pass through
        (Prelude's ``signals``, ``options``...)."""
        return self.run(VERIFY_SEND, {"target": _phone_target(to), **options})

    def verify_check(self, to: str, code: str) -> dict[str, Any]:
        """Check the ``code`` the person at ``to`` entered; the answer's ``status`` says
        whether it matched."""
        return self.run(VERIFY_CHECK, {"target": _phone_target(to), "code": code})


def _phone_target(to: str) -> dict[str, str]:
    return {"type": "phone_number", "value": to}


def unwrap(body: Any, where: str) -> dict[str, Any]:
    """``result`` of a ``{"status": "success", "result": ...}`` answer, or the error it is."""
    envelope = as_mapping(body)
    status = to_str(envelope.get("status"))
    if status is not None and status.lower() == "success":
        result = envelope.get("result")
        return dict(result) if isinstance(result, Mapping) else {"result": result}
    raise _run_error(envelope, status, where)


def _run_error(envelope: Mapping[str, Any], status: str | None, where: str) -> ClickSendError:
    error = envelope.get("error")
    detail = as_mapping(error)
    text = to_str(envelope.get("message") or detail.get("message") or error)
    code = to_int(envelope.get("status_code") or envelope.get("code") or detail.get("code"))
    cls = class_for_status(code) if code is not None and code >= 400 else BadRequestError
    message = f"{where}: status {status or 'missing'}" + (f": {text}" if text else "")
    return cls(message, status_code=code, response_code=status, response_msg=text)

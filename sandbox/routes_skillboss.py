"""The SkillBoss hub's model endpoint, POST /v1/run: prelude/notify-send, verify-send,
verify-check, and {"discover": true}. Answers are {"status": "success", "result": {...}}.

A notify-send is an SMS like any other: recorded, charged and in the ledger. Verification
codes are always 123456 in the sandbox, so tests can complete a check.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from sandbox.envelope import json_response, read_json
from sandbox.faults import Fault
from sandbox.messaging import Handler, state_of
from sandbox.numbers import lookup
from sandbox.sending import submit
from sandbox.state import SandboxState

SANDBOX_CODE = "123456"
MODELS: dict[str, dict[str, Any]] = {
    "prelude/notify-send": {
        "inputs": {"template_id": "string", "to": "string", "variables": "object"}
    },
    "prelude/verify-send": {"inputs": {"target": {"type": "phone_number", "value": "string"}}},
    "prelude/verify-check": {
        "inputs": {"target": {"type": "phone_number", "value": "string"}, "code": "string"}
    },
}
PLACEHOLDER = re.compile(r"\{\{?\s*(\w+)\s*\}?\}")


def failure(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """The hub's error answer."""
    return json_response(
        {"status": "error", "error": {"message": message}}, status=status, headers=headers
    )


def success(result: dict[str, Any]) -> web.Response:
    return json_response({"status": "success", "result": result})


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _render(state: SandboxState, template_id: str, variables: dict[str, Any]) -> str:
    """The text: our SMS template with that id (or name) filled in, else the "message" variable."""
    with state.lock:
        template = next(
            (
                t
                for t in state.templates.values()
                if template_id in (str(t.template_id), t.template_name)
            ),
            None,
        )
    if template is None:
        return str(
            variables.get("message") or f"[{template_id}] " + " ".join(map(str, variables.values()))
        )
    return PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), m.group(0))), template.body)


def _target(inputs: dict[str, Any]) -> str | None:
    target = inputs.get("target")
    if isinstance(target, dict) and isinstance(target.get("value"), str):
        return str(target["value"])
    to = inputs.get("to")
    return to if isinstance(to, str) else None


def notify_send(state: SandboxState, inputs: dict[str, Any]) -> web.Response:
    template_id, to, variables = (
        inputs.get("template_id"),
        inputs.get("to"),
        inputs.get("variables") or {},
    )
    if not isinstance(template_id, str) or not template_id:
        return failure(400, "inputs.template_id: a template id is required")
    if not isinstance(to, str) or not to:
        return failure(400, "inputs.to: a phone number is required")
    if not isinstance(variables, dict):
        return failure(400, "inputs.variables: expected an object")
    body = _render(state, template_id, variables)
    message = {"to": to, "body": body, "custom_string": str(inputs.get("correlation_id") or "")}
    entry = submit(state, "sms", {"messages": [message]}, commit=True).entries[0]
    if entry["status"] != "SUCCESS":
        return failure(400, f"inputs.to: message refused ({entry['status']})")
    now = datetime.now(UTC)
    return success(
        {
            "id": entry["message_id"],
            "to": entry["to"],
            "template_id": template_id,
            "variables": variables,
            "correlation_id": message["custom_string"],
            "created_at": _iso(now),
            "expires_at": _iso(now + timedelta(days=1)),
        }
    )


def verify_send(state: SandboxState, inputs: dict[str, Any]) -> web.Response:
    number = _target(inputs)
    if number is None or not lookup(number).valid:
        return failure(400, "inputs.target.value: a valid phone number is required")
    e164 = lookup(number).e164
    with state.lock:
        state.verifications[e164] = SANDBOX_CODE
    return success(
        {
            "id": f"vrf_{uuid.uuid4().hex[:26]}",
            "status": "success",
            "method": "message",
            "channels": ["sms"],
        }
    )


def verify_check(state: SandboxState, inputs: dict[str, Any]) -> web.Response:
    number, code = _target(inputs), inputs.get("code")
    if number is None or not isinstance(code, str):
        return failure(400, "inputs.target.value and inputs.code are required")
    e164 = lookup(number).e164
    with state.lock:
        expected = state.verifications.get(e164)
        if expected is None:
            status = "expired_or_not_found"
        elif code == expected:
            status = "success"
            del state.verifications[e164]
        else:
            status = "failure"
    return success({"id": f"vrf_{uuid.uuid4().hex[:26]}", "status": status})


async def run(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    body = await read_json(request)
    if body.get("discover") is True:
        return success({"models": [{"id": name, **spec} for name, spec in MODELS.items()]})
    model, inputs = body.get("model"), body.get("inputs")
    if model not in MODELS:
        return failure(400, f"model: unknown model {model!r}; known: {', '.join(MODELS)}")
    if not isinstance(inputs, dict):
        return failure(400, "inputs: an object is required")
    if model == "prelude/notify-send":
        # A notify-send is a send: the send faults apply to it (error_rate answers 500 and
        # accepts nothing).
        with state.lock:
            fault = state.faults.pick(state.config.error_rate, 0.0)
            if fault is Fault.ERROR:
                state.stats.injected_500 += 1
        if fault is Fault.ERROR:
            return failure(500, "Internal server error.")
    handler = {"prelude/notify-send": notify_send, "prelude/verify-send": verify_send}.get(
        str(model), verify_check
    )
    return handler(state, inputs)


ROUTES: list[tuple[str, str, Handler]] = [("POST", "/v1/run", run)]

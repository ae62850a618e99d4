"""SMS endpoints: send, price, history, inbound, receipts, cancel, templates."""

from __future__ import annotations

from aiohttp import web

from sandbox import render
from sandbox.envelope import BadRequest, Missing, ok, paged, read_json
from sandbox.messaging import (
    Handler,
    cancel_all_handler,
    cancel_handler,
    history_handler,
    price_handler,
    receipt_handler,
    receipts_handler,
    receipts_read_handler,
    send_handler,
    state_of,
)
from sandbox.records import Template


async def inbound(request: web.Request) -> web.StreamResponse:
    """GET /sms/inbound: replies not yet marked read."""
    state = state_of(request)
    with state.lock:
        unread = [i for i in state.inbound if not i.read]
    return paged(request, unread, render.inbound, "Here are your inbound messages.")


async def inbound_read(request: web.Request) -> web.StreamResponse:
    """PUT /sms/inbound-read: mark replies read (all, or those before date_before)."""
    state = state_of(request)
    before = (await read_json(request)).get("date_before")
    if before is not None and not isinstance(before, int):
        raise BadRequest("date_before: expected a Unix timestamp")
    with state.lock:
        for reply in state.inbound:
            if before is None or reply.timestamp < before:
                reply.read = True
    return ok(None, "Inbound messages have been marked as read.")


def _template_fields(body: dict[str, object], *, partial: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("template_name", "body"):
        value = body.get(name)
        if value is None and partial:
            continue
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"{name}: a non-empty string is required")
        out[name] = value
    return out


def _template(request: web.Request) -> Template:
    state = state_of(request)
    raw = request.match_info["template_id"]
    template = state.templates.get(int(raw)) if raw.isdigit() else None
    if template is None:
        raise Missing(f"template_id: no template {raw}")
    return template


async def templates(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    with state.lock:
        rows = list(state.templates.values())
    return paged(request, rows, render.template, "Here are your templates.")


async def template_create(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    fields = _template_fields(await read_json(request), partial=False)
    with state.lock:
        template = Template(state.next_id(), fields["template_name"], fields["body"])
        state.templates[template.template_id] = template
    return ok(render.template(template), "Your new template has been added.")


async def template_get(request: web.Request) -> web.StreamResponse:
    with state_of(request).lock:
        return ok(render.template(_template(request)), "Here is your template.")


async def template_update(request: web.Request) -> web.StreamResponse:
    fields = _template_fields(await read_json(request), partial=True)
    with state_of(request).lock:
        template = _template(request)
        template.template_name = fields.get("template_name", template.template_name)
        template.body = fields.get("body", template.body)
        return ok(render.template(template), "Your template has been updated.")


async def template_delete(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    with state.lock:
        del state.templates[_template(request).template_id]
    return ok([], "Your template has been deleted.")


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/sms/send", send_handler("sms")),
    ("POST", "/sms/price", price_handler("sms")),
    ("GET", "/sms/history", history_handler("sms", render.sms_history)),
    ("GET", "/sms/inbound", inbound),
    ("PUT", "/sms/inbound-read", inbound_read),
    ("GET", "/sms/receipts", receipts_handler("sms")),
    ("PUT", "/sms/receipts-read", receipts_read_handler("sms")),
    ("GET", "/sms/receipts/{message_id}", receipt_handler("sms")),
    ("PUT", "/sms/cancel-all", cancel_all_handler("sms")),
    ("PUT", "/sms/{message_id}/cancel", cancel_handler("sms")),
    ("GET", "/sms/templates", templates),
    ("POST", "/sms/templates", template_create),
    ("GET", "/sms/templates/{template_id}", template_get),
    ("PUT", "/sms/templates/{template_id}", template_update),
    ("DELETE", "/sms/templates/{template_id}", template_delete),
]

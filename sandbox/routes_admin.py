"""Admin endpoints outside /v3 (no auth, JSON): ledger, stats, config, reset, inbound, advance."""

from __future__ import annotations

from aiohttp import web

from sandbox import render
from sandbox.envelope import BadRequest, json_response, read_json
from sandbox.messaging import Handler, state_of


async def ledger(request: web.Request) -> web.StreamResponse:
    """Every message accepted, by recipient, custom_string and pair; duplicates listed."""
    return json_response(state_of(request).ledger(request.query.get("custom_string")))


async def stats(request: web.Request) -> web.StreamResponse:
    return json_response(state_of(request).summary())


async def config(request: web.Request) -> web.StreamResponse:
    """Partial update of the fault, rate-limit and receipt fields; answers the new values."""
    state = state_of(request)
    body = await read_json(request)
    try:
        changed = state.reconfigure(body)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    with state.lock:
        current = {name: getattr(state.config, name) for name in changed}
    return json_response({"changed": changed, "config": current})


async def reset(request: web.Request) -> web.StreamResponse:
    state_of(request).reset()
    return json_response({"reset": True})


async def inbound(request: web.Request) -> web.StreamResponse:
    """Inject a reply: {"from": "+61...", "body": "STOP", "to": optional}."""
    body = await read_json(request)
    sender, text, to = body.get("from"), body.get("body"), body.get("to")
    if not isinstance(sender, str) or not sender:
        raise BadRequest("from: the replying number is required")
    if not isinstance(text, str):
        raise BadRequest("body: a string is required")
    if to is not None and not isinstance(to, str):
        raise BadRequest("to: expected a string")
    reply = state_of(request).inject_inbound(sender, text, to)
    return json_response(render.inbound(reply))


async def advance(request: web.Request) -> web.StreamResponse:
    """Move the sandbox clock forward by {"seconds": N} (default 0) and process what is due."""
    seconds = (await read_json(request)).get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise BadRequest("seconds: a non-negative number is required")
    steps = state_of(request).advance(float(seconds))
    return json_response({"processed": steps})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/_sandbox/ledger", ledger),
    ("GET", "/_sandbox/stats", stats),
    ("POST", "/_sandbox/config", config),
    ("POST", "/_sandbox/reset", reset),
    ("POST", "/_sandbox/inbound", inbound),
    ("POST", "/_sandbox/advance", advance),
]

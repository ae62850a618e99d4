"""The aiohttp application: ClickSend's /v3 (HTTP Basic), the SkillBoss front
(/clicksend/v3 and /v1/run, Bearer), and the admin endpoints under /_sandbox.

Middleware does what every API request shares: counting, authentication, the per-account
rate limit, added latency, and turning BadRequest/Missing into ClickSend's error answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from sandbox import (
    routes_account,
    routes_admin,
    routes_lists,
    routes_mms_voice,
    routes_skillboss,
    routes_sms,
)
from sandbox.envelope import BadRequest, Missing, error
from sandbox.lifecycle import background
from sandbox.messaging import STATE_KEY
from sandbox.routes_skillboss import failure
from sandbox.state import SandboxState

CLICKSEND_PREFIX, SKILLBOSS_PREFIX = "/v3", "/clicksend/v3"
Next = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _endpoint(request: web.Request) -> str:
    """A request's route for the stats ("POST /v3/sms/send")."""
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource is not None else request.path}"


def _basic_ok(header: str, state: SandboxState) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, key = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, state.config.username) & hmac.compare_digest(
        key, state.config.api_key
    )


def _bearer_ok(header: str, state: SandboxState) -> bool:
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip(), state.config.skillboss_api_key
    )


@web.middleware
async def api_middleware(request: web.Request, handler: Next) -> web.StreamResponse:
    """Count, authenticate, rate-limit and delay API requests; map errors to answers."""
    state = request.app[STATE_KEY]
    path = request.path
    with state.lock:
        state.stats.record_request(_endpoint(request), state.now())
    skillboss = path.startswith((SKILLBOSS_PREFIX + "/", "/v1/"))
    if not skillboss and not path.startswith(CLICKSEND_PREFIX + "/"):
        return await _guarded(request, handler)  # admin endpoints: no auth, no limit
    header = request.headers.get("Authorization", "")
    if not (_bearer_ok(header, state) if skillboss else _basic_ok(header, state)):
        if path.startswith("/v1/"):
            return failure(401, "Invalid API key.")
        return error(401, "Invalid username or API key.", code="UNAUTHORIZED")
    if state.config.arrival_jitter_ms > 0:
        # On the way: the bucket counts the request when it arrives, as a provider's does.
        with state.lock:
            delay = state.faults.delay(state.config.arrival_jitter_ms / 1000)
        await asyncio.sleep(delay)
    with state.lock:
        decision = state.limiter.take(state.config.username)
        if decision is not None and not decision.allowed:
            state.stats.rate_limited_429 += 1
    if decision is not None and not decision.allowed:
        if path.startswith("/v1/"):
            return failure(429, "Too many requests.", headers=decision.headers())
        return error(429, "Too many requests. Please slow down.", headers=decision.headers())
    if state.config.latency_ms > 0:
        await asyncio.sleep(state.config.latency_ms / 1000)
    response = await _guarded(request, handler)
    if decision is not None:
        response.headers.update(decision.headers())
    return response


async def _guarded(request: web.Request, handler: Next) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return error(400, str(exc))
    except Missing as exc:
        return error(404, f"Resource not found: {exc}")
    except web.HTTPNotFound:
        return error(404, f"Resource not found: {request.method} {request.path}")
    except web.HTTPMethodNotAllowed:
        return error(405, f"Method not allowed: {request.method} {request.path}")


def build_app(state: SandboxState) -> web.Application:
    """The sandbox application around ``state``."""
    app = web.Application(middlewares=[api_middleware], client_max_size=16 * 1024 * 1024)
    app[STATE_KEY] = state
    api = routes_sms.ROUTES + routes_mms_voice.ROUTES + routes_lists.ROUTES + routes_account.ROUTES
    for prefix in (CLICKSEND_PREFIX, SKILLBOSS_PREFIX):
        for method, path, handler in api:
            app.router.add_route(method, prefix + path, handler)
    for method, path, handler in routes_admin.ROUTES + routes_skillboss.ROUTES:
        app.router.add_route(method, path, handler)
    app.cleanup_ctx.append(background)
    return app

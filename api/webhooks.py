"""Webhooks for what ClickSend pushes: delivery receipts and inbound replies.

ClickSend does not sign its pushes, so the URL carries a secret
(``/webhooks/<CLARION_WEBHOOK_SECRET>/receipts``); a wrong or unset secret answers 404.
A push is recorded, answered 200, then applied (``campaigns.webhooks``); ClickSend
retries a push that did not get a 200, and a replay is recorded once.
Both shapes are accepted: form-encoded (what ClickSend sends) and JSON (an object or a
list of objects).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse

from api.auth import settings_of
from api.errors import ApiError, body
from campaigns import webhooks
from campaigns.db import session_scope

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _check_secret(request: Request, secret: str) -> None:
    configured = settings_of(request).webhook_secret.get_secret_value()
    if not configured or not hmac.compare_digest(secret.encode(), configured.encode()):
        raise ApiError(404, "not found")


async def _pushes(request: Request) -> list[dict[str, Any]]:
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        try:
            data = await request.json()
        except ValueError:
            raise ApiError(400, "not valid JSON", "body") from None
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(item, dict) for item in items):
            raise ApiError(400, "expected an object or a list of objects", "body")
        return items
    form = await request.form()
    return [{k: v for k, v in form.items() if isinstance(v, str)}]


def _apply(database_url: str, region: str) -> None:
    with session_scope(database_url) as session:
        webhooks.apply_recorded(session, region)


async def _receive(
    request: Request, secret: str, kind: str, background: BackgroundTasks
) -> JSONResponse:
    _check_secret(request, secret)
    settings = settings_of(request)
    parse = webhooks.receipt_event if kind == "receipt" else webhooks.inbound_event
    events = []
    for push in await _pushes(request):
        try:
            events.append(parse(push))
        except webhooks.PushError as exc:
            return JSONResponse(body(str(exc), exc.field), status_code=422)

    def record() -> None:
        with session_scope(settings.database_url) as session:
            for key, payload in events:
                webhooks.record(session, kind, key, payload)

    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(record)
    background.add_task(_apply, settings.database_url, settings.default_region)
    return JSONResponse({"recorded": len(events)})


@router.post("/{secret}/receipts", summary="Delivery receipts pushed by ClickSend")
async def receipts(request: Request, secret: str, background: BackgroundTasks) -> JSONResponse:
    return await _receive(request, secret, "receipt", background)


@router.post("/{secret}/inbound", summary="Inbound replies pushed by ClickSend")
async def inbound(request: Request, secret: str, background: BackgroundTasks) -> JSONResponse:
    return await _receive(request, secret, "inbound", background)

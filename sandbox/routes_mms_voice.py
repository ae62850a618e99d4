"""MMS and voice endpoints: send, price, history, receipts, cancel, languages."""

from __future__ import annotations

from aiohttp import web

from sandbox import render
from sandbox.catalog import voice_langs
from sandbox.envelope import ok
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
)


async def languages(request: web.Request) -> web.StreamResponse:
    """GET /voice/lang."""
    return ok(voice_langs(), "Here are the possible languages.")


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/mms/send", send_handler("mms")),
    ("POST", "/mms/price", price_handler("mms")),
    ("GET", "/mms/history", history_handler("mms", render.mms_history)),
    ("GET", "/mms/receipts", receipts_handler("mms")),
    ("PUT", "/mms/receipts-read", receipts_read_handler("mms")),
    ("GET", "/mms/receipts/{message_id}", receipt_handler("mms")),
    ("POST", "/voice/send", send_handler("voice")),
    ("POST", "/voice/price", price_handler("voice")),
    ("GET", "/voice/lang", languages),
    ("GET", "/voice/history", history_handler("voice", render.voice_history)),
    ("GET", "/voice/receipts", receipts_handler("voice")),
    ("PUT", "/voice/receipts-read", receipts_read_handler("voice")),
    ("GET", "/voice/receipts/{message_id}", receipt_handler("voice")),
    ("PUT", "/voice/cancel-all", cancel_all_handler("voice")),
    ("PUT", "/voice/{message_id}/cancel", cancel_handler("voice")),
]

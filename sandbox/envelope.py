"""ClickSend's answer envelope and error answers, and its page-based pagination."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
}

MIN_LIMIT, MAX_LIMIT, DEFAULT_LIMIT = 15, 100, 15

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A compact JSON answer."""
    return web.Response(
        body=_dumps(payload).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def ok(data: Any, message: str = "Here you go.") -> web.Response:
    """HTTP 200 with ``response_code: SUCCESS``."""
    return json_response(
        {"http_code": 200, "response_code": "SUCCESS", "response_msg": message, "data": data}
    )


def error(
    status: int, message: str, headers: Mapping[str, str] | None = None, code: str | None = None
) -> web.Response:
    """A ClickSend error answer (``data`` is null)."""
    payload = {
        "http_code": status,
        "response_code": code or ERROR_CODES.get(status, "ERROR"),
        "response_msg": message,
        "data": None,
    }
    return json_response(payload, status=status, headers=headers)


class BadRequest(Exception):
    """The request as a whole is unusable (answered 400)."""


class Missing(Exception):
    """A resource named in the path does not exist (answered 404)."""


def int_param(query: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    """An integer query parameter; BadRequest naming it when it is not one."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name}: expected an integer, got {raw!r}") from None


def page(request: web.Request, items: Sequence[T]) -> tuple[dict[str, Any], Sequence[T]]:
    """ClickSend's pagination fields for ``items`` and the slice on the requested page.

    ``limit`` is held to 15..100 and ``page`` starts at 1, as ClickSend does.
    """
    query = request.query
    limit = min(
        MAX_LIMIT, max(MIN_LIMIT, int_param(query, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT)
    )
    current = max(1, int_param(query, "page", 1) or 1)
    total = len(items)
    last = max(1, math.ceil(total / limit))
    start = (current - 1) * limit
    chunk = items[start : start + limit]

    def url(number: int) -> str:
        params = {**query, "page": str(number)}
        return str(request.url.with_query(params))

    fields = {
        "total": total,
        "per_page": limit,
        "current_page": current,
        "last_page": last,
        "next_page_url": url(current + 1) if current < last else None,
        "prev_page_url": url(current - 1) if current > 1 else None,
        "from": start + 1 if chunk else None,
        "to": start + len(chunk) if chunk else None,
    }
    return fields, chunk


def paged(request: web.Request, items: Sequence[Any], render: Any, message: str) -> web.Response:
    """An OK answer holding one page of ``items``, each rendered by ``render``."""
    fields, chunk = page(request, items)
    return ok({**fields, "data": [render(item) for item in chunk]}, message)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); BadRequest when it is not one."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"body: not valid JSON ({exc.msg} at position {exc.pos})") from None
    except UnicodeDecodeError:
        raise BadRequest("body: not UTF-8 text") from None
    if not isinstance(body, dict):
        raise BadRequest("body: expected a JSON object")
    return body

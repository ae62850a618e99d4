"""Errors as JSON naming the field, like the CLI's one-line errors.

Every error answer is ``{"error": "<one line>", "field": "<dotted path or null>",
"errors": [{"field": ..., "message": ...}, ...]}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """An error with a status, a message and (when one input is to blame) its field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def body(
    message: str, field: str | None = None, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "error": message,
        "field": field,
        "errors": errors
        if errors is not None
        else ([{"field": field, "message": message}] if field else []),
    }


def _location(loc: tuple[Any, ...]) -> str:
    # ("body", "audience", "lists", 0) -> "audience.lists[0]"; ("query", "limit") -> "limit"
    parts = [p for p in loc if p not in ("body", "query", "path", "header", "form")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        text = f"{exc.field}: {exc.message}" if exc.field else exc.message
        errors = getattr(exc, "errors", None)  # every problem, when there are several
        return JSONResponse(body(text, exc.field, errors), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _location(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        return JSONResponse(
            body(f"{first['field']}: {first['message']}", first["field"], errors),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

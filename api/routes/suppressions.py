"""Suppressions (opt-outs): list, add, remove, import."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.auth import settings_of
from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from api.pagination import CursorQuery, LimitQuery, Page, page_of
from campaigns.db import session_scope
from campaigns.models import Suppression
from campaigns.optout import add_suppression, import_suppressions, remove_suppression
from campaigns.phones import InvalidPhone

router = APIRouter(prefix="/suppressions", tags=["suppressions"])


class SuppressionIn(BaseModel):
    phone: str = Field(min_length=1, max_length=40)
    reason: str = Field(default="added by hand", max_length=200)


class SuppressionOut(BaseModel):
    id: int
    phone: str
    reason: str
    created_at: datetime


@router.get("", response_model=Page[SuppressionOut])
def list_suppressions(
    session: SessionDep,
    phone: Annotated[str | None, Query(description="Digits the number contains.")] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[SuppressionOut]:
    query = select(Suppression).order_by(Suppression.id).limit(limit + 1)
    if phone:
        digits = "".join(c for c in phone if c.isdigit())
        query = query.where(Suppression.phone.contains(digits, autoescape=True))
    if cursor is not None:
        query = query.where(Suppression.id > cursor)
    rows = list(session.scalars(query))
    items = [
        SuppressionOut(id=r.id, phone=r.phone, reason=r.reason, created_at=r.created_at)
        for r in rows
    ]
    return page_of(items, [r.id for r in rows], limit)


@router.post("", status_code=201)
def add(session: SessionDep, settings: SettingsDep, item: SuppressionIn) -> dict[str, Any]:
    """Suppress a number for every later message (a running run skips it from its next
    batch on)."""
    try:
        phone, added = add_suppression(session, item.phone, settings.default_region, item.reason)
    except InvalidPhone as exc:
        raise ApiError(422, str(exc), "phone") from None
    return {"phone": phone, "added": added}


@router.delete("/{phone}", status_code=204)
def remove(session: SessionDep, settings: SettingsDep, phone: str) -> Response:
    try:
        removed = remove_suppression(session, phone, settings.default_region)
    except InvalidPhone as exc:
        raise ApiError(422, str(exc), "phone") from None
    if removed is None:
        raise ApiError(404, f"{phone} is not suppressed", "phone")
    return Response(status_code=204)


@router.post("/import", summary="Suppress the numbers of a CSV file")
async def import_file(request: Request, file: UploadFile | None = None) -> dict[str, Any]:
    """A CSV with a ``phone_number`` column (and optionally ``reason``), as a multipart
    ``file`` or as the body (Content-Type: text/csv)."""
    settings = settings_of(request)
    raw = await file.read() if file is not None else await request.body()
    text = raw.decode("utf-8-sig", errors="replace")
    with session_scope(settings.database_url) as session:
        try:
            report = import_suppressions(session, io.StringIO(text), settings.default_region)
        except ValueError as exc:
            raise ApiError(422, str(exc).partition(": ")[2] or str(exc), "file") from None
    return report.to_json()

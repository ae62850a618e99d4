"""Messages of a run: filtered by status and number, paged; exported as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Select, select

from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from api.pagination import CursorQuery, LimitQuery, Page, page_of
from campaigns.db import session_scope
from campaigns.models import MESSAGE_STATUSES, Message, Run
from campaigns.stats import UNDELIVERED

router = APIRouter(prefix="/runs", tags=["messages"])

# Rows per query of an export: each query is a short transaction on an index range, so an
# export of any size holds a bounded number of rows in memory and no long transaction.
EXPORT_CHUNK = 5000
EXPORT_COLUMNS = (
    "id",
    "phone",
    "status",
    "error",
    "attempts",
    "provider_message_id",
    "delivery_status",
    "parts",
    "price",
    "sent_at",
)
STATUS_HELP = (
    "A message status (" + ", ".join(MESSAGE_STATUSES) + "), or delivered / undelivered "
    "(delivery receipts)."
)


class MessageOut(BaseModel):
    id: int
    phone: str
    status: str
    error: str | None
    attempts: int
    provider_message_id: str | None
    delivery_status: str | None
    parts: int | None
    price: Decimal | None
    sent_at: datetime | None


def _filtered(query: Select[Any], status: str | None, phone: str | None) -> Select[Any]:
    if status in ("delivered", "undelivered"):
        wanted = ("delivered",) if status == "delivered" else UNDELIVERED
        query = query.where(Message.delivery_status.in_(wanted))
    elif status:
        if status not in MESSAGE_STATUSES:
            raise ApiError(422, f"unknown status {status!r}; one of {STATUS_HELP}", "status")
        query = query.where(Message.status == status)
    if phone:
        digits = "".join(c for c in phone if c.isdigit())
        if not digits:
            raise ApiError(422, "give some digits of the number", "phone")
        query = query.where(Message.phone.contains(digits, autoescape=True))
    return query


def _run(session: SessionDep, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise ApiError(404, f"run {run_id}: no such run", "run_id")
    return run


StatusQuery = Annotated[str | None, Query(description=STATUS_HELP)]
PhoneQuery = Annotated[str | None, Query(description="Digits the number contains.")]


@router.get("/{run_id}/messages", response_model=Page[MessageOut])
def messages(
    session: SessionDep,
    run_id: int,
    status: StatusQuery = None,
    phone: PhoneQuery = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[MessageOut]:
    _run(session, run_id)
    query = select(Message).where(Message.run_id == run_id).order_by(Message.id).limit(limit + 1)
    query = _filtered(query, status, phone)
    if cursor is not None:
        query = query.where(Message.id > cursor)
    rows = list(session.scalars(query))
    items = [MessageOut.model_validate(m, from_attributes=True) for m in rows]
    return page_of(items, [m.id for m in rows], limit)


def export_rows(
    database_url: str, run_id: int, status: str | None, phone: str | None
) -> Iterator[str]:
    """The run's messages as CSV text, a chunk at a time (keyset pages by id)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    columns = [getattr(Message, c) for c in EXPORT_COLUMNS]
    after = 0
    while True:
        with session_scope(database_url) as session:
            query = select(*columns).where(Message.run_id == run_id, Message.id > after)
            query = _filtered(query, status, phone).order_by(Message.id).limit(EXPORT_CHUNK)
            chunk = session.execute(query).all()
        for row in chunk:
            writer.writerow(
                ["" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in row]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(chunk) < EXPORT_CHUNK:
            return
        after = chunk[-1][0]


@router.get("/{run_id}/messages.csv", summary="The run's messages as CSV (streamed)")
def export(
    settings: SettingsDep,
    session: SessionDep,
    run_id: int,
    status: StatusQuery = None,
    phone: PhoneQuery = None,
) -> StreamingResponse:
    _run(session, run_id)
    _filtered(select(Message.id), status, phone)  # a bad filter is a 422 before streaming
    return StreamingResponse(
        export_rows(settings.database_url, run_id, status, phone),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-messages.csv"'},
    )

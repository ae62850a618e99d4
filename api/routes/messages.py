"""Messages of a run: filtered by status and number, paged; exported as CSV."""

from __future__ import annotations

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
from campaigns.exports import FilterError, filter_messages, messages_csv
from campaigns.models import MESSAGE_STATUSES, Message, Run

router = APIRouter(prefix="/runs", tags=["messages"])

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
    try:
        return filter_messages(query, status, phone)
    except FilterError as exc:
        raise ApiError(422, exc.message, exc.field) from None


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
        messages_csv(settings.database_url, run_id, status, phone),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-messages.csv"'},
    )

"""Contact lists and their contacts: create, CSV upload (the import report in the
answer), list with counts, get, contacts paged and searched by number, export, delete."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from starlette.concurrency import run_in_threadpool

from api.auth import settings_of
from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from api.pagination import CursorQuery, LimitQuery, Page, page_of
from campaigns.contacts_csv import import_csv
from campaigns.contacts_import import CsvFormatError
from campaigns.db import session_scope
from campaigns.exports import contacts_csv
from campaigns.models import Campaign, Contact, ContactList

router = APIRouter(prefix="/lists", tags=["lists"])


class ListIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ListOut(BaseModel):
    id: int
    name: str
    source: str
    contacts: int
    created_at: datetime


class ContactOut(BaseModel):
    id: int
    phone: str
    fields: dict[str, Any]
    timezone: str | None


def _list(session: SessionDep, list_id: int) -> ContactList:
    found = session.get(ContactList, list_id)
    if found is None:
        raise ApiError(404, f"list {list_id}: no such list", "list_id")
    return found


def _count(session: SessionDep, list_id: int) -> int:
    return int(session.scalar(select(func.count()).where(Contact.list_id == list_id)) or 0)


def _out(session: SessionDep, item: ContactList) -> ListOut:
    return ListOut(
        id=item.id,
        name=item.name,
        source=item.source,
        contacts=_count(session, item.id),
        created_at=item.created_at,
    )


@router.get("", response_model=Page[ListOut])
def list_lists(
    session: SessionDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[ListOut]:
    query = select(ContactList).order_by(ContactList.id).limit(limit + 1)
    if cursor is not None:
        query = query.where(ContactList.id > cursor)
    rows = list(session.scalars(query))
    return page_of([_out(session, r) for r in rows], [r.id for r in rows], limit)


@router.post("", status_code=201, response_model=ListOut)
def create_list(session: SessionDep, item: ListIn) -> ListOut:
    if session.scalar(select(ContactList.id).where(ContactList.name == item.name)) is not None:
        raise ApiError(409, f"a list named {item.name!r} exists already", "name")
    created = ContactList(name=item.name)
    session.add(created)
    session.flush()
    return _out(session, created)


@router.get("/{list_id}", response_model=ListOut)
def get_list(session: SessionDep, list_id: int) -> ListOut:
    return _out(session, _list(session, list_id))


@router.delete("/{list_id}", status_code=204)
def delete_list(session: SessionDep, list_id: int) -> Response:
    """Delete a list and its contacts; refused while a campaign not yet over uses it."""
    item = _list(session, list_id)
    for campaign in session.scalars(
        select(Campaign).where(Campaign.status.in_(("draft", "active", "paused")))
    ):
        if item.name in (campaign.definition.get("audience", {}).get("lists") or []):
            raise ApiError(
                409, f"campaign {campaign.id} ({campaign.name}) uses list {item.name!r}", "list_id"
            )
    session.execute(delete(Contact).where(Contact.list_id == list_id))
    session.delete(item)
    return Response(status_code=204)


@router.post("/{list_id}/contacts", summary="Import contacts from a CSV file")
async def upload(
    request: Request,
    list_id: int,
    file: UploadFile | None = None,
    region: Annotated[str | None, Query(description="Region for numbers without +country.")] = None,
) -> dict[str, Any]:
    """A CSV with ClickSend contact field names (``phone_number`` at least), as a
    multipart ``file`` or as the body (Content-Type: text/csv). Bad rows are reported by
    line and field; the good ones are imported."""
    settings = settings_of(request)
    with session_scope(settings.database_url) as session:
        name = _list(session, list_id).name
    fd, path = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out:
            if file is not None:
                while chunk := await file.read(1 << 20):
                    out.write(chunk)
            else:
                async for chunk in request.stream():
                    out.write(chunk)
        try:
            report = await run_in_threadpool(
                import_csv,
                settings.database_url,
                path,  # type: ignore[arg-type]
                name,
                default_region=region or settings.default_region,
            )
        except (CsvFormatError, ValueError) as exc:
            message = str(exc).replace(path, "file")
            raise ApiError(422, message, "file") from None
    finally:
        os.unlink(path)
    data = asdict(report)
    data["errors"] = [asdict(e) for e in report.errors]
    return data


@router.get("/{list_id}/contacts", response_model=Page[ContactOut])
def contacts(
    session: SessionDep,
    list_id: int,
    phone: Annotated[str | None, Query(description="Digits the number contains.")] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[ContactOut]:
    _list(session, list_id)
    query = select(Contact).where(Contact.list_id == list_id).order_by(Contact.id).limit(limit + 1)
    if phone:
        digits = "".join(c for c in phone if c.isdigit())
        if not digits:
            raise ApiError(422, "give some digits of the number", "phone")
        query = query.where(Contact.phone.contains(digits, autoescape=True))
    if cursor is not None:
        query = query.where(Contact.id > cursor)
    rows = list(session.scalars(query))
    items = [ContactOut(id=c.id, phone=c.phone, fields=c.fields, timezone=c.timezone) for c in rows]
    return page_of(items, [c.id for c in rows], limit)


@router.get("/{list_id}/export", summary="The list as CSV (streamed)")
def export(settings: SettingsDep, session: SessionDep, list_id: int) -> StreamingResponse:
    """phone_number, timezone and every field, in the import's format."""
    name = _list(session, list_id).name
    return StreamingResponse(
        contacts_csv(settings.database_url, list_id),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )

"""CSV exports of a run's messages and of a contact list, as text chunks.

Each chunk comes from one short query on an index range (keyset pages by id), so an
export of any size holds a bounded number of rows in memory and no long transaction; the
API streams the chunks, the CLI writes them to a file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from campaigns.db import session_scope
from campaigns.models import MESSAGE_STATUSES, Contact, Message
from campaigns.stats import UNDELIVERED

CHUNK = 5000
MESSAGE_COLUMNS = (
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
STATUS_CHOICES = (*MESSAGE_STATUSES, "delivered", "undelivered")


class FilterError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def filter_messages(query: Select[Any], status: str | None, phone: str | None) -> Select[Any]:
    """Messages in ``status`` (a message status, or delivered / undelivered by receipt)
    whose number contains the digits of ``phone``."""
    if status in ("delivered", "undelivered"):
        wanted = ("delivered",) if status == "delivered" else UNDELIVERED
        query = query.where(Message.delivery_status.in_(wanted))
    elif status:
        if status not in MESSAGE_STATUSES:
            raise FilterError(
                "status", f"unknown status {status!r}; one of {', '.join(STATUS_CHOICES)}"
            )
        query = query.where(Message.status == status)
    if phone:
        digits = "".join(c for c in phone if c.isdigit())
        if not digits:
            raise FilterError("phone", "give some digits of the number")
        query = query.where(Message.phone.contains(digits, autoescape=True))
    return query


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime) else value


def messages_csv(
    database_url: str, run_id: int, status: str | None = None, phone: str | None = None
) -> Iterator[str]:
    """The run's messages as CSV text, a chunk at a time."""
    filter_messages(select(Message.id), status, phone)  # a bad filter fails before any output
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MESSAGE_COLUMNS)
    columns = [getattr(Message, c) for c in MESSAGE_COLUMNS]
    after = 0
    while True:
        with session_scope(database_url) as session:
            query = select(*columns).where(Message.run_id == run_id, Message.id > after)
            query = filter_messages(query, status, phone).order_by(Message.id).limit(CHUNK)
            chunk = session.execute(query).all()
        writer.writerows([_cell(v) for v in row] for row in chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(chunk) < CHUNK:
            return
        after = chunk[-1][0]


def contacts_csv(database_url: str, list_id: int) -> Iterator[str]:
    """A list as CSV in the import's format: phone_number, timezone and every field (the
    field columns are those of the list's first 1000 contacts)."""
    with session_scope(database_url) as session:
        keys: set[str] = set()
        sample = select(Contact.fields).where(Contact.list_id == list_id).limit(1000)
        for fields in session.scalars(sample):
            keys |= set(fields or {})
    names = sorted(keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["phone_number", "timezone", *names])
    after = 0
    while True:
        with session_scope(database_url) as session:
            chunk = session.execute(
                select(Contact.id, Contact.phone, Contact.timezone, Contact.fields)
                .where(Contact.list_id == list_id, Contact.id > after)
                .order_by(Contact.id)
                .limit(CHUNK)
            ).all()
        for row in chunk:
            fields = row.fields or {}
            writer.writerow([row.phone, row.timezone or "", *(fields.get(k, "") for k in names)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(chunk) < CHUNK:
            return
        after = chunk[-1].id

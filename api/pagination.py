"""Cursor pagination by id: ``?limit=N&cursor=C`` answers ``{"items": [...], "next_cursor": C'}``.

Keyset on the primary key rather than OFFSET: a page deep into a million rows costs the
same as the first, and rows added meanwhile do not shift the pages.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_LIMIT = 1000

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
CursorQuery = Annotated[
    int | None, Query(ge=0, description="`next_cursor` of the previous page; omit for the first.")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: int | None = None


def page_of(items: list[T], ids: list[int], limit: int) -> Page[T]:
    """Build a page from ``limit + 1`` fetched rows: the extra one only says there is more."""
    more = len(items) > limit
    items = items[:limit]
    return Page[T](items=items, next_cursor=ids[limit - 1] if more else None)

"""A lazy iterator over ClickSend's page/limit pagination.

ClickSend pages with ``page`` (from 1) and ``limit``, which it accepts only from 15 to
100: a smaller or larger ``limit`` is clamped into that range here rather than sent and
refused. An answer's ``data`` carries ``current_page``, ``last_page``, ``next_page_url``,
``total``, ``to`` and the entries under ``data``. Pages are fetched one at a time as the
caller consumes entries, so stopping early costs no further requests.

The walk stops at the first of: an empty page; ``current_page >= last_page``; a null
``next_page_url`` (when ``last_page`` is absent); ``to >= total``; a page shorter than
``limit`` (when the answer says nothing else); an answer that is a plain list (an
unpaged endpoint); or a ``current_page`` below the one asked for (a server that ignores
``page`` must not make the walk endless, nor repeat its entries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from clicksend.coerce import to_int

T = TypeVar("T")

MIN_LIMIT = 15
MAX_LIMIT = 100

# fetch(page, limit) -> the answer's ``data`` member for that page
PageFetcher = Callable[[int, int], Any]


def clamp_limit(limit: int) -> int:
    """``limit`` moved into ClickSend's accepted range 15..100."""
    return max(MIN_LIMIT, min(MAX_LIMIT, int(limit)))


def split_page(data: Any) -> tuple[list[Any], Mapping[str, Any]]:
    """(entries, page information) of one answer's ``data`` member.

    Also accepts a page wrapped in a one-element list, as ClickSend's own description of
    ``GET /sms/templates`` shows it.
    """
    if isinstance(data, list) and len(data) == 1 and _is_page(data[0]):
        data = data[0]
    if _is_page(data):
        return list(data["data"]), data
    if isinstance(data, list):
        return data, {}
    return [], {}


def paginate(
    fetch: PageFetcher, parse: Callable[[Any], T], *, limit: int = 100, first_page: int = 1
) -> Iterator[T]:
    """Every entry of every page, parsed, fetched lazily from ``first_page`` (a walk that
    failed part-way can resume there) to the end."""
    size = clamp_limit(limit)
    page = max(1, first_page)
    while True:
        entries, info = split_page(fetch(page, size))
        current = to_int(info.get("current_page"), page) or page
        if current < page:
            return  # an earlier page again: the server ignores ``page``; its entries are seen
        for entry in entries:
            yield parse(entry)
        if not _has_more(info, current, len(entries), size):
            return
        page += 1


def _is_page(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("data"), list)


def _has_more(info: Mapping[str, Any], current: int, count: int, size: int) -> bool:
    if count == 0 or not info:
        return False
    last = to_int(info.get("last_page"))
    if last is not None:
        return current < last
    if "next_page_url" in info:
        return bool(info["next_page_url"])
    total = to_int(info.get("total"))
    if total is not None:
        return (to_int(info.get("to")) or current * size) < total
    return count >= size

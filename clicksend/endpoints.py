"""What every group of ClickSend endpoints shares: the call, the envelope, paging, and
the checks on outgoing messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from clicksend.coerce import as_mapping, to_int
from clicksend.http import HttpCore
from clicksend.pagination import paginate

T = TypeVar("T")

# ClickSend takes at most this many messages in one send or price request.
MAX_MESSAGES_PER_REQUEST = 1000


def segment(value: str | int) -> str:
    """One path segment, escaped (message ids and email ids go into paths)."""
    return quote(str(value), safe="")


def prepare_messages(
    messages: Sequence[Mapping[str, Any]], *, required: Sequence[str] = ("body",)
) -> list[dict[str, Any]]:
    """Plain dicts for the request body: None values dropped, ``schedule`` an int.

    Raises ValueError naming the row and field of the first message that is unusable.
    """
    if not 0 < len(messages) <= MAX_MESSAGES_PER_REQUEST:
        raise ValueError(
            f"messages: between 1 and {MAX_MESSAGES_PER_REQUEST} per request, got {len(messages)}"
        )
    prepared: list[dict[str, Any]] = []
    for row, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"messages[{row}]: must be a mapping, got {type(message).__name__}")
        clean = {k: v for k, v in message.items() if v is not None}
        if not (clean.get("to") or clean.get("list_id")):
            raise ValueError(f"messages[{row}].to: a recipient (to or list_id) is required")
        for name in required:
            if clean.get(name) in (None, ""):
                raise ValueError(f"messages[{row}].{name}: is required")
        if "schedule" in clean:
            clean["schedule"] = _schedule(row, clean["schedule"])
        prepared.append(clean)
    return prepared


def _schedule(row: int, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(f"messages[{row}].schedule: expected a Unix timestamp, got {value!r}")


class Endpoints:
    """Base of the endpoint groups; subclasses call ClickSend through ``self._core``."""

    _core: HttpCore

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        """ClickSend's answer envelope (``http_code``, ``response_code``, ``data``...)."""
        return as_mapping(self._core.request(method, path, json=json, params=params))

    def _data(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The ``data`` member of the answer."""
        return self._call(method, path, json=json, params=params).get("data")

    def _pages(
        self,
        path: str,
        parse: Callable[[Any], T],
        *,
        limit: int,
        params: Mapping[str, Any] | None = None,
        first_page: int = 1,
    ) -> Iterator[T]:
        """Every entry under ``path``, page by page from ``first_page``, lazily."""

        def fetch(page: int, size: int) -> Any:
            return self._data("GET", path, params={**(params or {}), "page": page, "limit": size})

        return paginate(fetch, parse, limit=limit, first_page=first_page)

    def _list(self, path: str, parse: Callable[[Any], T]) -> list[T]:
        """Every entry of an unpaged list answer (``data`` is the list)."""
        data = self._data("GET", path)
        return [parse(entry) for entry in data] if isinstance(data, list) else []

    def _count(self, method: str, path: str, key: str, *, json: Any = None) -> int:
        """An integer member of ``data`` (``count``, ``deleted``), 0 when absent."""
        return to_int(as_mapping(self._data(method, path, json=json)).get(key), 0) or 0

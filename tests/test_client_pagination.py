"""The page/limit walk: lazy, complete, clamped, and never endless."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from clicksend.client import ClickSendClient
from clicksend.pagination import clamp_limit, paginate, split_page

BASE = "https://rest.clicksend.test/v3"


class PagedServer:
    """Serves ``total`` numbered entries in ClickSend's page format; records each request."""

    def __init__(self, total: int, meta: Callable[[int, int, int], dict[str, Any]] | None = None):
        self.total = total
        self.meta = meta
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        page = int(request.url.params["page"])
        limit = int(request.url.params["limit"])
        start = (page - 1) * limit
        entries = [{"message_id": str(i)} for i in range(start, min(start + limit, self.total))]
        last = max(1, -(-self.total // limit))
        info = (
            self.meta(page, limit, last)
            if self.meta
            else {"total": self.total, "per_page": limit, "current_page": page, "last_page": last}
        )
        return httpx.Response(
            200, json={"response_code": "SUCCESS", "data": {**info, "data": entries}}
        )

    def client(self) -> ClickSendClient:
        return ClickSendClient(BASE, "user", "key", transport=httpx.MockTransport(self))


@pytest.mark.parametrize(("total", "pages"), [(0, 1), (1, 1), (100, 1), (101, 2), (250, 3)])
def test_walks_every_page_to_the_end(total: int, pages: int) -> None:
    server = PagedServer(total)
    ids = [item.message_id for item in server.client().sms_history(date_from=5)]
    assert ids == [str(i) for i in range(total)]
    assert len(server.requests) == pages
    assert [r.url.params["page"] for r in server.requests] == [str(p + 1) for p in range(pages)]
    assert all(r.url.params["date_from"] == "5" for r in server.requests)


def test_is_lazy() -> None:
    server = PagedServer(1000)
    items = server.client().sms_history(limit=100)
    assert server.requests == []
    first = [next(items) for _ in range(150)]
    assert len(first) == 150
    assert len(server.requests) == 2


@pytest.mark.parametrize(("asked", "sent"), [(1, 15), (15, 15), (50, 50), (100, 100), (5000, 100)])
def test_limit_is_clamped_to_15_through_100(asked: int, sent: int) -> None:
    server = PagedServer(3)
    list(server.client().sms_history(limit=asked))
    assert server.requests[0].url.params["limit"] == str(sent)
    assert clamp_limit(asked) == sent


def test_stops_on_null_next_page_url_without_last_page() -> None:
    def meta(page: int, limit: int, last: int) -> dict[str, Any]:
        return {
            "current_page": page,
            "next_page_url": f"/x?page={page + 1}" if page < last else None,
        }

    server = PagedServer(40, meta)
    assert len(list(server.client().sms_inbound(limit=15))) == 40
    assert len(server.requests) == 3


def test_stops_when_to_reaches_total() -> None:
    def meta(page: int, limit: int, last: int) -> dict[str, Any]:
        return {"total": 40, "to": min(page * limit, 40)}

    server = PagedServer(40, meta)
    assert len(list(server.client().sms_receipts(limit=15))) == 40
    assert len(server.requests) == 3


def test_stops_on_a_short_page_when_nothing_else_is_said() -> None:
    server = PagedServer(31, lambda page, limit, last: {"per_page": limit})
    assert len(list(server.client().lists(limit=15))) == 31
    assert len(server.requests) == 3


def test_server_ignoring_page_does_not_loop_forever() -> None:
    calls: list[int] = []

    def fetch(page: int, limit: int) -> Any:
        calls.append(page)
        return {"current_page": 1, "last_page": 9, "data": [{"n": 1}] * limit}

    assert len(list(paginate(fetch, dict, limit=15))) == 15
    assert calls == [1, 2]


def test_unpaged_list_answer_is_a_single_page() -> None:
    calls: list[int] = []

    def fetch(page: int, limit: int) -> Any:
        calls.append(page)
        return [{"n": i} for i in range(limit)]

    assert len(list(paginate(fetch, dict, limit=20))) == 20
    assert calls == [1]


def test_page_wrapped_in_a_list_is_unwrapped() -> None:
    # ClickSend's own description of GET /sms/templates answers this way.
    data = [{"total": 1, "current_page": 1, "last_page": 1, "data": [{"template_id": 587713}]}]
    entries, info = split_page(data)
    assert entries == [{"template_id": 587713}]
    assert info["last_page"] == 1
    client = ClickSendClient(
        BASE,
        "u",
        "k",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, json={"data": data})),
    )
    assert [t.template_id for t in client.sms_templates()] == [587713]


def test_contacts_pass_updated_after() -> None:
    server = PagedServer(2)
    contacts = list(server.client().contacts(7, updated_after=1700000000))
    assert len(contacts) == 2
    assert server.requests[0].url.path == "/v3/lists/7/contacts"
    assert server.requests[0].url.params["updated_after"] == "1700000000"

"""Contact list and contact endpoints, including import from a CSV file URL."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from sandbox import render
from sandbox.contacts import NotFound
from sandbox.envelope import BadRequest, Missing, int_param, ok, page, paged, read_json
from sandbox.messaging import Handler, state_of
from sandbox.records import CONTACT_FIELDS, ContactList
from sandbox.state import SandboxState


def _list(state: SandboxState, raw: str) -> ContactList:
    try:
        return state.contacts.get_list(raw)
    except NotFound:
        raise Missing(f"list_id: no list {raw}") from None


def _name(body: Mapping[str, Any]) -> str:
    name = body.get("list_name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("list_name: a non-empty string is required")
    return name


async def lists(request: web.Request) -> web.StreamResponse:
    """GET /lists: this one answers with Laravel's longer paginator (links, first/last URLs)."""
    state = state_of(request)
    with state.lock:
        rows = list(state.contacts.lists.values())
    fields, chunk = page(request, rows)
    last = fields["last_page"]

    def url(number: int) -> str:
        return str(request.url.with_query({**request.query, "page": str(number)}))

    links = [
        {
            "url": url(number),
            "label": str(number),
            "page": number,
            "active": number == fields["current_page"],
        }
        for number in range(1, last + 1)
    ]
    extra = {
        "first_page_url": url(1),
        "last_page_url": url(last),
        "path": str(request.url.with_query(None)),
    }
    data = {**fields, **extra, "links": links, "data": [render.contact_list(c) for c in chunk]}
    return ok(data, "Here are your contact lists.")


async def list_create(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    name = _name(await read_json(request))
    with state.lock:
        return ok(render.contact_list(state.contacts.create_list(name)), "List has been created.")


async def list_get(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    with state.lock:
        return ok(
            render.contact_list(_list(state, request.match_info["list_id"])), "Here is your list."
        )


async def list_rename(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    name = _name(await read_json(request))
    with state.lock:
        contact_list = _list(state, request.match_info["list_id"])
        contact_list.list_name = name
        return ok(render.contact_list(contact_list), "List has been updated.")


async def list_delete(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    with state.lock:
        contact_list = _list(state, request.match_info["list_id"])
        state.contacts.delete_list(contact_list.list_id)
    return ok([], "List has been deleted.")


async def remove_duplicates(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    fields = (await read_json(request)).get("fields")
    with state.lock:
        contact_list = _list(state, request.match_info["list_id"])
        deleted = state.contacts.remove_duplicates(
            contact_list.list_id, fields if isinstance(fields, dict) else None
        )
    return ok({"deleted": deleted}, "Duplicate contacts have been removed.")


async def remove_opted_out(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    with state.lock:
        contact_list = _list(state, request.match_info["list_id"])
        opt_out = _list(state, request.match_info["opt_out_list_id"])
        deleted = state.contacts.remove_opted_out(contact_list.list_id, opt_out.list_id)
    return ok({"deleted": deleted}, "Opted-out contacts have been removed.")


def _contact_values(body: Mapping[str, Any], *, require_phone: bool) -> dict[str, Any]:
    unknown = sorted(set(body) - set(CONTACT_FIELDS) - {"date_added"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: not a contact field")
    if require_phone and not (
        body.get("phone_number") or body.get("email") or body.get("fax_number")
    ):
        raise BadRequest("phone_number: a phone number, email or fax number is required")
    return dict(body)


async def contacts(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    updated_after = int_param(request.query, "updated_after")
    with state.lock:
        contact_list = _list(state, request.match_info["list_id"])
        rows = [
            c
            for c in contact_list.contacts.values()
            if updated_after is None or c.date_updated > updated_after
        ]
        name = contact_list.list_name
    return paged(request, rows, lambda c: render.contact(c, name), "Here are your contacts.")


def _contact_answer(state: SandboxState, list_id: int, contact: Any, message: str) -> web.Response:
    return ok(render.contact(contact, state.contacts.get_list(list_id).list_name), message)


def _contact_call(
    request: web.Request, action: str, values: Mapping[str, Any] | None = None
) -> web.Response:
    state = state_of(request)
    info = request.match_info
    book = state.contacts
    with state.lock:
        try:
            if action == "create":
                contact = book.add_contact(info["list_id"], values or {})
            elif action == "get":
                contact = book.get_contact(info["list_id"], info["contact_id"])
            elif action == "update":
                contact = book.update_contact(info["list_id"], info["contact_id"], values or {})
            elif action == "delete":
                book.delete_contact(info["list_id"], info["contact_id"])
                return ok([], "Contact has been deleted.")
            elif action == "copy":
                contact = book.copy_contact(
                    info["from_list_id"], info["contact_id"], info["to_list_id"]
                )
            else:
                contact = book.transfer_contact(
                    info["from_list_id"], info["contact_id"], info["to_list_id"]
                )
        except NotFound as exc:
            raise Missing(f"{exc.args[0].split()[0]}_id: no {exc.args[0]}") from None
        return _contact_answer(state, contact.list_id, contact, f"Contact {action} done.")


async def contact_create(request: web.Request) -> web.StreamResponse:
    return _contact_call(
        request, "create", _contact_values(await read_json(request), require_phone=True)
    )


async def contact_get(request: web.Request) -> web.StreamResponse:
    return _contact_call(request, "get")


async def contact_update(request: web.Request) -> web.StreamResponse:
    return _contact_call(
        request, "update", _contact_values(await read_json(request), require_phone=False)
    )


async def contact_delete(request: web.Request) -> web.StreamResponse:
    return _contact_call(request, "delete")


async def contact_copy(request: web.Request) -> web.StreamResponse:
    return _contact_call(request, "copy")


async def contact_transfer(request: web.Request) -> web.StreamResponse:
    return _contact_call(request, "transfer")


async def _fetch(url: str) -> str:
    """The CSV text at ``url``; BadRequest naming file_url when it cannot be read."""
    if not url.startswith(("http://", "https://")):
        raise BadRequest("file_url: an http(s) URL is required")
    try:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as answer:
            if answer.status != 200:
                raise BadRequest(f"file_url: fetching it answered HTTP {answer.status}")
            return await answer.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BadRequest(f"file_url: could not be fetched ({type(exc).__name__})") from None


def _rows(text: str, field_order: str | None) -> list[dict[str, str]]:
    """CSV rows as contact fields: by ``field_order`` if given, else by the header row."""
    reader = csv.reader(io.StringIO(text))
    names = [n.strip() for n in field_order.split(",")] if field_order else next(reader, [])
    for number, name in enumerate(names):
        if name and name not in CONTACT_FIELDS:
            raise BadRequest(f"field_order: column {number + 1} is {name!r}, not a contact field")
    return [{n: v for n, v in zip(names, row, strict=False) if n} for row in reader if any(row)]


async def import_contacts(request: web.Request) -> web.StreamResponse:
    """POST /lists/{list_id}/import: read a CSV from file_url into the list."""
    state = state_of(request)
    body = await read_json(request)
    with state.lock:
        list_id = _list(state, request.match_info["list_id"]).list_id
    order = body.get("field_order")
    rows = _rows(
        await _fetch(str(body.get("file_url") or "")), order if isinstance(order, str) else None
    )
    with state.lock:
        ids = [str(state.contacts.add_contact(list_id, row).contact_id) for row in rows]
    return ok(
        {"msg": f"{len(ids)} contacts imported.", "ids": ids, "id": str(list_id)}, "Import done."
    )


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/lists", lists),
    ("POST", "/lists", list_create),
    ("GET", "/lists/{list_id}", list_get),
    ("PUT", "/lists/{list_id}", list_rename),
    ("DELETE", "/lists/{list_id}", list_delete),
    ("PUT", "/lists/{list_id}/remove-duplicates", remove_duplicates),
    ("PUT", "/lists/{list_id}/remove-duplicates/", remove_duplicates),
    ("PUT", "/lists/{list_id}/remove-opted-out-contacts/{opt_out_list_id}", remove_opted_out),
    ("POST", "/lists/{list_id}/import", import_contacts),
    ("GET", "/lists/{list_id}/contacts", contacts),
    ("POST", "/lists/{list_id}/contacts", contact_create),
    ("GET", "/lists/{list_id}/contacts/{contact_id}", contact_get),
    ("PUT", "/lists/{list_id}/contacts/{contact_id}", contact_update),
    ("DELETE", "/lists/{list_id}/contacts/{contact_id}", contact_delete),
    ("PUT", "/lists/{from_list_id}/contacts/{contact_id}/copy/{to_list_id}", contact_copy),
    ("PUT", "/lists/{from_list_id}/contacts/{contact_id}/transfer/{to_list_id}", contact_transfer),
]

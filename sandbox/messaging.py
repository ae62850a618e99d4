"""Handlers shared by the SMS, MMS and voice endpoints: send, price, history, receipts,
cancel. Each factory takes the message kind and returns an aiohttp handler."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox import render
from sandbox.envelope import BadRequest, Missing, error, int_param, ok, paged, read_json
from sandbox.faults import Fault
from sandbox.records import QUEUED, Message, Receipt
from sandbox.sending import currency, submit
from sandbox.state import SandboxState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATE_KEY: web.AppKey[SandboxState] = web.AppKey("state", SandboxState)
Q_FIELDS = ("to", "from", "status", "message_id")


def state_of(request: web.Request) -> SandboxState:
    return request.app[STATE_KEY]


def send_handler(kind: str) -> Handler:
    """POST /{kind}/send: faults first, then judge, accept and charge every message."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        body = await read_json(request)
        with state.lock:
            fault = state.faults.pick(
                state.config.error_rate, state.config.drop_rate, state.config.hold_rate
            )
            hold = state.config.hold_seconds
            if fault is Fault.ERROR:
                state.stats.injected_500 += 1
            if fault is Fault.HOLD:
                state.stats.holds += 1
        if fault is Fault.ERROR:
            return error(500, "Internal server error.")
        if fault is Fault.HOLD:
            # Shielded: a client that gave up and closed the connection does not stop a
            # provider that already has the request; it accepts the messages all the same.
            return await asyncio.shield(_held(state, kind, body, hold))
        outcome = submit(state, kind, body, commit=True)
        if fault is Fault.DROP:
            with state.lock:
                state.stats.drops += 1
            return await drop_connection(request)
        with state.lock:
            money = currency(state.config.currency) if kind != "mms" else None
        return ok(outcome.data(money), "Messages queued for delivery.")

    return handle


async def _held(state: SandboxState, kind: str, body: Any, seconds: float) -> web.StreamResponse:
    await asyncio.sleep(seconds)
    outcome = submit(state, kind, body, commit=True)
    with state.lock:
        money = currency(state.config.currency) if kind != "mms" else None
    return ok(outcome.data(money), "Messages queued for delivery.")


async def drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer: the client cannot tell what happened."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # Nothing can be written any more; the server notices the closed transport and moves on.
    raise asyncio.CancelledError


def price_handler(kind: str) -> Handler:
    """POST /{kind}/price: the same judgement, nothing recorded or charged."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        outcome = submit(state, kind, await read_json(request), commit=False)
        if kind == "sms":
            outcome.entries = [render.sms_price_result(e) for e in outcome.entries]
        money = currency(state.config.currency) if kind != "mms" else None
        return ok(outcome.data(money), "Here is the price of your messages.")

    return handle


def _matches(message: Message, terms: list[tuple[str | None, str]]) -> bool:
    """``q`` terms: "field:value" for to, from, status, message_id (exact; status ignores
    case), or a bare word found in any of them. Other fields (custom_string) filter nothing,
    as at ClickSend."""
    status = render.HISTORY_STATUS[message.state].lower()
    values = {
        "to": message.to,
        "from": message.sender,
        "status": status,
        "message_id": message.message_id,
    }
    for name, wanted in terms:
        if name is None:
            if not any(wanted.lower() in v.lower() for v in values.values()):
                return False
        elif name in values:
            have = values[name]
            if (have.lower() != wanted.lower()) if name == "status" else (have != wanted):
                return False
    return True


def _terms(q: str) -> list[tuple[str | None, str]]:
    terms: list[tuple[str | None, str]] = []
    for part in q.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "to" and value.isdigit():
            value = "+" + value  # an unescaped "+" in a query string arrives as a space
        terms.append((name, value) if sep else (None, part))
    return terms


def _window(order: list[Message], date_from: int | None, date_to: int | None) -> list[Message]:
    """The slice of ``order`` (sorted by date, as accepted) that can fall in the window."""
    start = 0 if date_from is None else bisect.bisect_left(order, date_from, key=_date)
    end = len(order) if date_to is None else bisect.bisect_right(order, date_to, key=_date)
    return order[start:end]


def _date(message: Message) -> int:
    return message.date


def select_history(state: SandboxState, kind: str, query: dict[str, str] | Any) -> list[Message]:
    """Messages of ``kind`` filtered by date_from/date_to (unix seconds, inclusive) and q."""
    date_from = int_param(query, "date_from")
    date_to = int_param(query, "date_to")
    terms = _terms(query.get("q", ""))
    with state.lock:
        # The window of the kind's own list is exactly the answer without ``q``.
        chosen = _window(state.by_kind.get(kind, []), date_from, date_to)
        to_terms = [v for n, v in terms if n == "to"]
        if to_terms:  # an index look-up instead of a scan: reconciliation asks per number
            chosen = [
                m
                for m in state.by_recipient.get(to_terms[0], ())
                if m.kind == kind
                and (date_from is None or m.date >= date_from)
                and (date_to is None or m.date <= date_to)
            ]
        if terms:
            chosen = [m for m in chosen if _matches(m, terms)]
    if query.get("order_by", "").lower().endswith("desc"):
        chosen.reverse()
    return chosen


def history_handler(kind: str, renderer: Callable[[Message], dict[str, Any]]) -> Handler:
    """GET /{kind}/history."""

    async def handle(request: web.Request) -> web.StreamResponse:
        chosen = select_history(state_of(request), kind, request.query)
        return paged(request, chosen, renderer, "Here are your history results.")

    return handle


def receipts_handler(kind: str) -> Handler:
    """GET /{kind}/receipts: receipts not yet marked read."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        with state.lock:
            unread = [r for r in state.receipts if r.kind == kind and not r.read]
        return paged(request, unread, render.receipt, "Here are your delivery receipts.")

    return handle


def receipts_read_handler(kind: str) -> Handler:
    """PUT /{kind}/receipts-read: mark receipts read (all, or those before date_before)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        before = (await read_json(request)).get("date_before")
        if before is not None and not isinstance(before, int):
            raise BadRequest("date_before: expected a Unix timestamp")
        with state.lock:
            for receipt in state.receipts:
                if receipt.kind == kind and (before is None or receipt.timestamp < before):
                    receipt.read = True
        return ok(None, "Receipts have been marked as read.")

    return handle


def receipt_handler(kind: str) -> Handler:
    """GET /{kind}/receipts/{message_id}: the latest status of one message."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        message_id = request.match_info["message_id"]
        with state.lock:
            message = state.messages.get(message_id)
            if message is None or message.kind != kind:
                raise Missing(f"message_id: no message {message_id}")
            found = [r for r in state.receipts if r.message_id == message_id]
            receipt = (
                found[-1]
                if found
                else Receipt(
                    message_id, kind, QUEUED, message.send_at, message.date, message.custom_string
                )
            )
        return ok(render.receipt(receipt), "Here is your receipt.")

    return handle


def cancel_handler(kind: str) -> Handler:
    """PUT /{kind}/{message_id}/cancel: cancel one message still waiting for its schedule."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        message_id = request.match_info["message_id"]
        with state.lock:
            message = state.messages.get(message_id)
            if message is None or message.kind != kind:
                raise Missing(f"message_id: no message {message_id}")
            if not state.cancel(message):
                raise BadRequest(
                    f"message_id: {message_id} is not scheduled, so it cannot be cancelled"
                )
            data: Any = render.sms_history(message) if kind == "sms" else []
        return ok(data, "Message has been cancelled.")

    return handle


def cancel_all_handler(kind: str) -> Handler:
    """PUT /{kind}/cancel-all, optionally only messages with this exact custom_string."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        custom_string = body.get("custom_string")
        if custom_string is not None and not isinstance(custom_string, str):
            raise BadRequest("custom_string: expected a string")
        count = state_of(request).cancel_all(kind, custom_string)
        return ok({"count": count}, f"{count} messages have been cancelled.")

    return handle

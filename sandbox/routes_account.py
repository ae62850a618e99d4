"""Account, countries and email sender address endpoints."""

from __future__ import annotations

import re

from aiohttp import web

from sandbox import render
from sandbox.catalog import countries
from sandbox.envelope import BadRequest, Missing, ok, paged, read_json
from sandbox.messaging import Handler, state_of
from sandbox.records import EmailAddress
from sandbox.render import USER_ID
from sandbox.sending import currency

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


async def account(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    with state.lock:
        balance = state.balance
        config = state.config
        data = {
            "user_id": USER_ID,
            "username": config.username,
            "user_email": "sandbox@example.com",
            "active": 1,
            "banned": 0,
            "balance": f"{balance:.6f}",
            "user_phone": "+61481000000",
            "user_first_name": "Sandbox",
            "user_last_name": "Account",
            "account": 1,
            "account_name": "Clarion sandbox",
            "country": config.default_country,
            "default_country_sms": config.default_country,
            "timezone": "UTC",
            "on_trial": 0,
            "_currency": currency(config.currency),
        }
    return ok(data, "Here's your account")


async def country_list(request: web.Request) -> web.StreamResponse:
    return ok(countries(), "Here are some countries.")


async def addresses(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    with state.lock:
        rows = list(state.emails.values())
    return paged(request, rows, render.email_address, "Here are your email addresses.")


async def address_add(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    value = (await read_json(request)).get("email_address")
    if not isinstance(value, str) or not EMAIL.match(value):
        raise BadRequest("email_address: a valid email address is required")
    with state.lock:
        entry = EmailAddress(state.next_id(), value, state.now_int())
        state.emails[entry.email_address_id] = entry
    return ok(render.email_address(entry), "New email address has been added.")


async def address_delete(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    raw = request.match_info["email_address_id"]
    with state.lock:
        if not raw.isdigit() or int(raw) not in state.emails:
            raise Missing(f"email_address_id: no address {raw}")
        del state.emails[int(raw)]
    return ok(None, "Email address has been deleted.")


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/account", account),
    ("GET", "/countries", country_list),
    ("GET", "/email/addresses", addresses),
    ("POST", "/email/addresses", address_add),
    ("DELETE", "/email/addresses/{email_address_id}", address_delete),
]

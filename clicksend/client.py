"""``ClickSendClient``: one synchronous client per ClickSend account (or SkillBoss hub key).

Every endpoint the project uses is a method: account and countries here, messaging in
``clicksend.messaging``, lists and contacts in ``clicksend.contacts``. Failures raise the
classes in ``clicksend.errors``; list endpoints return lazy iterators over all pages.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx

from clicksend.contacts import ContactEndpoints
from clicksend.endpoints import segment
from clicksend.http import BearerAuth, Closing, HttpCore, RequestGate
from clicksend.messaging import MmsEndpoints, SmsEndpoints, VoiceEndpoints
from clicksend.models import Account
from clicksend.pagination import MAX_LIMIT
from clicksend.resources import Country, EmailAddress

# Where the SkillBoss hub serves ClickSend's v3 API, under its base URL.
SKILLBOSS_CLICKSEND_PATH = "/clicksend/v3"


class ClickSendClient(SmsEndpoints, MmsEndpoints, VoiceEndpoints, ContactEndpoints, Closing):
    """A ClickSend REST v3 client (HTTP Basic ``username:api_key``) over httpx.

    ``base_url`` includes the version, e.g. ``https://rest.clicksend.com/v3``. Every request
    carries ``timeout`` (seconds) for connecting, sending, reading and pool waits.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        auth = httpx.BasicAuth(username, api_key)
        self._init(base_url, auth, timeout=timeout, transport=transport, who=f"user={username!r}")

    def _init(
        self,
        base_url: str,
        auth: httpx.Auth,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None,
        who: str,
    ) -> None:
        self._core = HttpCore(base_url, auth, timeout=timeout, transport=transport)
        self._who = who

    @classmethod
    def skillboss(
        cls,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> ClickSendClient:
        """The same API through the SkillBoss hub: Bearer auth, paths under /clicksend/v3."""
        client = cls.__new__(cls)
        url = base_url.rstrip("/") + SKILLBOSS_CLICKSEND_PATH
        client._init(url, BearerAuth(api_key), timeout=timeout, transport=transport, who="hub")
        return client

    @property
    def base_url(self) -> str:
        return self._core.base_url

    def gated(self, gate: RequestGate) -> ClickSendClient:
        """A view of this client whose every request waits for ``gate`` (and reports 429s
        to it). It shares this client's connection pool: closing either closes both."""
        view = copy.copy(self)
        view._core = self._core.with_gate(gate)
        return view

    def __repr__(self) -> str:
        return f"ClickSendClient({self._core.base_url!r}, {self._who})"

    def close(self) -> None:
        """Close the connection pool."""
        self._core.close()

    def account(self) -> Account:
        """GET /account: username, balance and currency."""
        return Account.from_json(self._data("GET", "/account"))

    def countries(self) -> list[Country]:
        """GET /countries."""
        return self._list("/countries", Country.from_json)

    def email_addresses(self, *, limit: int = MAX_LIMIT) -> Iterator[EmailAddress]:
        """GET /email/addresses: allowed email sender addresses, every page."""
        return self._pages("/email/addresses", EmailAddress.from_json, limit=limit)

    def add_email_address(self, email_address: str) -> EmailAddress:
        """POST /email/addresses (ClickSend then emails a verification link)."""
        payload = {"email_address": email_address}
        return EmailAddress.from_json(self._data("POST", "/email/addresses", json=payload))

    def delete_email_address(self, email_address_id: int) -> None:
        """DELETE /email/addresses/{email_address_id}."""
        self._call("DELETE", f"/email/addresses/{segment(email_address_id)}")

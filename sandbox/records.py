"""What the sandbox keeps in memory: messages, receipts, inbound replies, templates, contact
lists, contacts and email sender addresses, as plain records."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Receipt status codes, as ClickSend uses them.
QUEUED, DELIVERED, TEMPORARY_FAILURE, FAILED = 200, 201, 300, 301
STATUS_TEXT = {
    QUEUED: "Queued: Message queued for delivery.",
    DELIVERED: "Success: Message received on handset.",
    TEMPORARY_FAILURE: "Temporary failure: Message could not be delivered yet.",
    FAILED: "Failed: Message could not be delivered.",
}


_ID_PREFIX = os.urandom(10).hex().upper()
_id_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


def new_message_id() -> str:
    """A 36-character uppercase id shaped like ClickSend's (8-4-4-4-12 hex digits).

    A random prefix per process plus a counter: unique, and far cheaper than uuid4 for
    a thousand ids per request.
    """
    p = _ID_PREFIX
    return f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-{next(_id_counter) & 0xFFFFFFFFFFFF:012X}"


@dataclass(slots=True)
class Message:
    """One accepted message (SMS, MMS or voice) and where it is in its life."""

    kind: str  # "sms" | "mms" | "voice"
    message_id: str
    to: str
    body: str
    sender: str
    custom_string: str
    date: int  # when accepted, unix seconds
    send_at: int  # when it goes out (the schedule, or the date)
    parts: int
    price: Decimal
    country: str
    test: bool
    state: str = "scheduled"  # scheduled | sent | delivered | failed | cancelled
    status_code: int = QUEUED
    list_id: str | None = None
    contact_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # subject, media, lang, voice...

    @property
    def pair(self) -> str:
        """The ledger key: custom_string and recipient."""
        return f"{self.custom_string}|{self.to}"

    @property
    def scheduled(self) -> bool:
        return self.send_at > self.date


@dataclass(slots=True)
class Receipt:
    """A delivery receipt, kept for polling until marked read."""

    message_id: str
    kind: str
    status_code: int
    timestamp_send: int
    timestamp: int
    custom_string: str
    read: bool = False
    pushed: bool = False

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status_code]


@dataclass(slots=True)
class Inbound:
    """A reply received from a recipient."""

    message_id: str
    sender: str  # the recipient who replied ("from")
    to: str  # our number it was sent to
    body: str
    timestamp: int
    original_message_id: str
    original_body: str
    custom_string: str
    read: bool = False


@dataclass(slots=True)
class Template:
    """A saved SMS template."""

    template_id: int
    template_name: str
    body: str


# ClickSend's contact fields. The product's copy is clicksend.resources.CONTACT_FIELDS;
# the sandbox keeps its own (it imports nothing of the product) and a test holds them equal.
CONTACT_FIELDS = (
    "phone_number",
    "first_name",
    "last_name",
    "email",
    "fax_number",
    "organization_name",
    "custom_1",
    "custom_2",
    "custom_3",
    "custom_4",
    "address_line_1",
    "address_line_2",
    "address_city",
    "address_state",
    "address_postal_code",
    "address_country",
)


@dataclass(slots=True)
class Contact:
    """A contact in one list."""

    contact_id: int
    list_id: int
    fields: dict[str, str]
    date_added: int
    date_updated: int


@dataclass(slots=True)
class ContactList:
    """A contact list; contacts are keyed by id."""

    list_id: int
    list_name: str
    contacts: dict[int, Contact] = field(default_factory=dict)


@dataclass(slots=True)
class EmailAddress:
    """An allowed email sender address."""

    email_address_id: int
    email_address: str
    date_added: int
    verified: int = 1

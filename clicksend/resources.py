"""Typed views of the account's resources: templates, contact lists, contacts, sender
addresses, countries and voice languages. Parsed as tolerantly as ``clicksend.models``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clicksend.coerce import as_mapping, to_bool, to_int, to_str, to_timestamp

# Contact fields ClickSend stores; ``Contact.fields`` holds those present in an answer.
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


@dataclass(frozen=True)
class Template:
    """An SMS template (``{first_name}``-style placeholders live in ``body``)."""

    template_id: int | None
    name: str
    body: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Template:
        raw = as_mapping(value)
        return cls(
            template_id=to_int(raw.get("template_id")),
            name=to_str(raw.get("template_name")) or "",
            body=str(raw.get("body") or ""),
            raw=raw,
        )


@dataclass(frozen=True)
class ContactList:
    """A contact list; every account has one named "Opt-Out List"."""

    list_id: int | None
    name: str
    contacts_count: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> ContactList:
        raw = as_mapping(value)
        return cls(
            list_id=to_int(raw.get("list_id")),
            name=to_str(raw.get("list_name")) or "",
            contacts_count=to_int(raw.get("_contacts_count")),
            raw=raw,
        )


@dataclass(frozen=True)
class Contact:
    """A contact of a list; ``fields`` maps each stored field (see CONTACT_FIELDS) to its text."""

    contact_id: int | None
    list_id: int | None
    phone_number: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    date_updated: int | None
    fields: Mapping[str, str]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Contact:
        raw = as_mapping(value)
        present = {name: str(raw[name]) for name in CONTACT_FIELDS if raw.get(name) is not None}
        return cls(
            contact_id=to_int(raw.get("contact_id")),
            list_id=to_int(raw.get("list_id")),
            phone_number=to_str(raw.get("phone_number")),
            first_name=to_str(raw.get("first_name")),
            last_name=to_str(raw.get("last_name")),
            email=to_str(raw.get("email")),
            date_updated=to_timestamp(raw.get("date_updated")),
            fields=present,
            raw=raw,
        )


@dataclass(frozen=True)
class EmailAddress:
    """An allowed email sender address."""

    email_address_id: int | None
    email_address: str
    verified: bool
    date_added: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> EmailAddress:
        raw = as_mapping(value)
        return cls(
            email_address_id=to_int(raw.get("email_address_id")),
            email_address=to_str(raw.get("email_address")) or "",
            verified=to_bool(raw.get("verified")),
            date_added=to_timestamp(raw.get("date_added")),
            raw=raw,
        )


@dataclass(frozen=True)
class Country:
    """A country ClickSend knows: ISO code and name."""

    code: str
    name: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Country:
        raw = as_mapping(value)
        return cls(
            code=to_str(raw.get("code")) or "",
            name=to_str(raw.get("value")) or "",
            raw=raw,
        )


@dataclass(frozen=True)
class VoiceLang:
    """A text-to-speech language and the voices (genders) it has.

    ClickSend answers ``gender`` as a string or a list; ``genders`` is always a tuple.
    """

    code: str
    country: str
    genders: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> VoiceLang:
        raw = as_mapping(value)
        gender = raw.get("gender")
        items = gender if isinstance(gender, list) else [gender]
        return cls(
            code=to_str(raw.get("code")) or "",
            country=to_str(raw.get("country")) or "",
            genders=tuple(g.strip().lower() for g in items if isinstance(g, str) and g.strip()),
            raw=raw,
        )

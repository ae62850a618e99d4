"""Preview a campaign: its first messages rendered exactly as they will go out, and
totals for the whole audience, without writing a row.

The audience is streamed (a server-side cursor on PostgreSQL) the way a run's expansion
reads it: contacts of the campaign's lists in id order, the same number once (the first
row wins), suppressed numbers left out, each message rendered with the definition's
defaults. A million recipients take seconds; only the set of numbers seen is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definition import CampaignDefinition
from campaigns.expand import body_renderer
from campaigns.models import Contact, ContactList, Suppression
from campaigns.phones import region_of
from campaigns.pricing import PriceTable
from campaigns.templates import MissingField, placeholders
from clicksend.parts import (
    MAX_SMS_PARTS,
    MAX_VOICE_PARTS,
    VOICE_CHARS_PER_PART,
    sms_encoding,
    sms_parts,
    sms_units,
    ucs2_trigger,
)

# Numbers sharing their first digits share a country; phonenumbers is asked once per
# prefix (parsing each of a million numbers would take most of a minute).
_COUNTRY_PREFIX = 8
STREAM_CHUNK = 10_000


@dataclass(frozen=True)
class Encoded:
    """How one message body goes out: encoding, length in characters and in the
    encoding's units, billed parts, and the character that forced UCS-2 (if any)."""

    encoding: str  # gsm7 | ucs2 | mms | voice
    characters: int
    units: int
    parts: int
    truncated: bool
    ucs2_char: str | None = None


def encode(channel: str, body: str) -> Encoded:
    if channel == "sms":
        encoding, parts = sms_parts(body)
        units = sms_units(body, encoding)
        limit = MAX_SMS_PARTS * (153 if encoding == "gsm7" else 67)
        truncated = parts == MAX_SMS_PARTS and units > limit
        trigger = ucs2_trigger(body) if encoding == "ucs2" else None
        return Encoded(encoding, len(body), units, parts, truncated, trigger)
    if channel == "mms":
        return Encoded("mms", len(body), len(body), 1, False)
    credits = -(-len(body) // VOICE_CHARS_PER_PART)
    return Encoded(
        "voice", len(body), len(body), min(credits, MAX_VOICE_PARTS), credits > MAX_VOICE_PARTS
    )


@dataclass
class MessagePreview:
    to: str
    country: str | None
    status: str  # send | suppressed | failed
    body: str
    encoding: str
    characters: int
    parts: int
    ucs2_char: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CountryTotal:
    recipients: int = 0
    parts: int = 0
    cost: Decimal = Decimal("0")


@dataclass
class Totals:
    """The whole audience. recipients = distinct numbers; each of them is suppressed,
    failed (a placeholder without a value: not sent) or a message to send."""

    contacts: int = 0  # rows read, over every list
    recipients: int = 0
    duplicates: int = 0
    suppressed: int = 0
    invalid: int = 0  # not an E.164 number, or no country for it
    failed: int = 0
    messages: int = 0  # to send
    parts: int = 0
    truncated: int = 0  # longer than the channel's part limit: the provider cuts them
    max_parts: int = 0
    empty: int = 0  # rendered to an empty (or blank) body
    ucs2: int = 0
    estimate: Decimal = Decimal("0")
    by_country: dict[str, CountryTotal] = field(default_factory=dict)
    # recipients not suppressed whose field is blank, with no default
    missing_fields: dict[str, int] = field(default_factory=dict)

    @property
    def reachable(self) -> int:
        """Recipients not suppressed: those a message is rendered for."""
        return self.recipients - self.suppressed

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["estimate"] = str(self.estimate)
        data["by_country"] = {
            k: {"recipients": v.recipients, "parts": v.parts, "cost": str(v.cost)}
            for k, v in sorted(self.by_country.items())
        }
        return data


@dataclass
class Preview:
    channel: str
    messages: list[MessagePreview]
    totals: Totals

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "messages": [m.to_json() for m in self.messages],
            "totals": self.totals.to_json(),
        }


def audience_list_ids(session: Session, defn: CampaignDefinition) -> list[int]:
    return list(
        session.scalars(
            select(ContactList.id).where(
                ContactList.name.in_(defn.audience.lists)
                | ContactList.clicksend_list_id.in_(defn.audience.clicksend_lists)
            )
        )
    )


def audience_rows(session: Session, defn: CampaignDefinition) -> Iterator[Any]:
    """(id, phone, fields, suppressed) of every contact of the audience, streamed."""
    list_ids = audience_list_ids(session, defn)
    if not list_ids:
        return iter(())
    stmt = (
        select(
            Contact.id,
            Contact.phone,
            Contact.fields,
            Suppression.id.is_not(None).label("suppressed"),
        )
        .outerjoin(Suppression, Suppression.phone == Contact.phone)
        .where(Contact.list_id.in_(list_ids))
        .order_by(Contact.id)
        .execution_options(yield_per=STREAM_CHUNK)
    )
    return iter(session.execute(stmt))


class _Countries:
    def __init__(self) -> None:
        self._cache: dict[str, str | None] = {}

    def __call__(self, phone: str) -> str | None:
        prefix = phone[:_COUNTRY_PREFIX]
        if prefix not in self._cache:
            try:
                self._cache[prefix] = region_of(phone)
            except ValueError:
                self._cache[prefix] = None
        return self._cache[prefix]


_countries = _Countries()


def country_of(phone: str) -> str | None:
    """The number's country (ISO 3166), from a cache of number prefixes."""
    return _countries(phone) if _is_e164(phone) else None


def _is_e164(phone: str) -> bool:
    return phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) <= 16


def template_names(defn: CampaignDefinition, template_body: str | None) -> list[str]:
    """Placeholders the message uses (body, provider template or SkillBoss variables)."""
    texts = [defn.message.body or template_body or ""]
    texts += list((defn.message.variables or {}).values())
    names: set[str] = set()
    for text in texts:
        names |= placeholders(text)
    return sorted(names - {"phone_number"})


def preview(
    session: Session,
    defn: CampaignDefinition,
    prices: PriceTable,
    *,
    template_body: str | None = None,
    sample: int = 10,
    each: Callable[[str, str], None] | None = None,
) -> Preview:
    """The first ``sample`` recipients' messages and totals for the whole audience.
    ``each(phone, body)`` is called for every message that would be sent."""
    render = body_renderer(defn, template_body)
    defaults = dict(defn.message.defaults)
    names = [n for n in template_names(defn, template_body) if n not in defaults]
    channel = defn.channel
    totals = Totals()
    shown: list[MessagePreview] = []
    seen: set[str] = set()
    for row in audience_rows(session, defn):
        totals.contacts += 1
        phone: str = row.phone
        if phone in seen:
            totals.duplicates += 1
            continue
        seen.add(phone)
        totals.recipients += 1
        country = country_of(phone)
        if country is None:
            totals.invalid += 1
        if row.suppressed:
            totals.suppressed += 1
            if len(shown) < sample:
                shown.append(_shown(phone, country, "suppressed", "", "number opted out"))
            continue
        fields = row.fields or {}
        missing = [n for n in names if not str(fields.get(n) or "").strip()]
        for name in missing:
            totals.missing_fields[name] = totals.missing_fields.get(name, 0) + 1
        if missing:
            totals.failed += 1
            if len(shown) < sample:
                shown.append(_shown(phone, country, "failed", "", f"missing field {missing[0]}"))
            continue
        try:
            body = render({**fields, "phone_number": phone}, defaults)
        except MissingField as exc:  # a field of the provider template's variables
            totals.failed += 1
            if len(shown) < sample:
                shown.append(_shown(phone, country, "failed", "", str(exc)))
            continue
        enc = encode(channel, body)
        totals.messages += 1
        totals.parts += enc.parts
        totals.truncated += enc.truncated
        totals.max_parts = max(totals.max_parts, enc.parts)
        totals.ucs2 += enc.encoding == "ucs2"
        if not body.strip():
            totals.empty += 1
        cost = prices.cost(channel, country, enc.parts)
        totals.estimate += cost
        by = totals.by_country.setdefault(country or "unknown", CountryTotal())
        by.recipients += 1
        by.parts += enc.parts
        by.cost += cost
        if each is not None:
            each(phone, body)
        if len(shown) < sample:
            shown.append(
                MessagePreview(
                    phone,
                    country,
                    "send",
                    body,
                    enc.encoding,
                    enc.characters,
                    enc.parts,
                    enc.ucs2_char,
                )
            )
    return Preview(channel, shown, totals)


def _shown(phone: str, country: str | None, status: str, body: str, error: str) -> MessagePreview:
    return MessagePreview(phone, country, status, body, sms_encoding(body), 0, 0, error=error)

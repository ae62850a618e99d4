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
from campaigns.templates import placeholders
from clicksend.parts import (
    GSM7_BASIC,
    GSM7_EXTENSION,
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


# Length -> how a message of that many basic GSM-7 characters goes out: for those the
# length decides everything, so a million recipients need a few hundred encodings.
_PLAIN: dict[int, Encoded] = {}


def encode(channel: str, body: str) -> Encoded:
    if channel == "sms" and GSM7_BASIC.issuperset(body):
        length = len(body)
        found = _PLAIN.get(length)
        if found is None:
            found = _PLAIN[length] = _encode_sms(body)
        return found
    if channel == "sms":
        return _encode_sms(body)
    return _encode_other(channel, body)


def _encode_sms(body: str) -> Encoded:
    encoding, parts = sms_parts(body)
    plain = encoding == "gsm7" and GSM7_EXTENSION.isdisjoint(body)
    units = len(body) if plain else sms_units(body, encoding)
    limit = MAX_SMS_PARTS * (153 if encoding == "gsm7" else 67)
    truncated = parts == MAX_SMS_PARTS and units > limit
    trigger = ucs2_trigger(body) if encoding == "ucs2" else None
    return Encoded(encoding, len(body), units, parts, truncated, trigger)


def _encode_other(channel: str, body: str) -> Encoded:
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


def _audience_query(
    session: Session, defn: CampaignDefinition, names: list[str] | None
) -> Any | None:
    list_ids = audience_list_ids(session, defn)
    if not list_ids:
        return None
    if names is None:
        columns: list[Any] = [Contact.fields]
    else:
        # Only these fields, read by the database out of the JSON: a million JSON
        # documents decoded in Python would cost most of a preview.
        columns = [Contact.fields[name].as_string().label(f"f_{name}") for name in names]
    return (
        select(
            Contact.id,
            Contact.phone,
            Suppression.id.is_not(None).label("suppressed"),
            *columns,
        )
        .outerjoin(Suppression, Suppression.phone == Contact.phone)
        .where(Contact.list_id.in_(list_ids))
        .order_by(Contact.id)
        .execution_options(yield_per=STREAM_CHUNK)
    )


def audience_rows(session: Session, defn: CampaignDefinition) -> Iterator[Any]:
    """(id, phone, suppressed, fields) of every contact of the audience, streamed."""
    stmt = _audience_query(session, defn, None)
    return iter(()) if stmt is None else iter(session.execute(stmt))


_countries: dict[str, str | None] = {}


def country_of(phone: str) -> str | None:
    """The number's country (ISO 3166), None when it has none. Numbers sharing their
    first digits share a country: phonenumbers is asked once per prefix."""
    prefix = phone[:_COUNTRY_PREFIX]
    try:
        return _countries[prefix]
    except KeyError:
        pass
    if not _is_e164(phone):
        return None
    try:
        country = region_of(phone)
    except ValueError:
        country = None
    _countries[prefix] = country
    return country


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
    used = template_names(defn, template_body)
    names = [n for n in used if n not in defaults]
    channel = defn.channel
    totals = Totals()
    shown: list[MessagePreview] = []
    seen: set[str] = set()
    missing_fields: dict[str, int] = dict.fromkeys(names, 0)
    # Per country: recipients and parts; the cost is parts times the country's price,
    # worked out once at the end.
    recipients_by: dict[str | None, int] = {}
    parts_by: dict[str | None, int] = {}
    stmt = _audience_query(session, defn, used)
    for row in session.execute(stmt) if stmt is not None else ():
        totals.contacts += 1
        phone: str = row[1]
        if phone in seen:
            totals.duplicates += 1
            continue
        seen.add(phone)
        country = country_of(phone)
        if country is None:
            totals.invalid += 1
        if row[2]:
            totals.suppressed += 1
            if len(shown) < sample:
                shown.append(_shown(phone, country, "suppressed", "", "number opted out"))
            continue
        fields = dict(zip(used, row[3:], strict=True))
        # A JSON number comes back as a number on SQLite: str() it, as rendering does.
        missing = [n for n in names if fields[n] is None or not str(fields[n]).strip()]
        if missing:
            for name in missing:
                missing_fields[name] += 1
            totals.failed += 1
            if len(shown) < sample:
                shown.append(_shown(phone, country, "failed", "", f"missing field {missing[0]}"))
            continue
        fields["phone_number"] = phone
        body = render(fields, defaults)
        enc = encode(channel, body)
        parts = enc.parts
        totals.messages += 1
        totals.parts += parts
        if parts > totals.max_parts:
            totals.max_parts = parts
        if enc.truncated:
            totals.truncated += 1
        if enc.encoding == "ucs2":
            totals.ucs2 += 1
        if not body.strip():
            totals.empty += 1
        recipients_by[country] = recipients_by.get(country, 0) + 1
        parts_by[country] = parts_by.get(country, 0) + parts
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
                    parts,
                    enc.ucs2_char,
                )
            )
    totals.recipients = len(seen)
    totals.missing_fields = {n: c for n, c in missing_fields.items() if c}
    for country, count in recipients_by.items():
        cost = prices.cost(channel, country, parts_by[country])
        totals.by_country[country or "unknown"] = CountryTotal(count, parts_by[country], cost)
        totals.estimate += cost
    return Preview(channel, shown, totals)


def _shown(phone: str, country: str | None, status: str, body: str, error: str) -> MessagePreview:
    return MessagePreview(phone, country, status, body, sms_encoding(body), 0, 0, error=error)

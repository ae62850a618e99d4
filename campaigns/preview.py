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
from campaigns.preview_sql import PREFIX, AudienceSql, Group
from campaigns.pricing import PriceTable
from campaigns.templates import MissingField, placeholders, template_parts
from clicksend.parts import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_SMS_PARTS,
    MAX_VOICE_PARTS,
    VOICE_CHARS_PER_PART,
    by_length,
    sms_encoding,
    sms_parts,
    sms_units,
    ucs2_trigger,
)

# Numbers sharing their first digits share a country; phonenumbers is asked once per
# prefix (parsing each of a million numbers would take most of a minute).
_COUNTRY_PREFIX = PREFIX
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
    if not _is_e164(phone):  # before the prefix: "+1201555 0101" is not a US number
        return None
    prefix = phone[:_COUNTRY_PREFIX]
    try:
        return _countries[prefix]
    except KeyError:
        pass
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
    row_by_row: bool = False,
) -> Preview:
    """The first ``sample`` recipients' messages and totals for the whole audience.
    ``each(phone, body)`` is called for every message that would be sent.

    A body of plain substitutions is judged by the database in groups
    (``campaigns.preview_sql``), the recipients it cannot judge exactly row by row here;
    ``each``, a provider template's variables or ``row_by_row`` take every recipient row
    by row. Both ways give the same totals."""
    render = body_renderer(defn, template_body)
    defaults = dict(defn.message.defaults)
    used = template_names(defn, template_body)
    tally = _Tally(defn.channel, render, defaults, used, sample, each)
    list_ids = audience_list_ids(session, defn)
    parts = template_parts(render)
    if (
        row_by_row
        or each is not None
        or parts is None
        or set(parts[1]) - {"phone_number"} != set(used)
        or not list_ids
        or len(tally.names) > 30  # one bit each in the database's count of missing fields
    ):
        stmt = _audience_query(session, defn, used)
        for row in session.execute(stmt) if stmt is not None else ():
            tally.contact(row[1], row[2], row[3:])
        return tally.result(prices)
    if sample:
        # The first recipients, as the row-by-row preview shows them; their totals are
        # the database's, below.
        first = _Tally(defn.channel, render, defaults, used, sample, None)
        stmt = _audience_query(session, defn, used)
        assert stmt is not None
        rows = session.execute(stmt.execution_options(yield_per=max(100, 2 * sample)))
        try:
            for row in rows:
                first.contact(row[1], row[2], row[3:])
                if len(first.shown) >= sample:
                    break
        finally:
            rows.close()
        tally.shown = first.shown
        tally.sample = 0
    try:
        fixed = encode(defn.channel, tally.fixed()).parts
    except MissingField:  # a field without a default: every body has a value of its own
        fixed = 0
    audience = AudienceSql(
        session.get_bind().dialect.name == "postgresql",
        list_ids,
        parts[0],
        parts[1],
        defaults,
        tally.names,
        tally.part_count,
        fixed,
    )
    odd = tally.groups(audience.groups(session))
    if odd:
        # Values only Python judges exactly: these recipients (first of their number)
        # row by row.
        for row in audience.odd_rows(session):
            tally.recipient(row[1], row[2], row[3:])
    return tally.result(prices)


class _Tally:
    """The totals (and the first ``sample`` messages) of recipients added one by one
    (``contact``, ``recipient``) or in groups the database formed (``groups``)."""

    def __init__(
        self,
        channel: str,
        render: Callable[[dict[str, Any], dict[str, str]], str],
        defaults: dict[str, str],
        used: list[str],
        sample: int,
        each: Callable[[str, str], None] | None,
    ) -> None:
        self.channel, self.render, self.defaults, self.used = channel, render, defaults, used
        self.names = [n for n in used if n not in defaults]
        self.sample, self.each = sample, each
        self.totals = Totals()
        self.shown: list[MessagePreview] = []
        self.seen: set[str] = set()
        self.missing_fields: dict[str, int] = dict.fromkeys(self.names, 0)
        # Per country: recipients and parts; the cost is parts times the country's price,
        # worked out once at the end.
        self.recipients_by: dict[str | None, int] = {}
        self.parts_by: dict[str | None, int] = {}

    def contact(self, phone: str, suppressed: bool, values: Any) -> None:
        """One contact of the audience, in contact order: the first of its number counts."""
        self.totals.contacts += 1
        if phone in self.seen:
            self.totals.duplicates += 1
            return
        self.seen.add(phone)
        self.recipient(phone, suppressed, values)

    def recipient(self, phone: str, suppressed: bool, values: Any) -> None:
        """One recipient (the first contact of its number) and its fields' values, in the
        order of ``used``."""
        totals = self.totals
        totals.recipients += 1
        sample = len(self.shown) < self.sample
        country = country_of(phone)
        if country is None:
            totals.invalid += 1
        if suppressed:
            totals.suppressed += 1
            if sample:
                self.shown.append(_shown(phone, country, "suppressed", "", "number opted out"))
            return
        fields = dict(zip(self.used, values, strict=True))
        # A JSON number comes back as a number on SQLite: str() it, as rendering does.
        missing = [n for n in self.names if fields[n] is None or not str(fields[n]).strip()]
        if missing:
            for name in missing:
                self.missing_fields[name] += 1
            totals.failed += 1
            if sample:
                self.shown.append(
                    _shown(phone, country, "failed", "", f"missing field {missing[0]}")
                )
            return
        fields["phone_number"] = phone
        body = self.render(fields, self.defaults)
        enc = encode(self.channel, body)
        self._message(country, enc, not body.strip())
        if self.each is not None:
            self.each(phone, body)
        if sample:
            self.shown.append(
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

    def groups(self, groups: list[Group]) -> int:
        """Add the database's groups; the number of recipients left to add row by row."""
        totals = self.totals
        odd = 0
        for g in groups:
            if g.by_prefix:  # countries: recipients and parts to send to each
                if g.status not in ("s", "f", "m"):
                    continue
                assert g.phone is not None
                country = country_of(g.phone)
                if country is None:
                    totals.invalid += g.count
                if g.status == "m":
                    self.recipients_by[country] = self.recipients_by.get(country, 0) + g.count
                    self.parts_by[country] = self.parts_by.get(country, 0) + g.parts
                continue
            totals.contacts += g.count
            if g.status == "d":
                totals.duplicates += g.count
            elif g.status == "u":
                odd += g.count
            else:
                totals.recipients += g.count
            if g.status == "s":
                totals.suppressed += g.count
            elif g.status == "f":
                totals.failed += g.count
                for i, name in enumerate(self.names):
                    if g.missing >> i & 1:
                        self.missing_fields[name] += g.count
            elif g.status == "m":
                if g.length is None:  # no value of its own: the literal text and defaults
                    body = self.fixed()
                    empty = not body.strip()
                else:
                    found = by_length(int(g.cls or 0), g.length)
                    assert found is not None
                    # A value of its own has a letter or digit: the body is not blank.
                    body, empty = found, False
                enc = encode(self.channel, body)
                # The database's parts (its table from ``part_count``) are these.
                assert enc.parts * g.count == g.parts, (enc, g)
                # Countries: from this group's prefix grouping, above.
                self._encoded(enc, empty, g.count)
        return odd

    def fixed(self) -> str:
        """The body of a recipient with no value of its own in any placeholder."""
        return self.render({}, self.defaults)

    def part_count(self, cls: int, length: int) -> int:
        """The parts of a body of ``cls`` (``sms_class``) and ``length``."""
        body = by_length(cls, length)
        return 0 if body is None else encode(self.channel, body).parts

    def _message(self, country: str | None, enc: Encoded, empty: bool) -> None:
        self._encoded(enc, empty, 1)
        self.recipients_by[country] = self.recipients_by.get(country, 0) + 1
        self.parts_by[country] = self.parts_by.get(country, 0) + enc.parts

    def _encoded(self, enc: Encoded, empty: bool, count: int) -> None:
        """``count`` messages encoded as ``enc``, in the totals (not yet by country)."""
        totals = self.totals
        totals.messages += count
        totals.parts += enc.parts * count
        if enc.parts > totals.max_parts:
            totals.max_parts = enc.parts
        if enc.truncated:
            totals.truncated += count
        if enc.encoding == "ucs2":
            totals.ucs2 += count
        if empty:
            totals.empty += count

    def result(self, prices: PriceTable) -> Preview:
        totals = self.totals
        totals.missing_fields = {n: c for n, c in self.missing_fields.items() if c}
        for country, count in self.recipients_by.items():
            cost = prices.cost(self.channel, country, self.parts_by[country])
            totals.by_country[country or "unknown"] = CountryTotal(
                count, self.parts_by[country], cost
            )
            totals.estimate += cost
        return Preview(self.channel, self.shown, totals)


def _shown(phone: str, country: str | None, status: str, body: str, error: str) -> MessagePreview:
    return MessagePreview(phone, country, status, body, sms_encoding(body), 0, 0, error=error)

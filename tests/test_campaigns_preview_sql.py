"""The preview's totals judged by the database in groups are the totals of the
row-by-row preview: every count, part, cost, missing field and shown message."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

import campaigns.preview_sql as preview_sql
from campaigns.db import session_scope
from campaigns.definition import load_definition
from campaigns.models import Contact, ContactList, Suppression
from campaigns.preview import preview
from campaigns.pricing import BUILT_IN, PriceTable
from tests.seed import us_numbers

PRICES = PriceTable(BUILT_IN)
LEAD = "Hi "  # every body below starts so; the value's length sets the body's length


def _values(postgres: bool) -> list[Any]:
    """first_name values of every kind: plain, blank, not text, GSM-7 extension
    characters, UCS-2 inside and beyond the BMP, and lengths that put a body on each side
    of the part boundaries."""
    values: list[Any] = [
        "Ann",
        "Zoë",  # UCS-2, BMP
        "Łukasz",
        "Ann \u2019x",
        "€uro",  # GSM-7 extension
        "[b]",
        "a^b",
        "x\\y",
        "Ann\fB",
        "😀 Ann",  # beyond the BMP
        "Ann 😀😀",
        "",
        "   ",
        "\u00a0",  # a space to str.strip, not to a regex
        "\t",
        "\tAnn",
        "Ann\nLee",
        "Ann\r\n",
        "{x}",
        "#1 %_'\"",
        5,
        1.5,
        0,
        True,
        False,
        -12.5,
        10**20,
        1e-07,
        None,
        ["a"],
        {"a": 1},
        "Ωmega ΔΦ",  # Greek capitals: basic GSM-7
        "ÄÖÑÜäöñüà ÇØøÅåÆæßÉ",
        "ç",  # not GSM-7 (only Ç is)
        "\u0131",  # dotless i
    ]
    if not postgres:  # PostgreSQL's text holds no NUL
        values += ["ab\u0000cd", "\u0000"]
    # Body lengths around each boundary: 160/161 (one GSM-7 part), 153*k, 6*153
    # (truncated past it); 70/71 and 67*k for UCS-2.
    for total in (160, 161, 306, 307, 459, 918, 919, 1000):
        values.append("a" * (total - len(LEAD) - len(", ok")))
    for total in (70, 71, 134, 135, 402, 403, 500):
        values.append("\u00ea" + "b" * (total - len(LEAD) - len(", ok") - 1))
    for total in (70, 71, 134, 135):  # an emoji across a part boundary
        values.append("b" * (total - len(LEAD) - len(", ok") - 2) + "😀")
    for total in (160, 161, 306, 307):  # an extension character across one
        values.append("b" * (total - len(LEAD) - len(", ok") - 2) + "€")
    return values


PHONES_OTHER = ["+447400123456", "+447400123457", "+33612345678", "+8613800138000"]
# Not plain E.164: too short, too long, a letter, a space, a digit outside ASCII.
PHONES_ODD = ["+1234", "+12015550123456789", "+1201555012a", "+1 2015550199", "+4474001٢3499"]


def _audience(url: str) -> None:
    postgres = url.startswith("postgresql")
    values = _values(postgres)
    phones = us_numbers(len(values) * 2) + PHONES_OTHER + PHONES_ODD
    rows_a = []
    for i, phone in enumerate(phones):
        fields: dict[str, Any] = {"last": "L" * (i % 5)}
        value = values[i % len(values)]
        if i % 7 != 3:  # else no first_name at all
            fields["first_name"] = value
        if i % 3 == 0:
            fields["city"] = values[(i * 5) % len(values)]
        rows_a.append({"phone": phone, "fields": fields})
    with session_scope(url) as session:
        a, b = ContactList(name="a"), ContactList(name="b")
        session.add_all([a, b])
        session.flush()
        session.execute(insert(Contact), [{"list_id": a.id, **r} for r in rows_a])
        # List b: numbers of list a again (other fields: the first contact wins), and
        # numbers of its own.
        again = [r["phone"] for r in rows_a[10:40]]
        own = us_numbers(20, start=5000)
        session.execute(
            insert(Contact),
            [
                {"list_id": b.id, "phone": p, "fields": {"first_name": "Other", "city": "B"}}
                for p in again + own
            ],
        )
        session.add_all(
            Suppression(phone=p, reason="STOP")
            for p in [rows_a[1]["phone"], rows_a[12]["phone"], own[3], PHONES_ODD[1]]
        )


BODIES: list[tuple[str, dict[str, str]]] = [
    (LEAD + "{first_name}, ok", {}),
    (LEAD + "{first_name}, ok", {"first_name": "friend"}),
    (LEAD + "{first_name}, ok", {"first_name": "\u00e7a va"}),  # a UCS-2 default
    (LEAD + "{first_name}, ok", {"first_name": "€"}),  # an extension character
    (LEAD + "{first_name}, ok", {"first_name": " "}),
    (LEAD + "{first_name} of {city}, {first_name}! {last}", {"city": "town", "last": "-"}),
    ("{first_name}{city}", {"first_name": "", "city": " "}),  # blank for some
    ("{city}", {"city": "\n"}),
    ("Caf\u00e9 \u2019{first_name}\u2019", {"first_name": "you"}),  # UCS-2 literal
    ("Price: 5€ {first_name}", {"first_name": "you"}),  # an extension character
    ("Hi {first_name} 😀", {"first_name": "you"}),  # an emoji
    ("Call {phone_number}, {first_name}", {"first_name": "you"}),
    ("Hello, no placeholder at all", {}),
    ("{0} {a[0]} {{first_name}} {first_name}", {}),
    ("a" * 160, {}),
]


def _defn(channel: str, body: str, defaults: dict[str, str], lists: list[str]) -> Any:
    message: dict[str, Any] = {"body": body, "from": "+12015550999", "defaults": defaults}
    if channel == "mms":
        message["media_file"] = "https://example.com/a.jpg"
        message["subject"] = "s"
    return load_definition(
        {"name": "c", "channel": channel, "audience": {"lists": lists}, "message": message}
    )


def test_the_database_groups_give_the_row_by_row_totals(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _audience(db_url)
    odd: list[int] = []
    odd_rows = preview_sql.AudienceSql.odd_rows

    def spy(self: preview_sql.AudienceSql, session: Any) -> Any:
        rows = list(odd_rows(self, session))
        odd.append(len(rows))
        return iter(rows)

    monkeypatch.setattr(preview_sql.AudienceSql, "odd_rows", spy)
    cases = [("sms", body, defaults) for body, defaults in BODIES]
    cases += [("mms", LEAD + "{first_name}, ok", {}), ("voice", LEAD + "{first_name}, ok", {})]
    for channel, body, defaults in cases:
        for lists in (["a"], ["a", "b"]):
            defn = _defn(channel, body, defaults, lists)
            with session_scope(db_url) as session:
                expected = preview(session, defn, PRICES, sample=12, row_by_row=True)
                odd.clear()
                got = preview(session, defn, PRICES, sample=12)
            assert got.to_json() == expected.to_json(), (channel, body, defaults, lists)
            totals = got.totals
            assert totals.recipients == totals.contacts - totals.duplicates
            assert totals.messages + totals.failed + totals.suppressed == totals.recipients
            if body == BODIES[0][0]:  # the database judged most recipients itself
                assert 0 < sum(odd) < totals.recipients / 2


def test_a_number_not_e164_is_invalid_whatever_number_came_before_it(db_url: str) -> None:
    """Its country is not the one of a valid number that shares its first characters."""
    with session_scope(db_url) as session:
        lst = ContactList(name="a")
        session.add(lst)
        session.flush()
        session.execute(
            insert(Contact),
            [
                {"list_id": lst.id, "phone": p, "fields": {"first_name": "Ann"}}
                for p in ["+12015550100", "+1201555 0101", "+1201555010x"]
            ],
        )
    defn = _defn("sms", LEAD + "{first_name}, ok", {}, ["a"])
    with session_scope(db_url) as session:
        totals = preview(session, defn, PRICES).totals
    assert (totals.recipients, totals.invalid) == (3, 2)
    assert totals.by_country["US"].recipients == 1
    assert totals.by_country["unknown"].recipients == 2


@pytest.mark.parametrize("channel", ["sms", "mms", "voice"])
def test_the_parts_the_database_counts_by_length_are_pythons(channel: str) -> None:
    """The CASE the database counts a body's parts by (from its length and class) gives,
    at every length, the parts ``encode`` gives that body."""
    import sqlite3

    from campaigns.preview import encode
    from clicksend.parts import BASIC, WIDE, by_length

    def parts(cls: int, n: int) -> int:
        body = by_length(cls, n)
        return 0 if body is None else encode(channel, body).parts

    db = sqlite3.connect(":memory:")
    for cls in (BASIC, WIDE):
        case = preview_sql._runs(lambda n, c=cls: parts(c, n), "len")  # type: ignore[misc]
        lengths = range(1, preview_sql.LONGEST + 200)
        got = db.execute(
            f"WITH RECURSIVE t(len) AS (SELECT 1 UNION ALL SELECT len + 1 FROM t"
            f" WHERE len < {lengths[-1]}) SELECT len, {case} FROM t"
        ).fetchall()
        assert got == [(n, parts(cls, n)) for n in lengths]

"""Expansion of a run into message rows."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from sqlalchemy import func, select

from campaigns.db import session_scope
from campaigns.expand import SendPlan, expand_run
from campaigns.models import Message, Run, Suppression
from tests.seed import seed_campaign, seed_list, us_numbers


def _messages(url: str, run_id: int) -> dict[str, Message]:
    with session_scope(url) as session:
        return {
            m.phone: m for m in session.scalars(select(Message).where(Message.run_id == run_id))
        }


def test_dedupes_across_lists_and_renders_each_recipient(db_url: str) -> None:
    a = us_numbers(30)
    b = us_numbers(20, start=20)  # 10 numbers are in both lists
    seed_list(db_url, "a", a)
    seed_list(db_url, "b", b)
    _, run_id = seed_campaign(db_url, ["a", "b"])
    with session_scope(db_url) as session:
        report = expand_run(session, run_id, chunk_size=7)
    assert (report.candidates, report.messages, report.duplicates_removed) == (50, 40, 10)
    rows = _messages(db_url, run_id)
    assert set(rows) == set(a) | set(b)
    assert rows[a[3]].body == "Hi N3, 20% off"
    assert {m.status for m in rows.values()} == {"pending"}
    with session_scope(db_url) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.status == "sending" and run.duplicates_removed == 10


def test_expanding_twice_adds_nothing(db_url: str) -> None:
    seed_list(db_url, "a", us_numbers(12))
    _, run_id = seed_campaign(db_url, ["a"])
    with session_scope(db_url) as session:
        expand_run(session, run_id, chunk_size=5)
        again = expand_run(session, run_id, chunk_size=5)
        count = session.scalar(select(func.count()).where(Message.run_id == run_id))
    assert count == 12 and again.messages == 12 and again.duplicates_removed == 0


def test_interrupted_expansion_resumes_without_duplicates(sqlite_url: str) -> None:
    phones = us_numbers(10)
    seed_list(sqlite_url, "a", phones)
    _, run_id = seed_campaign(sqlite_url, ["a"])
    calls = 0

    def crash_after_first_chunk(_: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("worker died")

    with session_scope(sqlite_url) as session, contextlib.suppress(RuntimeError):
        expand_run(session, run_id, chunk_size=4, progress=crash_after_first_chunk)
    with session_scope(sqlite_url) as session:
        assert session.get(Run, run_id).status == "expanding"  # type: ignore[union-attr]
        report = expand_run(session, run_id, chunk_size=4)
    assert report.messages == 10 and report.duplicates_removed == 0


def test_suppressed_numbers_are_recorded_not_sent(sqlite_url: str) -> None:
    phones = us_numbers(5)
    seed_list(sqlite_url, "a", phones)
    with session_scope(sqlite_url) as session:
        session.add(Suppression(phone=phones[1], reason="STOP reply"))
    _, run_id = seed_campaign(sqlite_url, ["a"])
    with session_scope(sqlite_url) as session:
        report = expand_run(session, run_id)
    assert report.suppressed == 1
    rows = _messages(sqlite_url, run_id)
    assert rows[phones[1]].status == "suppressed"
    assert sum(m.status == "pending" for m in rows.values()) == 4


def test_missing_field_fails_that_recipient_only(sqlite_url: str) -> None:
    phones = us_numbers(3)
    seed_list(sqlite_url, "a", phones)
    _, run_id = seed_campaign(
        sqlite_url, ["a"], message={"body": "Hi {first_name}, code {custom_1}", "from": "X"}
    )
    with session_scope(sqlite_url) as session:
        report = expand_run(session, run_id)
    assert report.failed == 3
    assert {m.error for m in _messages(sqlite_url, run_id).values()} == {"missing field custom_1"}


def test_declared_default_fills_a_missing_field(sqlite_url: str) -> None:
    seed_list(sqlite_url, "a", us_numbers(2))
    _, run_id = seed_campaign(
        sqlite_url,
        ["a"],
        message={"body": "Code {custom_1}", "from": "X", "defaults": {"custom_1": "none"}},
    )
    with session_scope(sqlite_url) as session:
        expand_run(session, run_id)
    assert {m.body for m in _messages(sqlite_url, run_id).values()} == {"Code none"}


def test_planner_sets_not_before_or_skips(sqlite_url: str) -> None:
    from datetime import timedelta

    phones = us_numbers(2)
    seed_list(sqlite_url, "a", phones)
    _, run_id = seed_campaign(sqlite_url, ["a"])

    def planner(phone, fields, tz, occurrence):  # type: ignore[no-untyped-def]
        if phone == phones[0]:
            return SendPlan(not_before=occurrence + timedelta(hours=1))
        return SendPlan(skip_reason="appointment already passed")

    with session_scope(sqlite_url) as session:
        expand_run(session, run_id, planner=planner)
    rows = _messages(sqlite_url, run_id)
    assert rows[phones[0]].status == "pending" and rows[phones[0]].not_before is not None
    assert (rows[phones[1]].status, rows[phones[1]].error) == (
        "skipped",
        "appointment already passed",
    )


def test_bodies_with_tabs_newlines_and_backslashes_are_stored_as_rendered(db_url: str) -> None:
    """PostgreSQL writes the rows as COPY text, where these characters are escapes."""
    phones = us_numbers(3)
    seed_list(db_url, "a", phones, fields={"last_name": "x\tz\\N\nq\r\\\\"})
    _, run_id = seed_campaign(db_url, ["a"], body="{last_name} | {first_name}\\t")
    with session_scope(db_url) as session:
        expand_run(session, run_id)
    rows = _messages(db_url, run_id)
    assert rows[phones[1]].body == "x\tz\\N\nq\r\\\\ | N1\\t"
    assert rows[phones[1]].error is None and rows[phones[1]].not_before is None


def test_rows_another_expansion_wrote_meanwhile_are_not_written_twice(pg_url: str) -> None:
    """A run over one list is COPYed straight into messages; a chunk that collides with
    rows another expansion of the run wrote is written again with ON CONFLICT."""
    phones = us_numbers(10)
    seed_list(pg_url, "a", phones)
    _, run_id = seed_campaign(pg_url, ["a"])
    written = False

    def other_expansion(_: int) -> None:
        nonlocal written
        if not written:
            written = True
            with session_scope(pg_url) as other:
                other.add(Message(run_id=run_id, phone=phones[6], body="other", status="pending"))

    with session_scope(pg_url) as session:
        report = expand_run(session, run_id, chunk_size=4, progress=other_expansion)
    rows = _messages(pg_url, run_id)
    assert set(rows) == set(phones) and report.messages == 10
    assert rows[phones[6]].body == "other"  # kept, not duplicated
    assert rows[phones[7]].body == "Hi N7, 20% off"


def test_each_chunk_of_the_audience_is_read_along_the_primary_key(sqlite_url: str) -> None:
    """A chunk is the next contacts after the last id: read off the primary key, not by
    searching the list's whole index and sorting it (quadratic in the list's size)."""
    from campaigns.expand import _ContactReader

    seed_list(sqlite_url, "a", us_numbers(3))
    with session_scope(sqlite_url) as session:
        reader = _ContactReader(session, [1], 10)
        connection = session.connection().connection.driver_connection
        assert connection is not None
        plan = " | ".join(
            str(row[-1])
            for row in connection.execute("EXPLAIN QUERY PLAN " + reader.sql, (1, 0, 10))
        )
    assert "INTEGER PRIMARY KEY" in plan and "TEMP B-TREE" not in plan, plan


# Field values the database may render itself and values that need Python's rules (blank,
# whitespace Python strips and SQL may not, numbers, booleans, lists, nulls).
_FIELD_VALUES: list[dict[str, object]] = [
    {"first_name": "Ann", "city": "Oslo"},
    {"first_name": "Zoë 東京", "city": "São Paulo"},
    {"first_name": "x\tz\\N\nq\r%s %(a)s {city} ' \""},
    {"first_name": "Bo", "city": None},
    {"first_name": "Cy"},
    {"city": "Rome"},
    {},
    {"first_name": "Di", "city": "Nice", "phone_number": "+15550000000"},
    {"first_name": "", "city": "Bern"},
    {"first_name": "   ", "city": "Bern"},
    {"first_name": "\u00a0\u2003", "city": "Bern"},
    {"first_name": 7, "city": 1.5},
    {"first_name": True, "city": ["a", 1]},
    {"first_name": {"k": "v"}, "city": "   "},
    {"first_name": "Ed", "city": ""},
    {"first_name": "-", "city": "."},
]


def _python_rows(
    url: str, list_ids: list[int], body: str, defaults: dict[str, str]
) -> dict[str, tuple[str, str, str | None]]:
    """Each number's (body, status, error) as rendered row by row in Python, the first
    contact of a number kept."""
    from campaigns.models import Contact
    from campaigns.templates import MissingField, render

    expected: dict[str, tuple[str, str, str | None]] = {}
    with session_scope(url) as session:
        suppressed = set(session.scalars(select(Suppression.phone)))
        contacts = session.scalars(
            select(Contact).where(Contact.list_id.in_(list_ids)).order_by(Contact.id)
        )
        for c in contacts:
            if c.phone in expected:
                continue
            try:
                text, error = render(body, {**c.fields, "phone_number": c.phone}, defaults), None
            except MissingField as exc:
                text, error = "", f"missing field {exc.field}"
            status = "failed" if error else "pending"
            if c.phone in suppressed:
                status, error = "suppressed", "number opted out"
            expected[c.phone] = (text, status, error)
    return expected


def test_rows_the_database_renders_are_the_rows_python_renders(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks the database renders itself (plain substitutions, no per-recipient plan)
    hold the bodies, statuses and errors the row-by-row rendering gives, defaults and
    missing fields included; a chunk with a value only Python judges exactly goes row by
    row; over two lists the first contact of a number is the one kept."""
    from sqlalchemy import insert

    import campaigns.expand as expand
    from campaigns.models import Contact, ContactList

    phones = us_numbers(60)
    with session_scope(db_url) as session:
        a, b = ContactList(name="a"), ContactList(name="b")
        session.add_all([a, b])
        session.flush()
        simple = [v for v in _FIELD_VALUES[:8]]
        # First 16 contacts: values the database renders (two chunks of 8 go in SQL);
        # then every kind of value mixed.
        values = simple + simple + _FIELD_VALUES * 2
        session.execute(
            insert(Contact),
            [
                {"list_id": a.id, "phone": p, "fields": v}
                for p, v in zip(phones, values, strict=False)
            ],
        )
        # List b: ten numbers of list a again (other fields), ten of its own.
        session.execute(
            insert(Contact),
            [
                {"list_id": b.id, "phone": p, "fields": {"first_name": "Other", "city": "B"}}
                for p in phones[20:30] + phones[48:58]
            ],
        )
        session.add_all(
            [Suppression(phone=phones[2], reason="STOP"), Suppression(phone=phones[9], reason="x")]
        )
        list_ids = [a.id, b.id]
    body = "Hi {first_name} of {city}! {first_name}, call {phone_number} 100% {{x}}"
    defaults = {"city": "your town"}
    in_python: list[int] = []
    rows_of = expand._message_rows

    def spy(rows, *args):  # type: ignore[no-untyped-def]
        in_python.extend(r[0] for r in rows)
        return rows_of(rows, *args)

    monkeypatch.setattr(expand, "_message_rows", spy)
    for lists in (["a"], ["a", "b"]):
        _, run_id = seed_campaign(
            db_url, lists, message={"body": body, "from": "X", "defaults": defaults}
        )
        in_python.clear()
        with session_scope(db_url) as session:
            report = expand_run(session, run_id, chunk_size=8)
        expected = _python_rows(db_url, list_ids[: len(lists)], body, defaults)
        got = {m.phone: (m.body, m.status, m.error) for m in _messages(db_url, run_id).values()}
        assert got == expected
        assert report.messages == len(expected)
        # Row by row: the two chunks holding values of the last eight kinds, no other.
        assert len(in_python) == 16


def test_the_database_reads_each_contacts_fields_once_per_row(pg_url: str) -> None:
    """A chunk the database renders takes each field out of the contact's JSON once, in
    the scan of the contacts: the body, the status and the error all test the field,
    and each of those uses would otherwise parse the whole JSON again."""
    from sqlalchemy import text

    from campaigns.expand import _SqlChunks
    from campaigns.templates import compile_template, template_parts

    list_id = seed_list(pg_url, "a", us_numbers(3))
    _, run_id = seed_campaign(pg_url, ["a"])
    parts = template_parts(compile_template("Hi {first_name} of {city}"))
    assert parts is not None
    with session_scope(pg_url) as session:
        chunks = _SqlChunks(session, run_id, [list_id], parts, {"city": "town"}, 8)
        statement, params = chunks.insert(0, 10**9)
        (plan,) = session.execute(
            text("EXPLAIN (VERBOSE, FORMAT JSON) " + statement.text), params
        ).one()

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]

    (scan,) = [n for n in nodes(plan[0]["Plan"]) if n.get("Relation Name") == "contacts"]
    assert "c.fields" not in scan["Output"]  # the JSON itself does not leave the scan
    assert {"(c.fields -> 'first_name'::text)", "(c.fields -> 'city'::text)"} <= set(scan["Output"])


def test_lists_sharing_a_number_across_chunks_neither_hang_nor_change_the_kept_contact(
    pg_url: str,
) -> None:
    """Over two lists, the number of list a's last contact of a chunk is list b's first of
    the next. Written on two connections at once, the later chunk took the number first and
    the earlier one waited on its transaction, which commits only after the earlier one:
    the expansion hung. (``lock_timeout`` turns the hang into an error here.)"""
    from sqlalchemy import create_engine, text

    chunk = 4000
    a = us_numbers(2 * chunk)
    b = [a[-1], *us_numbers(chunk - 1, start=2 * chunk)]
    seed_list(pg_url, "a", a)
    seed_list(pg_url, "b", b)
    _, run_id = seed_campaign(pg_url, ["a", "b"])
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = conn.scalar(text("SELECT current_database()"))
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET lock_timeout = '10s'"))
    admin.dispose()
    from campaigns.db import get_engine

    get_engine(pg_url).dispose()  # new connections take the setting
    with session_scope(pg_url) as session:
        report = expand_run(session, run_id, chunk_size=chunk)
    assert (report.messages, report.duplicates_removed) == (3 * chunk - 1, 1)
    with session_scope(pg_url) as session:
        kept = session.scalar(
            select(Message.body).where(Message.run_id == run_id, Message.phone == a[-1])
        )
    assert kept == f"Hi N{2 * chunk - 1}, 20% off"  # list a's contact, the first of the two

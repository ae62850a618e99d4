"""campaigns.contacts_import on SQLite and PostgreSQL: counts, upserts, row errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.contacts_csv import import_csv
from campaigns.contacts_import import (
    CsvFormatError,
    ImportReport,
    RowError,
    upsert_contacts,
)
from campaigns.db import session_scope
from campaigns.models import Contact, ContactList, ImportError_

HEADER = "phone_number,first_name,last_name,custom_1\n"


def write(tmp_path: Path, text: str | bytes, name: str = "c.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def contacts(
    url: str, list_name: str = "customers"
) -> dict[str, tuple[dict[str, Any], str | None]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(Contact.phone, Contact.fields, Contact.timezone)
            .join(ContactList, ContactList.id == Contact.list_id)
            .where(ContactList.name == list_name)
        ).all()
    return {r.phone: (r.fields, r.timezone) for r in rows}


def run(url: str, path: Path, **kwargs: Any) -> ImportReport:
    return import_csv(url, path, "customers", default_region="US", **kwargs)


def test_import_stores_e164_numbers_and_all_fields(db_url: str, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Phone Number,First Name,last-name,email,loyalty_tier\n"
        "(201) 555-0123,Ann,Lee,ann@example.com,gold\n"
        "+12015550124, Bob ,,bob@example.com,\n",
    )
    report = run(db_url, path)
    assert (report.rows, report.imported, report.updated, report.duplicates) == (2, 2, 0, 0)
    assert report.errors == []
    assert contacts(db_url) == {
        "+12015550123": (
            {
                "first_name": "Ann",
                "last_name": "Lee",
                "email": "ann@example.com",
                "loyalty_tier": "gold",
            },
            None,
        ),
        "+12015550124": ({"first_name": "Bob", "email": "bob@example.com"}, None),
    }
    with session_scope(db_url) as session:
        lst = session.scalars(select(ContactList).where(ContactList.name == "customers")).one()
        assert (lst.id, lst.source) == (report.list_id, "local")


def test_duplicates_in_the_file_first_wins(db_url: str, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER + "+12015550123,First,,\n(201) 555-0123,Second,,\n201.555.0123,Third,,\n",
    )
    report = run(db_url, path)
    assert (report.rows, report.imported, report.duplicates) == (3, 1, 2)
    assert contacts(db_url)["+12015550123"][0] == {"first_name": "First"}


def test_reimport_updates_existing_numbers_and_replaces_fields(db_url: str, tmp_path: Path) -> None:
    run(db_url, write(tmp_path, HEADER + "2015550123,Ann,Lee,x\n2015550124,Bob,,\n"))
    second = run(
        db_url, write(tmp_path, HEADER + "+12015550123,Anne,,\n2015550125,Cy,,\n", "2.csv")
    )
    assert (second.imported, second.updated) == (1, 1)
    assert second.list_id is not None
    assert contacts(db_url) == {
        "+12015550123": ({"first_name": "Anne"}, None),
        "+12015550124": ({"first_name": "Bob"}, None),
        "+12015550125": ({"first_name": "Cy"}, None),
    }


def test_row_errors_are_reported_stored_and_the_rest_goes_on(db_url: str, tmp_path: Path) -> None:
    text = (
        HEADER  # line 1
        + "not a number,A,,\n"  # 2
        + "+12015550123,B,,\n"  # 3
        + "+12015550124,C,,,extra\n"  # 4: one column too many
        + '+12015550125,"multi\nline",,\n'  # 5-6: a quoted field may not span lines
        + "+12015550126,D\n"  # 7: too few
        + "\n"  # 8: empty
        + ",,,\n"  # 9: empty
        + "+12015550127,E,,\n"  # 10
    )
    report = run(db_url, write(tmp_path, text))
    assert report.errors == [
        RowError(2, "phone_number", "not a phone number: 'not a number'"),
        RowError(4, "*", "expected 4 columns, found 5"),
        RowError(5, "*", 'malformed CSV: a quoted field does not end on its line (a stray ")'),
        RowError(6, "*", "expected 4 columns, found 3"),
        RowError(7, "*", "expected 4 columns, found 2"),
    ]
    assert (report.rows, report.imported, report.empty) == (9, 2, 2)
    assert (
        report.rows
        == report.imported + report.updated + report.duplicates + len(report.errors) + report.empty
    )
    assert sorted(contacts(db_url)) == ["+12015550123", "+12015550127"]
    with session_scope(db_url) as session:
        stored = session.execute(
            select(
                ImportError_.row, ImportError_.field, ImportError_.import_id, ImportError_.list_id
            ).order_by(ImportError_.row)
        ).all()
    assert [(r.row, r.field) for r in stored] == [
        (2, "phone_number"),
        (4, "*"),
        (5, "*"),
        (6, "*"),
        (7, "*"),
    ]
    assert {(r.import_id, r.list_id) for r in stored} == {(report.import_id, report.list_id)}


def test_a_non_utf8_byte_rejects_only_its_row(db_url: str, tmp_path: Path) -> None:
    data = (HEADER + "+12015550123,Ren\xe9e,,\n").encode() + b"+12015550124,Ren\xe9e,,\n"
    data += "+12015550125,Zoë,,\n".encode()
    report = run(db_url, write(tmp_path, data))
    assert report.errors == [RowError(3, "first_name", "not valid UTF-8 (byte 0xe9)")]
    assert report.imported == 2
    assert contacts(db_url)["+12015550125"][0] == {"first_name": "Zoë"}


def test_a_nul_character_or_an_oversized_field_rejects_only_its_row(
    db_url: str, tmp_path: Path
) -> None:
    text = HEADER + "+12015550123,A\x00,,\n" + "+12015550124," + "x" * 200_000 + ",,\n"
    report = run(db_url, write(tmp_path, text + "+12015550125,C,,\n"))
    assert report.errors == [
        RowError(2, "first_name", "contains a NUL character"),
        RowError(3, "*", "malformed CSV: field larger than field limit (131072)"),
    ]
    assert list(contacts(db_url)) == ["+12015550125"]


def test_a_utf8_byte_order_mark_is_not_part_of_the_header(db_url: str, tmp_path: Path) -> None:
    report = run(db_url, write(tmp_path, ("\ufeff" + HEADER + "+12015550123,A,,\n").encode()))
    assert (report.imported, report.errors) == (1, [])


def test_timezone_column_overrides_and_is_validated(db_url: str, tmp_path: Path) -> None:
    text = (
        "phone_number,first_name,timezone\n"
        "+12015550123,A,America/Chicago\n"
        "+12015550124,B,Mars/Olympus\n"
        "+12015550125,C,\n"
    )
    report = run(db_url, write(tmp_path, text))
    assert report.errors == [
        RowError(
            3,
            "timezone",
            "unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/London)",
        )
    ]
    stored = contacts(db_url)
    assert stored["+12015550123"] == ({"first_name": "A"}, "America/Chicago")
    assert stored["+12015550125"] == ({"first_name": "C"}, None)
    # A file without the column leaves the zones alone; one with it replaces them.
    run(db_url, write(tmp_path, "phone_number,first_name\n+12015550123,A2\n", "2.csv"))
    assert contacts(db_url)["+12015550123"] == ({"first_name": "A2"}, "America/Chicago")
    run(db_url, write(tmp_path, "phone_number,timezone\n+12015550123,\n", "3.csv"))
    assert contacts(db_url)["+12015550123"] == ({}, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty file; the first line must be a header with phone_number"),
        (
            "first_name,mobile\nA,+12015550123\n",
            "no phone_number column (found: first_name, mobile)",
        ),
        ("phone_number,Name,name\n", "column 'name' appears twice"),
        ("phone_number,,x\n", "header column 2 has no name"),
    ],
)
def test_a_bad_header_fails_the_whole_file(
    sqlite_url: str, tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CsvFormatError, match=re.escape(problem)) as caught:
        run(sqlite_url, path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert contacts(sqlite_url) == {}


def test_a_non_utf8_header_fails_the_whole_file(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(CsvFormatError, match=r"header: not valid UTF-8 \(byte 0xff\)"):
        run(sqlite_url, write(tmp_path, b"phone_number,\xff\n"))


def test_an_unknown_default_region_or_a_blank_list_name_is_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="default_region: unknown region 'XX'"):
        import_csv(sqlite_url, write(tmp_path, HEADER), "customers", default_region="XX")
    with pytest.raises(ValueError, match="list: a list name of 1 to 200 characters"):
        import_csv(sqlite_url, write(tmp_path, HEADER), " ", default_region="US")


def test_chunks_commit_and_report_progress(db_url: str, tmp_path: Path) -> None:
    lines = [f"+1201555{i:04d},N{i},," for i in range(100, 111)] + ["bad,,,", "bad,,,"]
    seen: list[int] = []
    report = run(
        db_url,
        write(tmp_path, HEADER + "\n".join(lines) + "\n"),
        chunk_size=4,
        progress=seen.append,
    )
    assert (report.rows, report.imported, len(report.errors)) == (13, 11, 2)
    assert seen == [4, 8, 12, 13]
    assert len(contacts(db_url)) == 11


def test_upsert_contacts_takes_rows_from_anywhere(db_url: str) -> None:
    rows: list[tuple[int, dict[str, Any]]] = [
        (1, {"phone_number": "+61411111111", "first_name": "Kim", "custom_1": 7, "email": None}),
        (2, {"phone_number": "0411 111 111", "first_name": "Again"}),
        (3, {"phone_number": None, "first_name": None}),
        (4, {"phone_number": "12", "first_name": "Short"}),
    ]
    with session_scope(db_url) as session:
        lst = ContactList(name="synced", source="clicksend", clicksend_list_id=3555278)
        session.add(lst)
        session.flush()
        report = upsert_contacts(session, lst.id, rows, default_region="AU", import_id="sync-1")
    assert (report.rows, report.imported, report.duplicates, report.empty) == (4, 1, 1, 1)
    assert [(e.row, e.field) for e in report.errors] == [(4, "phone_number")]
    assert contacts(db_url, "synced") == {
        "+61411111111": ({"first_name": "Kim", "custom_1": "7"}, None)
    }


def test_a_stray_quote_rejects_its_row_and_the_following_rows_are_imported(
    db_url: str, tmp_path: Path
) -> None:
    text = (
        HEADER
        + '+12015550123,"Ann,Lee,x\n'  # the quote is never closed on this line
        + "+12015550124,Bob,Ray,y\n"
        + '+12015550125,Cy",Dee,z\n'  # a quote inside an unquoted field is a character
        + "+12015550126,Di,Ek,w\n"
    )
    report = run(db_url, write(tmp_path, text))
    assert report.errors == [
        RowError(2, "*", 'malformed CSV: a quoted field does not end on its line (a stray ")')
    ]
    stored = contacts(db_url)
    # Nobody's number ends up in another contact's fields.
    assert sorted(stored) == ["+12015550124", "+12015550125", "+12015550126"]
    assert stored["+12015550125"][0]["first_name"] == 'Cy"'
    assert not any("\n" in v for fields, _ in stored.values() for v in fields.values())


def test_a_stray_quote_in_the_last_row_is_a_row_error(db_url: str, tmp_path: Path) -> None:
    report = run(db_url, write(tmp_path, HEADER + "+12015550124,Bob,,\n" + '+12015550125,"Cy,,'))
    assert [e.row for e in report.errors] == [3]
    assert list(contacts(db_url)) == ["+12015550124"]

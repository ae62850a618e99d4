"""PostgreSQL imports in blocks, checked by worker processes: the same list and the same
report as the one-process import of the same file (SQLite's path), whatever the blocks."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.clock import utcnow
from campaigns.contacts_blocks import BlockJob, _Writer, blocks, check_block
from campaigns.contacts_csv import import_csv
from campaigns.contacts_import import ImportReport, RowError, _cells, cells_of
from campaigns.db import session_scope
from campaigns.models import Contact, ContactList, ImportError_

HEADER = "phone_number,first_name,last_name,timezone\n"


def messy_file(path: Path, rows: int, seed: int, *, zones: bool = True) -> Path:
    """Good rows, duplicates far apart, bad numbers, bad zones, broken CSV, quoted fields,
    a stray quote, empty rows, a non-UTF-8 byte and a NUL; numbers not in E.164, fields
    with spaces around them, a backslash or a tab. Without ``zones``, no timezone column
    (the rows then get the blocks' short path wherever a block allows it)."""
    rnd = random.Random(seed)

    def row(*cells: str, zone: str = "") -> str:
        return ",".join(cells + ((zone,) if zones else ())) + "\n"

    out = [(HEADER if zones else HEADER.replace(",timezone", "")).encode()]
    for i in range(rows):
        phone = f"+1201{200 + (i // 10000) % 800:03d}{i % 10000:04d}"
        kind = rnd.randrange(60)  # kinds 12 and above: a plain row
        if kind == 0:
            phone = f"+1201200{rnd.randrange(0, max(1, i)) % 10000:04d}"  # an earlier number
        line = row(phone, f"N{i}", f"L{i}")
        if kind == 12:
            line = row(phone, f"N{i}", f'"L, {i}"')
        elif kind == 1:
            line = row(f"+1123{i:07d}", "bad", "")
        elif kind == 2:
            line = row(phone, f'"quoted, ""{i}"""', "x", zone="America/Chicago")
        elif kind == 3:
            line = row(phone, "Z", "", zone="Mars/Olympus")
        elif kind == 4:
            line = f"{phone},too,many,,columns\n"
        elif kind == 5:
            line = row("", "", "") if i % 2 else "\n"
        elif kind == 6:
            line = f'{phone},"unterminated\n' + row(f"{phone[:-1]}8", "next", "")
        elif kind == 9:
            line = row(f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}", "national", "")
        elif kind == 10:
            line = row(f" {phone} ", " spaced ", "back\\slash")
        elif kind == 11:
            line = row(phone, "tab\there", "")
        out.append(line.encode())
        if kind == 7:
            out.append(row("+12019990000", "Ren\udce9e", "").encode("utf-8", "surrogateescape"))
        elif kind == 8:
            out.append(row(f"{phone[:-1]}9", "A\x00", "").encode())
    path.write_bytes(b"".join(out))
    return path


def listed(url: str) -> dict[str, tuple[dict[str, Any], str | None]]:
    with session_scope(url) as session:
        rows = session.execute(select(Contact.phone, Contact.fields, Contact.timezone)).all()
    return {r.phone: (r.fields, r.timezone) for r in rows}


def stored_errors(url: str) -> list[tuple[int, str, str]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(ImportError_.row, ImportError_.field, ImportError_.message).order_by(
                ImportError_.row
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def summary(report: ImportReport) -> tuple[Any, ...]:
    return (
        report.rows,
        report.imported,
        report.updated,
        report.duplicates,
        report.empty,
        report.errors,
    )


@pytest.mark.parametrize(
    ("processes", "block", "zones"),
    [(0, 7, True), (2, 40, True), (2, 997, True), (0, 7, False), (2, 40, False)],
)
def test_blocks_give_the_one_process_result(
    pg_url: str, sqlite_url: str, tmp_path: Path, processes: int, block: int, zones: bool
) -> None:
    path = messy_file(tmp_path / "c.csv", 3000, seed=block, zones=zones)
    expected = import_csv(sqlite_url, path, "l", default_region="US")
    seen: list[int] = []
    got = import_csv(
        pg_url,
        path,
        "l",
        default_region="US",
        processes=processes,
        chunk_size=block,
        progress=seen.append,
    )
    assert summary(got) == summary(expected)
    # Progress counts the rows of blocks stored so far, in file order, up to the last row.
    assert seen == sorted(seen) and seen[-1] == got.rows and len(seen) >= 3000 // block
    assert len(expected.errors) > 150 and expected.duplicates > 30  # the file is messy
    assert listed(pg_url) == listed(sqlite_url)
    assert stored_errors(pg_url) == stored_errors(sqlite_url)
    # Imported again: every number is now an update, and the same rows are rejected.
    again = import_csv(
        pg_url, path, "l", default_region="US", processes=processes, chunk_size=block
    )
    assert (again.imported, again.updated) == (0, expected.imported)
    assert again.errors == expected.errors


def test_blocks_are_consecutive_lines(tmp_path: Path) -> None:
    path = messy_file(tmp_path / "c.csv", 500, seed=3)
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        fh.readline()
        pieces = list(blocks(fh, 2, 7))
    whole = path.read_bytes().decode("utf-8", "surrogateescape").split("\n", 1)[1]
    assert "".join("".join(str(t) for t in block) for _, block in pieces) == whole
    assert [line for line, _ in pieces] == [2 + 7 * i for i in range(len(pieces))]


def test_lines_parsed_in_bulk_read_as_each_line_alone() -> None:
    texts: list[str | csv.Error] = [
        "a,b\n",
        "\n",
        ",\r\n",
        "x" * 200_000 + ",y\n",
        "a\x00,b\n",
        "c,d\r",
        "e,f",
    ]
    alone = [_cells(t) for t in texts]  # type: ignore[arg-type]
    for bulk, one in zip(cells_of(texts), alone, strict=True):
        assert type(bulk) is type(one) and str(bulk) == str(one)
    assert [str(c) for c in cells_of(texts[:3] + texts[4:])] == [
        str(c) for c in alone[:3] + alone[4:]
    ]


def test_a_list_filled_by_another_import_meanwhile_is_upserted(pg_url: str) -> None:
    """COPY straight into an empty list meets a number another import just added: the
    block is written again as an upsert and that number counts as updated."""
    with session_scope(pg_url) as session:
        session.add(ContactList(name="l"))
        session.flush()
        list_id = session.scalars(select(ContactList.id)).one()
    now = utcnow()
    job = BlockJob(
        2,
        ["+12015550123,A\n", "+12015550124,B\n"],
        ["phone_number", "first_name"],
        "US",
        f"{list_id}\t",
        f"\t{now.isoformat()}\n",
    )
    with session_scope(pg_url) as session:
        report = ImportReport(list_id=list_id, import_id="x")
        writer = _Writer(session, report, replace_timezone=False)
        assert writer.direct
        with session_scope(pg_url) as other:
            other.add(Contact(list_id=list_id, phone="+12015550124", fields={"first_name": "O"}))
        writer.write(check_block(job), now)
    assert (report.imported, report.updated, report.rows) == (1, 1, 2)
    assert not writer.direct
    assert listed(pg_url) == {
        "+12015550123": ({"first_name": "A"}, None),
        "+12015550124": ({"first_name": "B"}, None),
    }


def test_check_block_reports_rows_by_their_line_in_the_file() -> None:
    job = BlockJob(
        40,
        ["x,A\n", "\n", "+12015550123,B\n", "+12015550123,C\n"],
        ["phone_number", "first_name"],
        "US",
        "1\t",
        "\tT\n",
    )
    result = check_block(job)
    assert result.errors == [RowError(40, "phone_number", "not a phone number: 'x'")]
    assert (result.rows, result.empty, result.duplicates) == (4, 1, 1)
    assert result.copy == '1\t+12015550123\t{"first_name": "B"}\t\\N\tT\n'

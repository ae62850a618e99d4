"""Contact imports: a CSV file (or rows synced from ClickSend) into a contact list.

The file is streamed and written in chunks of a few thousand rows with one
``INSERT ... ON CONFLICT (list_id, phone) DO UPDATE`` each (an executemany on SQLite; on
PostgreSQL the rows are COPYed into a staging table first), committed per chunk, so a
million-row file never sits in memory and never holds one long write transaction.
A file comes in through ``campaigns.contacts_csv.import_csv``; on PostgreSQL it is
checked on every core and COPYed in blocks (``campaigns.contacts_blocks``), with these
rules.

Rules (the public contract, see docs/definitions.md):

- Columns use ClickSend's contact field names; ``phone_number`` is required. Header
  names are matched without regard to case, spaces or hyphens ("Phone Number").
  Other columns are kept as extra fields for templates; an optional ``timezone`` column
  (IANA name) overrides the zone derived from the number.
- A bad row is reported (``RowError``, also stored in ``import_errors``) and the rest of
  the file goes on. Empty rows are skipped and counted in ``ImportReport.empty``.
- One line is one row: a quoted field that does not close on its line is a row error.
- Numbers are compared in E.164 form: a number seen earlier in the same file is a
  duplicate (the first wins); a number already in the list is updated (its fields
  are replaced).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import column, select
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.bulk import copy_to_stage
from campaigns.clock import utcnow
from campaigns.models import Contact, ContactList, ImportError_, table
from campaigns.phones import InvalidPhone, check_region, check_timezone, normalise

PHONE = "phone_number"
TIMEZONE = "timezone"
CHUNK_SIZE = 5000
# A line is read in pieces of at most this many characters, so a file without line breaks
# is not read into memory whole; such a line is one row error.
MAX_LINE_CHARS = 1 << 20
ANY_FIELD = "*"  # RowError.field for a problem with the row as a whole


class CsvFormatError(ValueError):
    """The file as a whole cannot be imported (no header, no phone_number column...)."""


@dataclass
class RowError:
    """One rejected row: ``row`` is the 1-based line in the file (the header is row 1)."""

    row: int
    field: str
    message: str


@dataclass
class ImportReport:
    """What an import did. rows = imported + updated + duplicates + rejected + empty.
    ``removed``: contacts a sync of a ClickSend list dropped (deleted there)."""

    list_id: int
    import_id: str
    rows: int = 0
    imported: int = 0
    updated: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    empty: int = 0
    removed: int = 0


_NOT_FIELDS = frozenset((PHONE, TIMEZONE))  # stored in columns of their own

# (E.164 number, zone, "", "") for a good row, (None, None, field, problem) for a bad one.
Checked = tuple[str | None, str | None, str, str]


def check_contact(region: str, phone: str, zone: str) -> Checked:
    """Validate a row's number and optional zone (``campaigns.phones.normalise``: about
    1 us for a number in E.164, ~50 us for one phonenumbers has to parse)."""
    try:
        e164 = normalise(phone, region)
    except InvalidPhone as exc:
        return None, None, PHONE, str(exc)
    zone = zone.strip()
    if zone:
        try:
            check_timezone(zone)
        except ValueError as exc:
            return None, None, TIMEZONE, str(exc)
    return e164, zone or None, "", ""


class Upserter:
    """Validates contact rows and writes them to one list, a chunk at a time."""

    def __init__(
        self,
        session: Session,
        report: ImportReport,
        *,
        region: str,
        chunk_size: int,
        progress: Callable[[int], None] | None,
        replace_timezone: bool,
    ) -> None:
        self.session, self.report, self.region = session, report, region
        self.chunk_size, self.progress = chunk_size, progress
        self.seen: set[str] = set()
        self.pending: list[dict[str, Any]] = []
        self.pending_errors: list[RowError] = []
        self.flushed_rows = 0
        # PostgreSQL: COPY into a staging table, then one INSERT ... SELECT (COPY streams;
        # an executemany costs several times more per row there).
        dialect = session.get_bind().dialect
        self.copy_rows = (dialect.name, dialect.driver) == ("postgresql", "psycopg")
        self.replace_timezone = replace_timezone
        self.statement = _upsert_statement(session, replace_timezone)
        # A list that starts empty needs no look-up to tell updates from inserts.
        self.list_was_empty = self._count_existing(None) == 0

    def add(self, row: int, values: Mapping[str, str]) -> None:
        """Validate one non-empty row of text fields and queue it; flushes a full chunk."""
        self.report.rows += 1
        contact = self._contact(row, values)
        if contact is not None:
            self.pending.append(contact)
        self._maybe_flush()

    def skip_empty(self) -> None:
        self.report.rows += 1
        self.report.empty += 1
        self._maybe_flush()

    def reject_row(self, row: int, field_name: str, message: str) -> None:
        """Count a row that failed before it could be read as fields."""
        self.report.rows += 1
        self._reject(row, field_name, message)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self.report.rows - self.flushed_rows >= self.chunk_size:
            self.flush()

    def _reject(self, row: int, field_name: str, message: str) -> None:
        self.pending_errors.append(RowError(row, field_name, message))

    def _contact(self, row: int, values: Mapping[str, str]) -> dict[str, Any] | None:
        checked = check_contact(self.region, values.get(PHONE, ""), values.get(TIMEZONE, ""))
        phone, zone, field_name, problem = checked
        if phone is None:
            self._reject(row, field_name, problem)
            return None
        if phone in self.seen:
            self.report.duplicates += 1
            return None
        self.seen.add(phone)
        stripped = ((k, v.strip()) for k, v in values.items() if k not in _NOT_FIELDS)
        fields = {k: v for k, v in stripped if v}
        return {"phone": phone, "fields": fields, "timezone": zone}

    def flush(self) -> None:
        """Write the queued contacts and errors and commit."""
        report, now = self.report, utcnow()
        if self.pending:
            phones = [c["phone"] for c in self.pending]
            updated = 0 if self.list_was_empty else self._count_existing(phones)
            rows = [{**c, "list_id": report.list_id, "updated_at": now} for c in self.pending]
            if self.copy_rows:
                stage = copy_to_stage(self.session, table(Contact), _UPSERT_COLUMNS, rows)
                staged = _upsert_statement(self.session, self.replace_timezone, stage_name=stage)
                self.session.execute(staged)
            else:
                self.session.execute(self.statement, rows)
            report.updated += updated
            report.imported += len(rows) - updated
        if self.pending_errors:
            write_errors(self.session, report, self.pending_errors, now)
        self.session.commit()
        self.pending, self.pending_errors = [], []
        self.flushed_rows = report.rows
        if self.progress is not None:
            self.progress(report.rows)

    def _count_existing(self, phones: list[str] | None) -> int:
        query = select(Contact.phone).where(Contact.list_id == self.report.list_id)
        if phones is None:
            return len(self.session.scalars(query.limit(1)).all())
        return len(self.session.scalars(query.where(Contact.phone.in_(phones))).all())


def write_errors(
    session: Session, report: ImportReport, errors: list[RowError], now: datetime
) -> None:
    """Store rejected rows in ``import_errors`` and add them to the report."""
    insert_errors(session, report, errors, now)
    report.errors.extend(errors)


def insert_errors(
    session: Session, report: ImportReport, errors: list[RowError], now: datetime
) -> None:
    """Store rejected rows of ``report``'s import in ``import_errors``."""
    session.execute(
        table(ImportError_).insert(),
        [
            {
                "list_id": report.list_id,
                "import_id": report.import_id,
                "row": e.row,
                "field": e.field,
                "message": e.message,
                "created_at": now,
            }
            for e in errors
        ],
    )


_UPSERT_COLUMNS = ("list_id", "phone", "fields", "timezone", "updated_at")


def _upsert_statement(
    session: Session, replace_timezone: bool, *, stage_name: str | None = None
) -> Any:
    """INSERT ... ON CONFLICT (list_id, phone) DO UPDATE, of bound rows or of the rows of
    the PostgreSQL staging table ``stage_name``."""
    stmt = _dialect(session).insert(table(Contact))
    if stage_name is not None:
        stage = sql_table(stage_name, *(column(name) for name in _UPSERT_COLUMNS))
        stmt = stmt.from_select(list(_UPSERT_COLUMNS), select(*stage.c))
    replace = {"fields": stmt.excluded.fields, "updated_at": stmt.excluded.updated_at}
    if replace_timezone:
        replace["timezone"] = stmt.excluded.timezone
    return stmt.on_conflict_do_update(index_elements=["list_id", "phone"], set_=replace)


def upsert_contacts(
    session: Session,
    list_id: int,
    rows: Iterable[tuple[int, Mapping[str, str]]],
    *,
    default_region: str,
    import_id: str,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
    replace_timezone: bool = False,
) -> ImportReport:
    """Validate ``(row number, fields)`` pairs and upsert them into list ``list_id``.

    ``fields`` use ClickSend's contact names (``phone_number`` required). Commits after
    each chunk. A contact's stored time zone is replaced only with ``replace_timezone``
    (a CSV with a timezone column), so a sync does not wipe local overrides.
    """
    report = ImportReport(list_id=list_id, import_id=import_id)
    upserter = Upserter(
        session,
        report,
        region=check_region(default_region),
        chunk_size=chunk_size,
        progress=progress,
        replace_timezone=replace_timezone,
    )
    for row, values in rows:
        text = {k: "" if v is None else str(v) for k, v in values.items()}
        if any(v.strip() for v in text.values()):
            upserter.add(row, text)
        else:
            upserter.skip_empty()
    upserter.flush()
    return report


# -- CSV --------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-]+")


def column_name(raw: str) -> str:
    """A header cell as a field name: "Phone Number" -> "phone_number"."""
    return _SEPARATORS.sub("_", raw.strip().lower())


def _bad_byte(text: str) -> str | None:
    """With errors="surrogateescape" an undecodable byte 0xNN is read as U+DCNN."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"0x{ord(text[exc.start]) - 0xDC00:02x}"
    return None


def read_header(cells: list[str] | csv.Error | None, path: Path) -> list[str]:
    if isinstance(cells, csv.Error):
        raise CsvFormatError(f"{path}: header: malformed CSV: {cells}")
    if not cells:
        raise CsvFormatError(f"{path}: empty file; the first line must be a header with {PHONE}")
    if (byte := _bad_byte("".join(cells))) is not None:
        raise CsvFormatError(f"{path}: header: not valid UTF-8 (byte {byte})")
    names = [column_name(c) for c in cells]
    for i, name in enumerate(names, start=1):
        if not name:
            raise CsvFormatError(f"{path}: header column {i} has no name")
        if names.index(name) != i - 1:
            raise CsvFormatError(f"{path}: header: column {name!r} appears twice")
    if PHONE not in names:
        found = ", ".join(names)
        raise CsvFormatError(f"{path}: header: no {PHONE} column (found: {found})")
    return names


def csv_records(fh: TextIO) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(line, cells) pairs, one per line; a malformed line yields its csv.Error.

    Each line is parsed on its own: a quoted field may not span lines. With a stray quote
    the csv module would read on to the next quote, swallowing the following rows into one
    field (and a template would text their numbers to a stranger); here that line is the
    error and the next line is a row of its own again.
    """
    for line, text in enumerate(lines(fh), start=1):
        yield line, text if isinstance(text, csv.Error) else _cells(text)


def lines(fh: TextIO) -> Iterator[str | csv.Error]:
    """The file's lines; an overlong one is read in pieces, dropped and given as an error."""
    while True:
        text = fh.readline(MAX_LINE_CHARS + 1)
        if not text:
            return
        if len(text) > MAX_LINE_CHARS and not text.endswith(("\n", "\r")):
            while (rest := fh.readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
                pass  # the rest of an overlong line, read in pieces and dropped
            yield csv.Error(f"line longer than {MAX_LINE_CHARS} characters")
            continue
        yield text


def cells_of(texts: list[str | csv.Error]) -> list[list[str] | csv.Error]:
    """``_cells`` of each line, in bulk: lines without a quote character are parsed by one
    csv reader (each such line is one record, as parsed alone), the others one by one."""
    if any(not isinstance(t, str) or '"' in t for t in texts):
        return [t if isinstance(t, csv.Error) else _cells(t) for t in texts]
    try:
        return [row or [] for row in csv.reader(texts)]  # type: ignore[arg-type]
    except csv.Error:  # e.g. a field over the size limit: the line-by-line path names it
        return [_cells(t) for t in texts]  # type: ignore[arg-type]


def _cells(text: str) -> list[str] | csv.Error:
    try:
        rows = list(csv.reader([text]))
    except csv.Error as exc:
        return exc
    if not rows:
        return []
    cells = rows[0]
    # Parsed alone, a line whose quote never closes ends inside the field (with the line
    # break when it has one); strict parsing says so where a last line has none.
    if cells and (cells[-1].endswith(("\n", "\r")) or _unclosed(text)):
        return csv.Error('a quoted field does not end on its line (a stray ")')
    return cells


def _unclosed(text: str) -> bool:
    try:
        list(csv.reader([text], strict=True))
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


# (kind, line, payload): ("row", line, fields), ("empty", line, None) or
# ("reject", line, (field, problem)).
_Item = tuple[str, int, Any]


EMPTY = "empty"


def record_problem(header: list[str], cells: list[str] | csv.Error) -> Any:
    """None for a row to check, EMPTY for an empty row, or (field, problem) for a record
    that cannot be a row (broken CSV, wrong width, bad text)."""
    if isinstance(cells, csv.Error):
        return ANY_FIELD, f"malformed CSV: {cells}"
    joined = "".join(cells)
    if not joined.strip():
        return EMPTY
    if len(cells) != len(header):
        return ANY_FIELD, f"expected {len(header)} columns, found {len(cells)}"
    if (problem := _text_problem(joined)) is not None:
        bad = next(n for n, c in zip(header, cells, strict=True) if _text_problem(c))
        return bad, problem
    return None


def classify_rows(header: list[str], records: Iterator[Any]) -> Iterator[_Item]:
    """Sort CSV records into rows to check, empty rows and rows broken as CSV."""
    for line, cells in records:
        problem = record_problem(header, cells)
        if problem is None:
            yield "row", line, dict(zip(header, cells, strict=True))
        elif problem == EMPTY:
            yield "empty", line, None
        else:
            yield "reject", line, problem


def apply_items(upserter: Upserter, items: Iterable[_Item]) -> None:
    for kind, line, payload in items:
        if kind == "row":
            upserter.add(line, payload)
        elif kind == "empty":
            upserter.skip_empty()
        else:
            upserter.reject_row(line, *payload)


def _text_problem(text: str) -> str | None:
    if not text.isascii() and (byte := _bad_byte(text)) is not None:
        return f"not valid UTF-8 (byte {byte})"
    if "\x00" in text:  # PostgreSQL text cannot hold it, and no message should
        return "contains a NUL character"
    return None


def _dialect(session: Session) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def list_id_for(session: Session, name: str) -> int:
    """The id of the list called ``name``, created (as a local list) when missing."""
    # ON CONFLICT DO NOTHING: two imports creating the same list at once both succeed.
    stmt = _dialect(session).insert(table(ContactList)).on_conflict_do_nothing()
    session.execute(stmt, [{"name": name, "source": "local", "created_at": utcnow()}])
    return session.scalars(select(ContactList.id).where(ContactList.name == name)).one()

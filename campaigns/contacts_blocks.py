"""CSV imports into PostgreSQL at the database's pace: blocks of records checked on every
core, written with COPY.

The file is cut into blocks of lines (one line is one row). Worker processes check a
block's rows with the same rules as ``campaigns.contacts_import`` (``cells_of``,
``record_problem``, ``check_contact``) and hand back the block already written as COPY
text. The importing process takes those blocks in file order and drops numbers an
earlier block already had (the first row of a number wins), so what ends up in the list
and in the report is what the one-process import gives, row numbers included; two threads
with a connection each then COPY the blocks, so that PostgreSQL's share of the work (the
indexes and the list's foreign key, most of an import's CPU time) runs on two cores.

A list that was empty when the import began gets the rows COPYed straight into
``contacts``; otherwise (or if another import fills the list meanwhile, which COPY
notices as a unique violation) each block goes through a staging table and
``INSERT ... ON CONFLICT DO UPDATE``. Each block is committed on its own.
"""

from __future__ import annotations

import csv
import gc
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from multiprocessing import get_context
from typing import TextIO

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from campaigns.bulk import copy_text, copy_text_to_stage
from campaigns.contacts_import import (
    _NOT_FIELDS,
    _UPSERT_COLUMNS,
    EMPTY,
    PHONE,
    TIMEZONE,
    ImportReport,
    RowError,
    _upsert_statement,
    cells_of,
    check_contact,
    insert_errors,
    lines,
    record_problem,
)
from campaigns.models import Contact, table
from campaigns.phones import short_e164

BLOCK_LINES = 20_000
# Blocks in flight per worker process: enough to keep every core busy, few enough that
# memory stays flat however long the file is.
AHEAD_PER_PROCESS = 2


@dataclass
class BlockJob:
    first_line: int  # the file's line number of the block's first line
    lines: list[str | csv.Error]  # csv.Error: a line too long to read
    header: list[str]
    region: str
    copy_head: str  # "<list_id>\t": the columns before phone
    copy_tail: str  # "\t<updated_at>\n": the columns after timezone


@dataclass
class BlockResult:
    rows: int = 0
    empty: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    # The block's accepted numbers (E.164 without the plus, as integers: a third of the
    # memory of strings in the importer's set of numbers seen) and their COPY lines.
    numbers: list[int] = field(default_factory=list)
    copy: str = ""


def check_block(job: BlockJob) -> BlockResult:
    """Check one block of records; runs in a worker process. The per-row work here is
    what an import costs, so rows stay lists of cells (no dict per row) and the fields'
    JSON is written directly."""
    result = BlockResult()
    errors, numbers, seen = result.errors, result.numbers, set[int]()
    lines: list[str] = []
    header, region, head, tail = job.header, job.region, job.copy_head, job.copy_tail
    phone_at = header.index(PHONE)
    zone_at = header.index(TIMEZONE) if TIMEZONE in header else None
    keys = [
        (i, json.dumps(name) + ": ") for i, name in enumerate(header) if name not in _NOT_FIELDS
    ]
    field_at = [i for i, _ in keys]
    # The fields' JSON when every field has a value of plain text (most rows): one
    # formatting of the whole object instead of one string per field.
    every_field = "{" + ", ".join(k.replace("%", "%%") + '"%s"' for _, k in keys) + "}"
    # Facts of the whole block that spare each row checks of its own: without a byte
    # outside ASCII or a NUL no row has a text problem, and with only printable text
    # besides the line breaks (no quote, no backslash) every field's JSON is the field
    # in quotes. A row whose number is in E.164 then needs no other check.
    text = "".join(t for t in job.lines if isinstance(t, str))
    clean = zone_at is None and text.isascii() and "\x00" not in text
    plain = clean and _plain(text.replace("\n", "").replace("\r", ""))
    width = len(header)
    for line, cells in enumerate(cells_of(job.lines), start=job.first_line):
        result.rows += 1
        phone: str | None = None
        zone: str | None = None
        if clean and isinstance(cells, list) and len(cells) == width:
            phone = short_e164(cells[phone_at])
        if phone is None:
            problem = record_problem(header, cells)
            if problem is not None:
                if problem == EMPTY:
                    result.empty += 1
                else:
                    errors.append(RowError(line, *problem))
                continue
            assert isinstance(cells, list)
            zone_text = "" if zone_at is None else cells[zone_at]
            phone, zone, field_name, why = check_contact(region, cells[phone_at], zone_text)
            if phone is None:
                errors.append(RowError(line, field_name, why))
                continue
        assert isinstance(cells, list)
        number = int(phone[1:])
        if number in seen:
            result.duplicates += 1
            continue
        seen.add(number)
        numbers.append(number)
        values = [cells[i].strip() for i in field_at]
        if all(values) and (plain or _plain("".join(values))):
            fields = every_field % tuple(values)
        else:
            pairs = zip(keys, values, strict=True)
            fields = "{" + ", ".join(key + _json_string(v) for (_, key), v in pairs if v) + "}"
        if "\\" in fields:  # COPY text format: a backslash is written twice
            fields = fields.replace("\\", "\\\\")
        lines.append(f"{head}{phone}\t{fields}\t{zone or NULL}{tail}")
    result.copy = "".join(lines)
    return result


NULL = "\\N"  # COPY text format's NULL


def _json_string(value: str) -> str:
    """json.dumps(value), without its cost for the plain text most fields are (json.dumps
    escapes exactly '"', backslash and everything outside ASCII's printable range)."""
    return f'"{value}"' if _plain(value) else json.dumps(value)


def _plain(value: str) -> bool:
    """True when json.dumps would write ``value`` as it is, between quotes."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


def blocks(fh: TextIO, first_line: int, size: int) -> Iterator[tuple[int, list[str | csv.Error]]]:
    """(first line number, lines) of consecutive blocks of ``size`` lines."""
    source = lines(fh)
    line = first_line
    while block := list(islice(source, size)):
        yield line, block
        line += len(block)


@dataclass
class _Rows:
    """A block's rows to store, once the numbers of earlier blocks are dropped."""

    numbers: list[int]
    copy: str
    errors: list[RowError]


class _Writer:
    """Writes block results to one list: ``accept`` takes them in file order (counts, and
    numbers an earlier block had), ``store`` writes one block in a transaction of its own,
    on any session; blocks share no number, so they may be stored side by side."""

    def __init__(self, session: Session, report: ImportReport, replace_timezone: bool) -> None:
        self.session, self.report = session, report
        self.seen: set[int] = set()
        self.replace_timezone = replace_timezone
        self.direct = not self._existing_count(session, None)

    def write(self, result: BlockResult, now: datetime) -> None:
        """``accept`` and ``store`` on the writer's own session."""
        self.add(self.store(self.session, self.accept(result), now))

    def accept(self, result: BlockResult) -> _Rows:
        report = self.report
        report.rows += result.rows
        report.empty += result.empty
        report.duplicates += result.duplicates
        numbers, copy = result.numbers, result.copy
        repeated = self.seen.intersection(numbers)
        if repeated:  # rows whose number an earlier block had: the first row wins
            keep = [n not in repeated for n in numbers]
            numbers = [n for n, k in zip(numbers, keep, strict=True) if k]
            lines = copy.splitlines(keepends=True)
            copy = "".join(line for line, k in zip(lines, keep, strict=True) if k)
            report.duplicates += len(repeated)
        self.seen.update(numbers)
        report.errors.extend(result.errors)
        return _Rows(numbers, copy, result.errors)

    def add(self, counts: tuple[int, int]) -> None:
        """Count a stored block's (imported, updated) rows."""
        self.report.imported += counts[0]
        self.report.updated += counts[1]

    def store(self, session: Session, rows: _Rows, now: datetime) -> tuple[int, int]:
        """Write one block's rows and errors and commit; returns (imported, updated)."""
        counts = (0, 0)
        if rows.numbers:
            counts = self._write_rows(session, rows.numbers, rows.copy)
        if rows.errors:
            insert_errors(session, self.report, rows.errors, now)
        session.commit()
        return counts

    def _write_rows(self, session: Session, numbers: list[int], copy: str) -> tuple[int, int]:
        if self.direct:
            try:
                copy_text(session, "contacts", _UPSERT_COLUMNS, copy)
                return len(numbers), 0
            except psycopg.errors.UniqueViolation:
                # Another import is filling this list too: upsert from here on.
                session.rollback()
                self.direct = False
        updated = self._existing_count(session, numbers)
        stage = copy_text_to_stage(session, table(Contact), _UPSERT_COLUMNS, copy)
        session.execute(_upsert_statement(session, self.replace_timezone, stage_name=stage))
        return len(numbers) - updated, updated

    def _existing_count(self, session: Session, numbers: list[int] | None) -> int:
        if numbers is None:
            query = "SELECT count(*) FROM (SELECT 1 FROM contacts WHERE list_id = :l LIMIT 1) s"
            return int(session.execute(text(query), {"l": self.report.list_id}).scalar_one())
        phones = [f"+{n}" for n in numbers]
        query = "SELECT count(*) FROM contacts WHERE list_id = :l AND phone = ANY(:p)"
        found = session.execute(text(query), {"l": self.report.list_id, "p": phones})
        return int(found.scalar_one())


def default_processes() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def import_blocks(
    session: Session,
    report: ImportReport,
    fh: TextIO,
    *,
    first_line: int,
    header: list[str],
    region: str,
    processes: int,
    block_lines: int = BLOCK_LINES,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Import the rest of ``fh`` (after its header) into ``report.list_id``.

    ``processes`` worker processes check the rows (0: in this process).
    """
    from campaigns.clock import utcnow

    now = utcnow()
    writer = _Writer(session, report, replace_timezone=TIMEZONE in header)
    session.commit()
    head, tail = f"{report.list_id}\t", f"\t{now.isoformat()}\n"
    jobs = (
        BlockJob(line, chunk, header, region, head, tail)
        for line, chunk in blocks(fh, first_line, block_lines)
    )
    results = _checked(jobs, processes)
    if processes <= 0:
        for result in results:
            writer.write(result, now)
            if progress is not None:
                progress(report.rows)
    else:
        _store_side_by_side(writer, results, now, progress)
    # Fresh statistics after a bulk load, as after an expansion: a campaign over this list
    # is planned with them.
    session.execute(text("ANALYZE contacts"))
    session.commit()


# Blocks stored at once, each by a thread with a connection of its own: PostgreSQL's
# work for a row (the unique index, the primary key, the list's foreign-key check) is
# most of an import's CPU time, and one connection would do it on one core only.
WRITERS = 2


def _store_side_by_side(
    writer: _Writer,
    results: Iterator[BlockResult],
    now: datetime,
    progress: Callable[[int], None] | None,
) -> None:
    engine = writer.session.get_bind()
    local = threading.local()
    sessions: list[Session] = []

    def store(rows: _Rows) -> tuple[int, int]:
        if not hasattr(local, "session"):
            local.session = Session(bind=engine)
            sessions.append(local.session)
        return writer.store(local.session, rows, now)

    # (rows counted when the block was read, its store) in file order
    stores: deque[tuple[int, Future[tuple[int, int]]]] = deque()
    try:
        with ThreadPoolExecutor(max_workers=WRITERS) as threads:
            for result in results:
                rows = writer.accept(result)
                stores.append((writer.report.rows, threads.submit(store, rows)))
                while stores and (len(stores) > WRITERS or stores[0][1].done()):
                    done_rows, future = stores.popleft()
                    writer.add(future.result())
                    if progress is not None:
                        progress(done_rows)
            while stores:
                done_rows, future = stores.popleft()
                writer.add(future.result())
                if progress is not None:
                    progress(done_rows)
    finally:
        for stored in sessions:
            stored.close()


def _checked(jobs: Iterator[BlockJob], processes: int) -> Iterator[BlockResult]:
    """Results of ``check_block`` in job order, computed by ``processes`` workers with a
    bounded number of blocks in flight."""
    if processes <= 0:
        yield from map(check_block, jobs)
        return
    # fork: a worker needs nothing but this module's functions, which a forked process
    # has without importing anything (the connections and threads it inherits stay
    # unused, and it ends with os._exit, so it never closes them).
    # gc.disable: a block's rows make no reference cycles (reference counting frees them),
    # and the collector's passes over them and over the heap the fork copied cost a
    # worker about a fifth of its time.
    pool: Executor = ProcessPoolExecutor(
        max_workers=processes, mp_context=get_context("fork"), initializer=gc.disable
    )
    with pool:
        pending: deque[Future[BlockResult]] = deque()
        for job in jobs:
            pending.append(pool.submit(check_block, job))
            if len(pending) >= processes * AHEAD_PER_PROCESS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

"""Import a CSV file into a contact list: the one entry point of both ways.

On PostgreSQL (psycopg) the rows are checked in blocks on every core and COPYed
(``campaigns.contacts_blocks``); elsewhere they go row by row in chunks
(``campaigns.contacts_import``, which holds the rules both follow).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from campaigns.contacts_import import (
    CHUNK_SIZE,
    TIMEZONE,
    ImportReport,
    Upserter,
    apply_items,
    classify_rows,
    csv_records,
    list_id_for,
    read_header,
)
from campaigns.db import session_scope
from campaigns.phones import check_region

# Files at least this large are checked by worker processes (PostgreSQL imports): below
# it, starting them costs more than they save.
PARALLEL_FROM_BYTES = 4 << 20


def import_csv(
    db_url: str,
    path: Path,
    list_name: str,
    *,
    default_region: str,
    progress: Callable[[int], None] | None = None,
    chunk_size: int | None = None,
    processes: int | None = None,
) -> ImportReport:
    """Import a CSV file into the list ``list_name`` (created if missing).

    Numbers without a country code are read as numbers of ``default_region``.
    ``progress`` gets the count of data rows processed so far after each chunk.
    Raises CsvFormatError when the file has no usable header.

    On PostgreSQL the rows are checked in blocks by ``processes`` worker processes (by
    default one per core for a large file, none for a small one) and COPYed
    (``campaigns.contacts_blocks``); ``chunk_size`` is then the block's size in lines
    (by default ``BLOCK_LINES``; ``CHUNK_SIZE`` rows otherwise).
    """
    region = check_region(default_region)
    if not list_name.strip() or len(list_name) > 200:
        raise ValueError(f"list: a list name of 1 to 200 characters is needed, got {list_name!r}")
    path = Path(path)
    # surrogateescape: a bad byte becomes one row's error instead of ending the import.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        records = csv_records(fh)
        first = next(records, None)
        header = read_header(first[1] if first else None, path)
        with session_scope(db_url) as session:
            report = ImportReport(
                list_id=list_id_for(session, list_name), import_id=uuid.uuid4().hex
            )
            session.commit()
            dialect = session.get_bind().dialect
            if (dialect.name, dialect.driver) == ("postgresql", "psycopg"):
                from campaigns.contacts_blocks import BLOCK_LINES, default_processes, import_blocks

                if processes is None:
                    large = path.stat().st_size >= PARALLEL_FROM_BYTES
                    processes = default_processes() if large else 0
                import_blocks(
                    session,
                    report,
                    fh,
                    first_line=2,  # the header is line 1
                    header=header,
                    region=region,
                    processes=processes,
                    block_lines=chunk_size or BLOCK_LINES,
                    progress=progress,
                )
                return report
            upserter = Upserter(
                session,
                report,
                region=region,
                chunk_size=chunk_size or CHUNK_SIZE,
                progress=progress,
                replace_timezone=TIMEZONE in header,
            )
            apply_items(upserter, classify_rows(header, records))
            upserter.flush()
    return report

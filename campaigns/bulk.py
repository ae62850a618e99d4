"""Dialect-aware bulk inserts that skip rows hitting a unique constraint.

SQLite: INSERT ... ON CONFLICT DO NOTHING as an executemany (fast there). PostgreSQL:
COPY into a temporary staging table, then one INSERT ... SELECT ... ON CONFLICT DO
NOTHING; per-row INSERTs cost a round trip each, COPY streams. ``copy_to_stage`` is the
one COPY-staging step, also used by the contact import's upsert.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys), silently skipping unique-constraint conflicts."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _copy_insert_ignore(session, table, rows)
    else:
        session.execute(sqlite.insert(table).on_conflict_do_nothing(), list(rows))


def _with_python_defaults(table: Table, rows: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """COPY bypasses SQLAlchemy, so column defaults declared in Python are filled in here."""
    missing: dict[str, Any] = {}
    for column in table.c:
        default = column.default
        if column.name in rows[0] or column.primary_key or default is None:
            continue
        arg: Any = getattr(default, "arg", None)
        # SQLAlchemy wraps a callable default to take the execution context.
        missing[column.name] = arg(None) if callable(arg) else arg
    if not missing:
        return rows
    return [{**missing, **row} for row in rows]


def _copy_insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    rows = _with_python_defaults(table, rows)
    columns = list(rows[0])
    stage = copy_to_stage(session, table, columns, rows)
    names = ", ".join(columns)
    session.execute(
        text(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
        )
    )


def copy_to_stage(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> str:
    """PostgreSQL (psycopg): stream ``rows`` with COPY into this transaction's emptied
    staging table for ``columns`` of ``table``; returns the staging table's name, for the
    caller's one ``INSERT ... SELECT``. The stage has the columns' types and no
    constraints (the INSERT into the real table checks them)."""
    from psycopg.types.json import Jsonb

    json_columns = {c for c in columns if table.c[c].type.__class__.__name__ == "JSON"}
    with _raw_cursor(session) as cur:
        stage = _empty_stage(cur, table, columns)
        with cur.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([Jsonb(row[c]) if c in json_columns else row[c] for c in columns])
    return stage


def copy_text(session: Session, table_name: str, columns: Sequence[str], data: str) -> None:
    """PostgreSQL (psycopg): COPY ``data``, rows already in COPY's text format, into
    ``columns`` of ``table_name``. Bulk paths that write millions of rows build that
    text themselves: one string per block instead of a Python call per value."""
    sql = f"COPY {table_name} ({', '.join(columns)}) FROM STDIN"
    with _raw_cursor(session) as cur, cur.copy(sql) as copy:
        copy.write(data)


def copy_text_to_stage(session: Session, table: Table, columns: Sequence[str], data: str) -> str:
    """``copy_text`` into this transaction's emptied staging table for ``columns`` of
    ``table`` (see ``copy_to_stage``); returns the staging table's name."""
    with _raw_cursor(session) as cur:
        stage = _empty_stage(cur, table, columns)
    copy_text(session, stage, columns, data)
    return stage


def _raw_cursor(session: Session) -> Any:
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    return dbapi.cursor()


def _empty_stage(cur: Any, table: Table, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    # One stage per table and column set: a transaction may stage different columns.
    stage = f"_stage_{table.name}_{zlib.crc32(names.encode()):08x}"
    # ON COMMIT DROP: the staging table lives for this transaction only.
    cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP "
        f"AS SELECT {names} FROM {table.name} WITH NO DATA"
    )
    cur.execute(f"TRUNCATE {stage}")
    return stage

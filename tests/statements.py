"""The SQL a piece of code sends, captured to read its plans (tests and bench/status.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


def captured(db_url: str, call: Callable[[Session], object]) -> list[tuple[str, Any]]:
    """The statements ``call`` sends to the database (SQL and parameters), its work
    rolled back."""
    from campaigns.db import get_engine

    engine = get_engine(db_url)
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            call(session)
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen

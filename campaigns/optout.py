"""Opt-out keywords and the suppression list.

ClickSend does not suppress STOP replies to API traffic: the sender must. A reply whose
first word is a standard opt-out keyword (the CTIA set, case-insensitive) suppresses the
number for every future run.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from campaigns.bulk import insert_ignore
from campaigns.contacts_import import column_name
from campaigns.models import Suppression, table
from campaigns.phones import InvalidPhone, normalise

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
_FIRST_WORD = re.compile(r"[A-Za-z-]+")


def is_opt_out(body: str) -> bool:
    match = _FIRST_WORD.search(body or "")
    return bool(match) and match.group(0).replace("-", "").upper() in OPT_OUT_KEYWORDS  # type: ignore[union-attr]


def suppress(session: Session, phones: list[str], reason: str) -> None:
    """Add numbers to the suppression list (already-suppressed numbers are left as they are)."""
    insert_ignore(session, table(Suppression), [{"phone": p, "reason": reason} for p in phones])


@dataclass
class OptOutImport:
    """What an opt-out import did; ``errors`` are (row, field, problem), row 1 the header."""

    rows: int = 0
    added: int = 0
    already: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": self.added,
            "already": self.already,
            "errors": [{"row": r, "field": f, "message": m} for r, f, m in self.errors],
        }


def add_suppression(session: Session, raw_phone: str, region: str, reason: str) -> tuple[str, bool]:
    """Suppress one number; (its E.164 form, whether it was new). Raises InvalidPhone."""
    phone = normalise(raw_phone, region)
    exists_already = session.scalar(select(Suppression.id).where(Suppression.phone == phone))
    if exists_already is None:
        suppress(session, [phone], reason)
    return phone, exists_already is None


def remove_suppression(session: Session, raw_phone: str, region: str) -> str | None:
    """Lift a suppression; the E.164 number removed, or None when it was not suppressed."""
    phone = normalise(raw_phone, region)
    result = session.execute(delete(Suppression).where(Suppression.phone == phone))
    return phone if result.rowcount else None  # type: ignore[attr-defined]


def import_suppressions(
    session: Session, lines: Iterable[str], region: str, reason: str = "imported"
) -> OptOutImport:
    """Suppress the numbers of a CSV with a ``phone_number`` column (and an optional
    ``reason``). A bad row is reported by its line and skipped; the others are kept."""
    report = OptOutImport()
    reader = csv.reader(lines)
    header = [column_name(h) for h in next(reader, [])]
    if "phone_number" not in header:
        raise ValueError("phone_number: the file needs a phone_number column")
    at, why = header.index("phone_number"), header.index("reason") if "reason" in header else None
    batch: dict[str, str] = {}
    for row_number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        report.rows += 1
        raw = cells[at] if at < len(cells) else ""
        try:
            phone = normalise(raw, region)
        except InvalidPhone as exc:
            report.errors.append((row_number, "phone_number", str(exc)))
            continue
        row_reason = cells[why].strip() if why is not None and why < len(cells) else ""
        batch.setdefault(phone, row_reason or reason)
    known = set()
    phones = list(batch)
    for start in range(0, len(phones), 1000):
        chunk = phones[start : start + 1000]
        known |= set(session.scalars(select(Suppression.phone).where(Suppression.phone.in_(chunk))))
    new = [p for p in phones if p not in known]
    insert_ignore(session, table(Suppression), [{"phone": p, "reason": batch[p]} for p in new])
    report.added, report.already = len(new), report.rows - len(new) - len(report.errors)
    return report

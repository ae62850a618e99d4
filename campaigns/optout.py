"""Opt-out keywords and the suppression list.

ClickSend does not suppress STOP replies to API traffic: the sender must. A reply whose
first word is a standard opt-out keyword (the CTIA set, case-insensitive) suppresses the
number for every future run.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from campaigns.bulk import insert_ignore
from campaigns.models import Suppression, table

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
_FIRST_WORD = re.compile(r"[A-Za-z-]+")


def is_opt_out(body: str) -> bool:
    match = _FIRST_WORD.search(body or "")
    return bool(match) and match.group(0).replace("-", "").upper() in OPT_OUT_KEYWORDS  # type: ignore[union-attr]


def suppress(session: Session, phones: list[str], reason: str) -> None:
    """Add numbers to the suppression list (already-suppressed numbers are left as they are)."""
    insert_ignore(session, table(Suppression), [{"phone": p, "reason": reason} for p in phones])

"""The frequency cap: no recipient gets more than K messages in a rolling window,
counted over every campaign (``CLARION_FREQUENCY_CAP=3/24h``).

Checked for each claimed batch right before it leaves, against the messages already
sent (the partial index on (phone, sent_at) of sent rows answers it). A recipient over
the cap is deferred until the oldest of their recent messages leaves the window, or
skipped, by ``CLARION_FREQUENCY_POLICY``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import claims
from campaigns.claims import Claimed
from campaigns.clock import as_utc
from campaigns.definition import format_duration, parse_duration
from campaigns.models import Message

_CAP = re.compile(r"\s*(\d+)\s*/\s*(\S+)\s*\Z")


@dataclass(frozen=True)
class Cap:
    messages: int
    window: timedelta

    def __str__(self) -> str:
        return f"{self.messages} messages in {format_duration(self.window)}"


def parse_cap(spec: str) -> Cap | None:
    """ "3/24h" -> Cap(3, 24 h); "" -> None. ValueError names the variable."""
    if not spec.strip():
        return None
    match = _CAP.match(spec)
    try:
        if match is None:
            raise ValueError
        window = parse_duration(match.group(2))
        count = int(match.group(1))
        if count < 1 or window <= timedelta(0):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"CLARION_FREQUENCY_CAP: not a cap: {spec!r} (messages/window, e.g. 3/24h)"
        ) from None
    return Cap(count, window)


def _recent(session: Session, phones: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
    sent: dict[str, list[datetime]] = defaultdict(list)
    for start in range(0, len(phones), 500):
        for phone, at in session.execute(
            select(Message.phone, Message.sent_at).where(
                Message.phone.in_(phones[start : start + 500]),
                Message.sent_at.is_not(None),
                Message.sent_at > since,
                Message.status == "sent",
            )
        ):
            sent[phone].append(as_utc(at))  # type: ignore[arg-type]
    return sent


def hold_back(
    session: Session,
    batch: Sequence[Claimed],
    *,
    token: str,
    now: datetime,
    cap: Cap | None,
    policy: str,
) -> list[Claimed]:
    """The rows of ``batch`` that may go; the others are deferred or skipped (written
    under the claim ``token``)."""
    if cap is None or not batch:
        return list(batch)
    recent = _recent(session, [row.phone for row in batch], now - cap.window)
    keep: list[Claimed] = []
    held: list[claims.Hold] = []
    for row in batch:
        times = sorted(recent.get(row.phone, ()), reverse=True)
        if len(times) < cap.messages:
            keep.append(row)
            continue
        reason = f"frequency cap: {len(times)} messages in the last {format_duration(cap.window)}"
        # Deferred: free again once the cap-th newest message is older than the window.
        until = None if policy == "skip" else times[cap.messages - 1] + cap.window
        held.append(claims.Hold(row.id, until=until, reason=reason))
    if policy == "skip":
        claims.skip(session, token, held)
    else:
        claims.defer(session, token, held)
    return keep

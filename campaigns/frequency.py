"""The frequency cap: no recipient gets more than K messages in a rolling window,
counted over every campaign (``CLARION_FREQUENCY_CAP=3/24h``).

Checked for each claimed batch right before it leaves, against the messages already
sent (the partial index on (phone, sent_at) of sent rows answers it). A recipient over
the cap is deferred until the oldest of their recent messages leaves the window, or
skipped, by ``CLARION_FREQUENCY_POLICY``.

Messages of other claims count too, while they are claimed (perhaps on the wire) or
unknown (perhaps accepted): two runs reaching one number at once would otherwise both
see nothing sent and both send. Every claim is committed before its check, so of two
checks the later one sees the other's row. A recipient held back only because of such a
message is looked at again shortly (``RECHECK``), whatever the policy: that message may
still fail.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from campaigns import claims
from campaigns.claims import Claimed
from campaigns.clock import as_utc
from campaigns.definition import format_duration, parse_duration
from campaigns.models import Message, MessageStatus, Run

_CAP = re.compile(r"\s*(\d+)\s*/\s*(\S+)\s*\Z")
# How soon a recipient held back by another claim's unsettled message is looked at again.
RECHECK = timedelta(minutes=1)
_UNSETTLED = (MessageStatus.CLAIMED, MessageStatus.UNKNOWN)


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


def _unsettled(
    session: Session, phones: Sequence[str], since: datetime, token: str
) -> Counter[str]:
    """How many messages of other claims each number has that are not settled yet
    (claimed or unknown). Only runs not finished before ``since`` can hold one in the
    window; by (run_id, status) each is an index probe, not a scan by phone."""
    runs = select(Run.id).where(or_(Run.finished_at.is_(None), Run.finished_at > since))
    found: Counter[str] = Counter()
    for start in range(0, len(phones), 500):
        found.update(
            session.scalars(
                select(Message.phone).where(
                    Message.run_id.in_(runs),
                    Message.status.in_(_UNSETTLED),
                    Message.phone.in_(phones[start : start + 500]),
                    or_(Message.claim_token.is_(None), Message.claim_token != token),
                    # An unknown row left when its attempt did; a claimed one may be
                    # leaving now, whenever its earlier attempts were.
                    or_(
                        Message.status == MessageStatus.CLAIMED,
                        Message.attempted_at.is_(None),
                        Message.attempted_at > since,
                    ),
                )
            )
        )
    return found


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
    since = now - cap.window
    phones = [row.phone for row in batch]
    recent = _recent(session, phones, since)
    unsettled = _unsettled(session, phones, since, token)
    keep: list[Claimed] = []
    held: list[claims.Hold] = []
    rechecked: list[claims.Hold] = []
    for row in batch:
        times = sorted(recent.get(row.phone, ()), reverse=True)
        if len(times) >= cap.messages:
            reason = (
                f"frequency cap: {len(times)} messages in the last {format_duration(cap.window)}"
            )
            # Deferred: free again once the cap-th newest message is older than the window.
            until = None if policy == "skip" else times[cap.messages - 1] + cap.window
            held.append(claims.Hold(row.id, until=until, reason=reason))
        elif len(times) + unsettled[row.phone] >= cap.messages:
            reason = "frequency cap: another message to this number is not settled yet"
            rechecked.append(claims.Hold(row.id, until=now + RECHECK, reason=reason))
        else:
            keep.append(row)
    if policy == "skip":
        claims.skip(session, token, held)
    else:
        claims.defer(session, token, held)
    claims.defer(session, token, rechecked)
    return keep

"""Settle messages whose outcome is unknown by looking them up at the provider.

ClickSend has no idempotency key. Each message carries the run's key as
``custom_string``; after a timeout, a dropped connection or a 5xx we read the channel's
history over the attempt's time window (page by page, or number by number where that is
cheaper: ``_LookUp``) and match (to, custom_string).

A slow provider is not a silent one: it may accept a request well after our client gave up
on it. So an unknown row is looked up only ``reconcile_grace_seconds`` after its request
ended (``claims.mark_unknown`` and lease recovery set that in ``not_before``), and a first
"not found" is confirmed by a second look-up ``reconcile_after_seconds`` later before the
row goes back to pending. Found: sent.

The window runs from when the request left (the database's clock) to now, widened on both
sides by ``PROVIDER_CLOCK_MARGIN_SECONDS`` for a provider whose clock differs from ours.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from campaigns import claims
from campaigns.claims import Failed, Later, LookAgain, Sent, Unknown
from campaigns.clock import as_utc
from campaigns.models import Run
from clicksend.client import ClickSendClient
from clicksend.errors import ClickSendError, HeldBackError, RateLimitedError
from clicksend.models import HistoryItem
from clicksend.pagination import MAX_LIMIT
from config.settings import Settings
from workers.backoff import retry_or_give_up, retry_policy
from workers.outcomes import STATUS_WIDTH
from workers.sender import history

log = logging.getLogger(__name__)

# How far the provider's clock may be from the database's (history dates are whole seconds
# of the provider's clock). Documented in docs/message-states.md.
PROVIDER_CLOCK_MARGIN_SECONDS = 120
SETTLE_BATCH = 1000
# 429s one history walk may meet before it gives its rows back for later.
LOOKUP_RATE_LIMITED_TRIES = 20


def settle_ripe(
    session: Session,
    client: ClickSendClient | None,
    run: Run,
    channel: str,
    settings: Settings,
    *,
    now: datetime,
) -> int:
    """Look up one batch of the run's unknown rows that are due. Without a client (a
    provider with no history), they fail rather than risk a duplicate."""
    token = uuid.uuid4().hex
    # Taken for the look-up: other chains skip them until then (or until we give them back).
    until = now + timedelta(seconds=settings.lease_seconds)
    rows = claims.take_unknown(session, run.id, SETTLE_BATCH, token=token, now=now, until=until)
    if not rows:
        return 0
    session.commit()
    found: dict[str, HistoryItem] = {}
    if client is not None:
        left = [r.attempted_at for r in rows if r.attempted_at is not None]
        start = min(left) if left else now - timedelta(seconds=settings.lease_seconds)
        date_from = math.floor(_ts(start)) - PROVIDER_CLOCK_MARGIN_SECONDS
        date_to = math.ceil(_ts(now)) + PROVIDER_CLOCK_MARGIN_SECONDS
        try:
            found = _look_up(client, channel, run.key, {r.phone for r in rows}, date_from, date_to)
        except ClickSendError as exc:
            log.warning("run %s: history look-up failed, will retry: %s", run.id, exc)
            later = now + timedelta(seconds=settings.reconcile_after_seconds)
            claims.give_back_unknown(session, token, [r.id for r in rows], later)
            session.commit()
            return 0
    settled = [_settled(r, found.get(r.phone), client is not None, settings, now) for r in rows]
    claims.record_lookups(session, token, settled, now=now)
    session.commit()
    log.info(
        "run %s: looked up %d unknown messages (%d found at the provider)",
        run.id,
        len(settled),
        sum(1 for r in rows if r.phone in found),
    )
    return len(settled)


def _settled(
    row: Unknown, item: HistoryItem | None, has_history: bool, settings: Settings, now: datetime
) -> Sent | Failed | Later | LookAgain:
    if item is not None:
        return Sent(
            row.id,
            row.attempts + 1,
            item.message_id,
            item.status[:STATUS_WIDTH],
            item.message_parts,
            item.message_price,
        )
    if has_history and row.lookups == 0:
        # Not found once: the provider may still be writing it. Look again before resending.
        return LookAgain(
            row.id,
            row.attempts,
            now + timedelta(seconds=settings.reconcile_after_seconds),
            "not found at the provider yet; looking again before any resend",
        )
    if has_history:
        reason = "not accepted by the provider (confirmed by two look-ups)"
    else:
        reason = "outcome unknown and the provider keeps no history: not resent"
    policy = retry_policy(settings)
    return retry_or_give_up(policy, row.id, row.attempts, now, reason, can_retry=has_history)


def _look_up(
    client: ClickSendClient,
    channel: str,
    key: str,
    wanted: set[str],
    date_from: int,
    date_to: int,
) -> dict[str, HistoryItem]:
    """The run's messages to ``wanted`` numbers in the window's history (``_LookUp``).

    A 429 part-way (the provider's limit, shared with the sends) does not start again: the
    gate has made every worker wait, and the look-up resumes where it stopped. Restarting
    from page one let a long walk under a tight limit never finish.
    """
    look = _LookUp(client, channel, key, wanted, date_from, date_to)
    for _ in range(LOOKUP_RATE_LIMITED_TRIES):
        try:
            return look.run()
        except RateLimitedError:
            continue
    raise HeldBackError(f"history look-up: still rate limited after {look.seen} entries")


@dataclass
class _LookUp:
    """One look-up and how far it got.

    Walking the window reads 100 entries a request, and a number the provider never took
    is known missing only at the window's end: 3,000 requests in the window of a
    300,000-message run, longer than the run. SMS history can be searched by number
    (``q=to:``), about a request a number; so the walk goes on only while it has read
    fewer pages than numbers are still missing, then asks for each of those. Either way
    that costs at most about twice the cheaper of the two, without knowing the window's
    size beforehand. MMS and voice history document no search: their walk goes to the end.
    """

    client: ClickSendClient
    channel: str
    key: str
    wanted: set[str]
    date_from: int
    date_to: int
    found: dict[str, HistoryItem] = field(default_factory=dict)
    seen: int = 0  # entries the walk read
    searching: bool = False
    asked: set[str] = field(default_factory=set)  # numbers whose search is over

    def run(self) -> dict[str, HistoryItem]:
        if not self.searching:
            self._walk()
        if self.searching:
            for phone in sorted(self.wanted - self.found.keys() - self.asked):
                q = f"to:{phone}"
                for item in history(self.client, self.channel, self.date_from, self.date_to, q=q):
                    self._keep(item)
                self.asked.add(phone)
        return self.found

    def _walk(self) -> None:
        page, skip = divmod(self.seen, MAX_LIMIT)
        entries = history(self.client, self.channel, self.date_from, self.date_to, page + 1)
        for i, item in enumerate(entries):
            if i < skip:
                continue  # read before the 429
            self.seen += 1
            self._keep(item)
            if len(self.found) == len(self.wanted):
                return
            if self.channel == "sms" and self.seen % MAX_LIMIT == 0:
                missing = len(self.wanted) - len(self.found)
                if self.seen // MAX_LIMIT >= missing:
                    self.searching = True
                    return

    def _keep(self, item: HistoryItem) -> None:
        if item.custom_string == self.key and item.to in self.wanted:
            self.found[item.to] = item


def _ts(value: datetime | None) -> float:
    aware = as_utc(value)
    assert aware is not None
    return aware.timestamp()

"""The sandbox's memory: the account and its balance, accepted messages, receipts, inbound
replies, the ledger and the request statistics.

One lock guards it all, since the server's event loop and a test's thread may both touch
it; every public method takes the lock, so callers never see half a change.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.contacts import ContactBook
from sandbox.faults import FaultPicker
from sandbox.ratelimit import RateLimiter
from sandbox.records import (
    DELIVERED,
    FAILED,
    QUEUED,
    EmailAddress,
    Inbound,
    Message,
    Receipt,
    Template,
    new_message_id,
)

# Our number that replies arrive at when no message was sent to the replier.
DEFAULT_INBOUND_NUMBER = "+61481000000"


@dataclass
class Stats:
    """Request counters for GET /_sandbox/stats."""

    requests_total: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    rate_limited_429: int = 0
    injected_500: int = 0
    drops: int = 0
    holds: int = 0
    max_requests_per_second: int = 0
    messages_accepted: int = 0
    window: deque[float] = field(default_factory=deque)

    def record_request(self, endpoint: str, now: float) -> None:
        self.requests_total += 1
        self.by_endpoint[endpoint] += 1
        self.window.append(now)
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        self.max_requests_per_second = max(self.max_requests_per_second, len(self.window))

    def as_json(self) -> dict[str, Any]:
        return {
            "requests_total": self.requests_total,
            "requests_by_endpoint": dict(self.by_endpoint),
            "rate_limited": self.rate_limited_429,
            "errors_injected": self.injected_500,
            "drops_injected": self.drops,
            "holds_injected": self.holds,
            "max_requests_in_1s": self.max_requests_per_second,
            "messages_accepted": self.messages_accepted,
        }


class SandboxState:
    """Everything the sandbox knows, behind one lock."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.reset()

    # -- lifecycle -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every message, receipt, reply, list and counter; restore the balance."""
        with self.lock:
            self.clock_offset = 0.0
            self.balance: Decimal = self.config.balance
            self.messages: dict[str, Message] = {}
            self.by_recipient: dict[str, list[Message]] = {}
            self.by_custom_string: dict[str, list[Message]] = {}
            self.order: list[Message] = []  # in acceptance order, for history
            # The same per kind: a history page is a slice of it, not a scan of every message.
            self.by_kind: dict[str, list[Message]] = {}
            self.receipts: list[Receipt] = []
            self.push_queue: deque[tuple[float, int, Receipt]] = deque()
            self.inbound: list[Inbound] = []
            self.templates: dict[int, Template] = {}
            self.emails: dict[int, EmailAddress] = {}
            self.contacts = ContactBook(self.now_int)
            self.stats = Stats()
            self.faults = FaultPicker(self.config.seed)
            self.limiter = RateLimiter(self.config.rate_limit_rps, self.config.bucket_size())
            self.last_sent: dict[tuple[str, str], float] = {}
            self.verifications: dict[str, str] = {}
            self._due: list[tuple[float, int, str]] = []
            self._ids = itertools.count(1)
            self._seq = itertools.count()

    def reconfigure(self, changes: dict[str, Any]) -> list[str]:
        """Apply a run-time config change (faults, rate limit, receipts)."""
        with self.lock:
            changed = self.config.update(changes)
            if {"rate_limit_rps", "rate_limit_burst"} & set(changed):
                self.limiter = RateLimiter(self.config.rate_limit_rps, self.config.bucket_size())
            if "seed" in changed:
                self.faults.reseed(self.config.seed)
            return changed

    def now(self) -> float:
        """The sandbox's clock: wall time plus whatever /_sandbox/advance added."""
        return time.time() + self.clock_offset

    def now_int(self) -> int:
        return int(self.now())

    def next_id(self) -> int:
        """A fresh numeric id (templates, lists, contacts, addresses)."""
        return next(self._ids)

    # -- accepting messages ----------------------------------------------------------

    def charge(self, amount: Decimal) -> bool:
        """Take ``amount`` from the balance if it covers it."""
        if amount > self.balance:
            return False
        self.balance -= amount
        return True

    def accept(self, message: Message) -> None:
        """Record an accepted message and plan its sending and receipt. Caller holds the lock."""
        self.messages[message.message_id] = message
        self.by_recipient.setdefault(message.to, []).append(message)
        self.by_custom_string.setdefault(message.custom_string, []).append(message)
        self.order.append(message)
        self.by_kind.setdefault(message.kind, []).append(message)
        self.stats.messages_accepted += 1
        if message.scheduled:
            self._plan(message.send_at, message.message_id)
        else:
            message.state = "sent"
            self._plan(message.send_at + self.config.receipt_delay_seconds, message.message_id)

    def _plan(self, when: float, message_id: str) -> None:
        heapq.heappush(self._due, (when, next(self._seq), message_id))

    def is_throttled(self, to: str, body: str, now: float) -> bool:
        """Same body to the same number within the throttle window (and remember this one)."""
        window = self.config.throttle_window_seconds
        if window <= 0:
            return False
        key = (to, body)
        last = self.last_sent.get(key)
        if last is not None and now - last < window:
            return True
        self.last_sent[key] = now
        return False

    # -- time passing ----------------------------------------------------------------

    def advance(self, seconds: float) -> int:
        """Move the clock forward and process what became due; returns how many steps ran."""
        with self.lock:
            self.clock_offset += max(0.0, seconds)
        return self.process_due()

    def process_due(self) -> int:
        """Send due scheduled messages and settle due receipts."""
        steps = 0
        with self.lock:
            now = self.now()
            while self._due and self._due[0][0] <= now:
                _, _, message_id = heapq.heappop(self._due)
                message = self.messages.get(message_id)
                if message is not None:
                    steps += self._step(message, now)
        return steps

    def _step(self, message: Message, now: float) -> int:
        if message.state == "scheduled":
            message.state = "sent"
            self._plan(message.send_at + self.config.receipt_delay_seconds, message.message_id)
            return 1
        if message.state == "sent":
            failed = not message.test and self.faults.chance(self.config.receipt_failure_rate)
            message.state = "failed" if failed else "delivered"
            self._receipt(message, FAILED if failed else DELIVERED, int(now))
            return 1
        return 0

    def _receipt(self, message: Message, code: int, when: int) -> None:
        message.status_code = code
        receipt = Receipt(
            message_id=message.message_id,
            kind=message.kind,
            status_code=code,
            timestamp_send=message.send_at,
            timestamp=when,
            custom_string=message.custom_string,
        )
        self.receipts.append(receipt)
        if self.config.receipt_url:
            self.push_queue.append((0.0, 0, receipt))

    # -- cancelling ------------------------------------------------------------------

    def cancel(self, message: Message) -> bool:
        """Cancel a message still waiting for its schedule; refunds it. Caller holds the lock."""
        if message.state != "scheduled":
            return False
        message.state = "cancelled"
        if not message.test:
            self.balance += message.price
        self._receipt(message, FAILED, self.now_int())
        return True

    def cancel_all(self, kind: str, custom_string: str | None) -> int:
        """Cancel every waiting message of ``kind`` (optionally with this exact custom_string)."""
        with self.lock:
            count = 0
            for message in self.order:
                if message.kind != kind or message.state != "scheduled":
                    continue
                if custom_string is not None and message.custom_string != custom_string:
                    continue
                count += self.cancel(message)
            return count

    # -- inbound ---------------------------------------------------------------------

    def inject_inbound(self, sender: str, body: str, to: str | None = None) -> Inbound:
        """A reply from ``sender``, linked to the last message we sent that number."""
        with self.lock:
            sent = self.by_recipient.get(sender) or []
            original = sent[-1] if sent else None
            reply = Inbound(
                message_id=new_message_id(),
                sender=sender,
                to=to
                or (original.sender if original and original.sender else DEFAULT_INBOUND_NUMBER),
                body=body,
                timestamp=self.now_int(),
                original_message_id=original.message_id if original else "",
                original_body=original.body if original else "",
                custom_string=original.custom_string if original else "",
            )
            self.inbound.append(reply)
            return reply

    # -- reading ---------------------------------------------------------------------

    def history(self, kind: str) -> Iterable[Message]:
        """Messages of one kind, newest first (ClickSend's default order)."""
        return (m for m in reversed(self.order) if m.kind == kind)

    def ledger(self, custom_string: str | None = None) -> dict[str, Any]:
        """What was accepted, for exactly-once checks (see docs/sandbox.md)."""
        with self.lock:
            pairs: Counter[str] = Counter()
            by_recipient: Counter[str] = Counter()
            by_custom: Counter[str] = Counter()
            cancelled: list[str] = []
            delivered = 0
            chosen = (
                self.order
                if custom_string is None
                else self.by_custom_string.get(custom_string, [])
            )
            for message in chosen:
                pairs[message.pair] += 1
                by_recipient[message.to] += 1
                by_custom[message.custom_string] += 1
                if message.state == "cancelled":
                    cancelled.append(message.pair)
                delivered += message.state == "delivered"
            return {
                "accepted_total": sum(pairs.values()),
                "by_recipient": dict(by_recipient),
                "by_custom_string": dict(by_custom),
                "pairs": dict(pairs),
                "duplicates": sorted(key for key, n in pairs.items() if n > 1),
                "cancelled_total": len(cancelled),
                "cancelled": cancelled,
                "delivered_total": delivered,
            }

    def summary(self) -> dict[str, Any]:
        """Stats plus the balance, for GET /_sandbox/stats."""
        with self.lock:
            return {**self.stats.as_json(), "balance": str(self.balance)}


__all__ = ["QUEUED", "SandboxState", "Stats"]

"""Every provider request, not only sends, counts against the account's shared limit."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from sqlalchemy import select

from campaigns.db import session_scope
from campaigns.models import Suppression
from clicksend.client import ClickSendClient
from clicksend.errors import HeldBackError, RateLimitedError
from clicksend.models import InboundMessage, Receipt
from tests.seed import seed_campaign, seed_list, status_counts
from tests.test_client_contract import CALLS, Recorder
from workers.gates import LimiterGate
from workers.inbound import poll_inbound
from workers.ratelimit import (
    LocalRateLimiter,
)
from workers.receipts import poll_receipts


class CountingGate:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.limited: list[float | None] = []

    def before_request(self, where: str) -> None:
        self.asked.append(where)

    def rate_limited(self, retry_after: float | None) -> None:
        self.limited.append(retry_after)


class Clock:
    """A clock the test moves; sleeping moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> ClickSendClient:
    return ClickSendClient(
        "https://rest.clicksend.com/v3", "user", "key", transport=httpx.MockTransport(handler)
    )


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_request_of_a_gated_client_asks_the_gate_once(name: str) -> None:
    recorder = Recorder()
    gate = CountingGate()
    with _client(recorder) as client:
        CALLS[name](client.gated(gate))
    assert recorder.requests, "the call made no request"
    assert len(gate.asked) == len(recorder.requests)
    assert all(where.split()[0] in {"GET", "POST", "PUT", "DELETE"} for where in gate.asked)


def test_the_ungated_client_is_left_as_it_was() -> None:
    recorder = Recorder()
    gate = CountingGate()
    with _client(recorder) as client:
        client.gated(gate)
        client.account()
    assert len(recorder.requests) == 1 and gate.asked == []


def test_a_429_on_a_poll_blocks_the_whole_account() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(requests_per_second=10, messages_per_second=0, clock=clock)

    def throttled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"response_code": "TOO_MANY"}, headers={"Retry-After": "3"})

    with _client(throttled) as client, pytest.raises(RateLimitedError):
        client.gated(LimiterGate(limiter, sleep=clock.sleep)).account()
    stats = limiter.stats()
    assert stats["rate_limited"] == 1 and stats["blocked_for"] == pytest.approx(3.0)
    assert limiter.acquire(1000) == pytest.approx(3.0)  # a send is held off too


def test_a_gated_request_waits_its_turn() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(
        requests_per_second=1, messages_per_second=0, burst_requests=1, clock=clock
    )
    recorder = Recorder()
    with _client(recorder) as client:
        gated = client.gated(LimiterGate(limiter, sleep=clock.sleep))
        gated.account()
        gated.account()
    assert len(recorder.requests) == 2
    assert clock.slept == [pytest.approx(1.0)]


def test_no_turn_within_max_wait_holds_the_request_back_unsent() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(
        requests_per_second=0.1, messages_per_second=0, burst_requests=1, clock=clock
    )
    assert limiter.acquire(1000) == 0.0  # a send took the only token: next one in 10 s
    recorder = Recorder()
    with _client(recorder) as client, pytest.raises(HeldBackError, match="within 5 s"):
        client.gated(LimiterGate(limiter, max_wait=5, sleep=clock.sleep)).account()
    assert recorder.requests == [] and clock.slept == []


def test_a_limiter_that_cannot_answer_holds_the_request_back() -> None:
    class Down:
        def acquire(self, messages: int) -> float:
            raise redis.ConnectionError("connection refused")

        def acquire_spare(self) -> float:
            raise redis.ConnectionError("connection refused")

    recorder = Recorder()
    for spare in (False, True):
        gate = LimiterGate(Down(), spare=spare)  # type: ignore[arg-type]
        with _client(recorder) as client, pytest.raises(HeldBackError, match="unavailable"):
            client.gated(gate).sms_inbound().__next__()
    assert recorder.requests == []


# --- spare capacity -------------------------------------------------------------------


def test_a_spare_gate_holds_back_at_once_while_senders_wait() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(
        requests_per_second=2, messages_per_second=0, burst_requests=1, clock=clock
    )
    limiter.acquire(1000)
    limiter.acquire(1000)  # refused: a sender waits
    recorder = Recorder()
    with _client(recorder) as client, pytest.raises(HeldBackError, match="busy sending"):
        client.gated(LimiterGate(limiter, spare=True, sleep=clock.sleep)).account()
    assert recorder.requests == [] and clock.slept == []


# --- polls that are held back part-way lose nothing -------------------------------------


def _receipt(message_id: str, stamp: int) -> Receipt:
    return Receipt(
        message_id=message_id,
        status_code=201,
        status_text="Delivered",
        timestamp=stamp,
        timestamp_send=stamp,
        custom_string=None,
        error_code=None,
        error_text=None,
        message_type="sms",
        raw={},
    )


class PagedReceipts:
    """Unread receipts served in pages of ``page``; ``gate_pages`` pages may be fetched,
    then the gate holds the next page back. Marking read drops the ones before a time."""

    def __init__(self, receipts: list[Receipt], page: int) -> None:
        self.unread, self.page = list(receipts), page
        self.gate_pages: int | None = None
        self.marked: list[int | None] = []

    def sms_receipts(self) -> Iterator[Receipt]:
        for pages, start in enumerate(range(0, len(self.unread), self.page)):
            if self.gate_pages is not None and pages >= self.gate_pages:
                raise HeldBackError("GET /sms/receipts: held back, the account is busy sending")
            yield from self.unread[start : start + self.page]

    def mark_sms_receipts_read(self, date_before: int | None = None) -> None:
        self.marked.append(date_before)
        self.unread = [
            r for r in self.unread if date_before is not None and (r.timestamp or 0) >= date_before
        ]


def test_a_receipt_poll_held_back_between_pages_keeps_its_unfinished_second_unread(
    sqlite_url: str,
) -> None:
    seed_list(sqlite_url, "a", [f"+1201555{i:04d}" for i in range(100, 106)])
    _, run_id = seed_campaign(sqlite_url, ["a"])
    from campaigns.expand import expand_run
    from campaigns.models import Message

    with session_scope(sqlite_url) as session:
        expand_run(session, run_id)
        ids = []
        for i, message in enumerate(session.scalars(select(Message).order_by(Message.id))):
            message.status, message.provider_message_id = "sent", f"M{i}"
            ids.append(f"M{i}")
    # seconds 100, 100, 101 | 101, 101, 102: the page boundary falls inside second 101
    stamps = [100, 100, 101, 101, 101, 102]
    provider = PagedReceipts([_receipt(m, s) for m, s in zip(ids, stamps, strict=True)], page=3)
    provider.gate_pages = 1
    with session_scope(sqlite_url) as session:
        first = poll_receipts(session, provider)  # type: ignore[arg-type]
    assert (first.read, first.matched) == (3, 3)
    assert provider.marked == [101]  # second 101 might go on in the next page: kept unread
    provider.gate_pages = None
    with session_scope(sqlite_url) as session:
        second = poll_receipts(session, provider)  # type: ignore[arg-type]
    assert second.read == 4 and provider.marked == [101, 103]
    assert provider.unread == []
    with session_scope(sqlite_url) as session:
        assert set(session.scalars(select(Message.delivery_status))) == {"delivered"}
    assert status_counts(sqlite_url, run_id) == {"sent": 6}


class PagedInbound:
    def __init__(self, messages: list[InboundMessage]) -> None:
        self.messages = messages
        self.marked: list[int | None] = []

    def sms_inbound(self) -> Iterator[InboundMessage]:
        yield from self.messages[:2]
        raise HeldBackError("GET /sms/inbound: held back, no turn within 30 s")

    def mark_sms_inbound_read(self, date_before: int | None = None) -> None:
        self.marked.append(date_before)


def test_stop_replies_read_before_a_poll_is_held_back_still_take_effect(
    sqlite_url: str,
) -> None:
    def reply(sender: str, body: str) -> InboundMessage:
        return InboundMessage(
            message_id=sender,
            from_=sender,
            to=None,
            body=body,
            timestamp=100,
            custom_string=None,
            original_message_id=None,
            keyword=None,
            raw={},
        )

    provider = PagedInbound(
        [reply("+12015550123", "STOP"), reply("+12015550124", "hi"), reply("+12015550125", "STOP")]
    )
    with session_scope(sqlite_url) as session, pytest.raises(HeldBackError):
        poll_inbound(session, provider, "US")  # type: ignore[arg-type]
    assert provider.marked == []  # nothing marked read: all of it is read again next time
    with session_scope(sqlite_url) as session:
        assert set(session.scalars(select(Suppression.phone))) == {"+12015550123"}

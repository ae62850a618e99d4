"""A scripted in-memory provider for dispatch tests that need exact control of failures.

It keeps a history like ClickSend's, so the look-up after an ambiguous failure is real.
End-to-end tests use the sandbox server over HTTP instead.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from clicksend.errors import ClickSendError
from clicksend.models import HistoryItem, MessageResult, SendResponse

_ids = itertools.count(1)


@dataclass
class FakeProvider:
    """``script`` holds what each send does, in order: "ok", an exception to raise
    before accepting, ("accept-then", exc) to accept and then raise, or a dict
    {phone: status} of per-message statuses. When the script runs out, sends succeed."""

    script: list[Any] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    history_items: list[HistoryItem] = field(default_factory=list)
    requests: int = 0
    history_calls: int = 0

    def gated(self, gate: Any) -> Any:
        """Like ``ClickSendClient.gated``: every call asks ``gate`` first."""
        return GatedFake(self, gate)

    def _accept(
        self, messages: Sequence[Mapping[str, Any]], statuses: Mapping[str, str]
    ) -> SendResponse:
        results = []
        for m in messages:
            status = statuses.get(m["to"], "SUCCESS")
            ok = status == "SUCCESS"
            message_id = f"MSG-{next(_ids)}" if ok else None
            price = Decimal("0.0250") if ok else Decimal("0")
            results.append(
                MessageResult(
                    to=m["to"],
                    status=status,
                    message_id=message_id,
                    custom_string=m.get("custom_string"),
                    message_parts=1 if ok else 0,
                    message_price=price,
                    schedule=None,
                    raw=dict(m),
                )
            )
            if ok:
                self.sent.append(dict(m))
                self.history_items.append(
                    HistoryItem(
                        message_id=message_id or "",
                        to=m["to"],
                        from_=m.get("from"),
                        custom_string=m.get("custom_string"),
                        status="Sent",
                        date=int(time.time()),
                        schedule=None,
                        body=m.get("body"),
                        message_parts=1,
                        message_price=price,
                        raw={},
                    )
                )
        return SendResponse(
            http_code=200,
            response_code="SUCCESS",
            response_msg="Messages queued for delivery.",
            total_price=sum((r.message_price for r in results), Decimal("0")),
            total_count=len(results),
            queued_count=sum(r.status == "SUCCESS" for r in results),
            currency="USD",
            messages=results,
        )

    def send_sms(self, messages: Sequence[Mapping[str, Any]]) -> SendResponse:
        self.requests += 1
        action = self.script.pop(0) if self.script else "ok"
        if isinstance(action, ClickSendError):
            raise action
        if isinstance(action, tuple) and action[0] == "accept-then":
            self._accept(messages, {})
            raise action[1]
        return self._accept(messages, action if isinstance(action, dict) else {})

    def sms_history(
        self,
        *,
        date_from: int | None = None,
        date_to: int | None = None,
        q: str | None = None,
        limit: int = 100,
        first_page: int = 1,
    ) -> Iterator[HistoryItem]:
        self.history_calls += 1
        window = [
            item
            for item in self.history_items
            if (date_from is None or (item.date or 0) >= date_from)
            and (date_to is None or (item.date or 0) <= date_to)
            and (q is None or not q.startswith("to:") or item.to == q[3:])
        ]
        yield from window[(first_page - 1) * limit :]

    def close(self) -> None:
        pass

    def count_to(self, phone: str) -> int:
        return sum(1 for m in self.sent if m["to"] == phone)


class GatedFake:
    """A gated view of a fake provider: the gate is asked before each method call."""

    def __init__(self, inner: Any, gate: Any) -> None:
        self._inner, self._gate = inner, gate

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._gate.before_request(name)
            return attr(*args, **kwargs)

        return call

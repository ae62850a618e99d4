"""Typed views of ClickSend's messaging answers: send results, history, receipts, inbound.

Parsing is tolerant on purpose. The real service answers ``schedule: ""``, prices as
strings, and leaves fields out of blocked messages; the official SDK fails on exactly
that. Here an odd field becomes None/0/"" and the untouched entry stays in ``raw``, and
every entry of ``data.messages`` becomes one ``MessageResult``, whatever its shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from clicksend.coerce import as_mapping, to_decimal, to_int, to_str, to_timestamp

# A result without a status cannot be classified; this name makes the caller treat it so.
UNKNOWN_STATUS = "UNKNOWN"


def _entry(value: Any) -> Mapping[str, Any]:
    """A list entry as a mapping; anything else is kept whole under ``value``."""
    return value if isinstance(value, Mapping) else {"value": value}


@dataclass(frozen=True)
class MessageResult:
    """One entry of ``data.messages`` in a send or price answer."""

    to: str
    status: str
    message_id: str | None
    custom_string: str | None
    message_parts: int
    message_price: Decimal
    schedule: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> MessageResult:
        raw = _entry(value)
        return cls(
            to=to_str(raw.get("to")) or "",
            status=(to_str(raw.get("status")) or UNKNOWN_STATUS).upper(),
            message_id=to_str(raw.get("message_id")),
            custom_string=to_str(raw.get("custom_string")),
            message_parts=to_int(raw.get("message_parts"), 0) or 0,
            message_price=to_decimal(raw.get("message_price")),
            schedule=to_timestamp(raw.get("schedule")),
            raw=raw,
        )


@dataclass(frozen=True)
class SendResponse:
    """The answer to a send or price request (HTTP 200, possibly with per-message failures)."""

    http_code: int
    response_code: str
    response_msg: str
    total_price: Decimal
    total_count: int
    queued_count: int
    currency: str | None
    messages: list[MessageResult]

    @classmethod
    def from_json(cls, envelope: Mapping[str, Any], http_status: int = 200) -> SendResponse:
        data = as_mapping(envelope.get("data"))
        entries = data.get("messages")
        messages = (
            [MessageResult.from_json(m) for m in entries] if isinstance(entries, list) else []
        )
        return cls(
            http_code=to_int(envelope.get("http_code"), http_status) or http_status,
            response_code=to_str(envelope.get("response_code")) or "",
            response_msg=to_str(envelope.get("response_msg")) or "",
            total_price=to_decimal(data.get("total_price")),
            total_count=to_int(data.get("total_count"), len(messages)) or 0,
            queued_count=to_int(data.get("queued_count"), 0) or 0,
            currency=to_str(as_mapping(data.get("_currency")).get("currency_name_short")),
            messages=messages,
        )


@dataclass(frozen=True)
class HistoryItem:
    """One entry of ``GET /sms/history`` (and of MMS and voice history)."""

    message_id: str
    to: str
    from_: str | None
    custom_string: str | None
    status: str
    date: int | None
    schedule: int | None
    body: str | None
    message_parts: int
    message_price: Decimal
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    status_code: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> HistoryItem:
        raw = _entry(value)
        return cls(
            message_id=to_str(raw.get("message_id")) or "",
            to=to_str(raw.get("to")) or "",
            from_=to_str(raw.get("from")),
            custom_string=to_str(raw.get("custom_string")),
            status=to_str(raw.get("status")) or UNKNOWN_STATUS,
            date=to_timestamp(raw.get("date")),
            schedule=to_timestamp(raw.get("schedule")),
            body=to_str(raw.get("body")),
            message_parts=to_int(raw.get("message_parts"), 0) or 0,
            message_price=to_decimal(raw.get("message_price")),
            raw=raw,
            status_code=to_int(raw.get("status_code")),
        )


@dataclass(frozen=True)
class Account:
    """``GET /account``: who we are and what is left to spend."""

    username: str
    balance: Decimal
    currency: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Account:
        raw = as_mapping(value)
        return cls(
            username=to_str(raw.get("username")) or "",
            balance=to_decimal(raw.get("balance")),
            currency=to_str(as_mapping(raw.get("_currency")).get("currency_name_short")) or "",
            raw=raw,
        )


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt (SMS, MMS or voice). Status codes: 200 sent, 201 delivered,
    300 temporary failure, 301 failed (also: cancelled)."""

    message_id: str
    status_code: int | None
    status_text: str | None
    timestamp: int | None
    timestamp_send: int | None
    custom_string: str | None
    error_code: str | None
    error_text: str | None
    message_type: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Receipt:
        raw = _entry(value)
        return cls(
            message_id=to_str(raw.get("message_id")) or "",
            status_code=to_int(raw.get("status_code")),
            status_text=to_str(raw.get("status_text")),
            timestamp=to_timestamp(raw.get("timestamp")),
            timestamp_send=to_timestamp(raw.get("timestamp_send")),
            custom_string=to_str(raw.get("custom_string")),
            error_code=to_str(raw.get("error_code")),
            error_text=to_str(raw.get("error_text")),
            message_type=to_str(raw.get("message_type")),
            raw=raw,
        )


@dataclass(frozen=True)
class InboundMessage:
    """A reply or other message received on one of the account's numbers."""

    message_id: str
    from_: str
    to: str | None
    body: str
    timestamp: int | None
    custom_string: str | None
    original_message_id: str | None
    keyword: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> InboundMessage:
        raw = _entry(value)
        return cls(
            message_id=to_str(raw.get("message_id")) or "",
            from_=to_str(raw.get("from")) or "",
            to=to_str(raw.get("to")),
            body=str(raw.get("body") or ""),
            timestamp=to_timestamp(raw.get("timestamp") or raw.get("timestamp_send")),
            custom_string=to_str(raw.get("custom_string")),
            original_message_id=to_str(raw.get("original_message_id")),
            keyword=to_str(raw.get("_keyword")),
            raw=raw,
        )

"""Send and price requests: each message gets ClickSend's per-message status, parts and price.

The request as a whole fails (BadRequest, answered 400) only when its body is unusable;
otherwise every message is judged on its own and the answer is HTTP 200 even when some
(or all) are refused, as ClickSend does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox import render
from sandbox.catalog import VOICE_LANGS, VOICES
from sandbox.contacts import NotFound
from sandbox.envelope import BadRequest
from sandbox.numbers import lookup
from sandbox.parts import sms_parts, voice_parts
from sandbox.records import Message, new_message_id
from sandbox.state import SandboxState

MAX_MESSAGES = 1000
MMS_MAX_BODY, MMS_MEDIA_TYPES = 1500, (".jpg", ".jpeg", ".gif")
ALPHA_SENDER_MAX = 11

Renderer = Callable[[Message, str], dict[str, Any]]


@dataclass
class Outcome:
    """What a send or price request came to."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    total_price: Decimal = Decimal("0")
    queued: int = 0
    blocked: int = 0

    def data(self, currency: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "total_price": float(self.total_price),
            "total_count": len(self.entries),
            "queued_count": self.queued,
            "messages": self.entries,
        }
        if currency is not None:
            out["_currency"] = currency
            out["blocked_count"] = self.blocked
        return out


def currency(code: str) -> dict[str, Any]:
    """The ``_currency`` member of answers."""
    return {
        "currency_name_short": code,
        "currency_prefix_d": "$",
        "currency_prefix_c": "c",
        "currency_name_long": {"USD": "US Dollars", "AUD": "Australian Dollars"}.get(code, code),
        "min_recharge_amount": "20.00",
        "max_recharge_amount": "10000.00",
    }


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``messages`` array, checked: 1..1000 objects. BadRequest names the row."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: a non-empty array of messages is required")
    if len(messages) > MAX_MESSAGES:
        raise BadRequest(f"messages: at most {MAX_MESSAGES} per request, got {len(messages)}")
    for row, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{row}]: must be an object")
    return messages


def _expand(state: SandboxState, messages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Messages addressed to a list become one message per contact."""
    for row, message in enumerate(messages):
        list_id = message.get("list_id")
        if message.get("to") or list_id in (None, ""):
            yield message
            continue
        try:
            contacts = state.contacts.get_list(list_id).contacts.values()
        except NotFound:
            raise BadRequest(f"messages[{row}].list_id: no list {list_id}") from None
        for contact in contacts:
            yield {
                **message,
                "to": contact.fields.get("phone_number", ""),
                "list_id": str(list_id),
                "contact_id": str(contact.contact_id),
            }


def _schedule(value: Any, now: int) -> int | None:
    """The send time: ``now`` when absent or past, None when unusable."""
    if value in (None, "", 0, "0"):
        return now
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int):
        return None
    return max(value, now)


def _text(message: dict[str, Any], name: str) -> str:
    value = message.get(name)
    return "" if value is None else str(value)


class Judge:
    """Judges the messages of one request against the account, in order."""

    def __init__(self, state: SandboxState, kind: str, commit: bool, media_file: str = "") -> None:
        self.state = state
        self.kind = kind
        self.commit = commit  # False for price requests: nothing is recorded or charged
        self.media_file = media_file
        self.clock = state.now()
        self.now = int(self.clock)
        self.budget = state.balance
        self.region = state.config.default_country
        self.render: Renderer = {
            "sms": render.sms_result,
            "mms": render.mms_result,
            "voice": render.voice_result,
        }[kind]
        self.check_kind: Callable[[dict[str, Any], Message], str | None] = {
            "sms": self._check_sms,
            "mms": self._check_mms,
            "voice": self._check_voice,
        }[kind]

    def run(self, messages: list[dict[str, Any]]) -> Outcome:
        outcome = Outcome()
        for message in _expand(self.state, messages):
            entry, accepted = self.judge(message)
            outcome.entries.append(entry)
            if accepted is None:
                outcome.blocked += 1
            else:
                outcome.queued += 1
                outcome.total_price += accepted.price
        if self.commit:
            self.state.balance = self.budget
        return outcome

    def judge(self, message: dict[str, Any]) -> tuple[dict[str, Any], Message | None]:
        """(answer entry, the accepted message or None when refused)."""
        recipient = lookup(_text(message, "to"), str(message.get("country") or self.region))
        send_at = _schedule(message.get("schedule"), self.now)
        record = Message(
            kind=self.kind,
            message_id=new_message_id(),
            to=recipient.e164,
            body=_text(message, "body"),
            sender=_text(message, "from"),
            custom_string=_text(message, "custom_string"),
            date=self.now,
            send_at=send_at if send_at is not None else self.now,
            parts=0,
            price=Decimal("0"),
            country=recipient.country,
            test=recipient.test,
            list_id=_text(message, "list_id") or None,
            contact_id=_text(message, "contact_id") or None,
        )
        status = self._check(message, record, recipient.valid, send_at is not None)
        entry = self.render(record, status)
        if status != "SUCCESS":
            return render.blocked(entry, status), None
        if self.commit:
            self.state.accept(record)
        return entry, record

    def _check(
        self, message: dict[str, Any], record: Message, valid: bool, schedule_ok: bool
    ) -> str:
        """The per-message status; fills parts and price when the message can go."""
        if not record.body.strip():
            return "EMPTY_MESSAGE"
        if not valid:
            return "INVALID_RECIPIENT"
        sender = record.sender
        if sender and not sender.lstrip("+").isdigit() and len(sender) > ALPHA_SENDER_MAX:
            return "INVALID_SENDER_ID"
        if not schedule_ok:
            return "INVALID_SCHEDULE"
        problem = self.check_kind(message, record)
        if problem:
            return problem
        if self.commit and self.state.is_throttled(
            f"{self.kind}:{record.to}", record.body, self.clock
        ):
            return "THROTTLED"
        if not record.test:  # ClickSend's test numbers are never charged
            if record.price > self.budget:
                return "INSUFFICIENT_CREDIT"
            self.budget -= record.price
        return "SUCCESS"

    def _check_sms(self, message: dict[str, Any], record: Message) -> str | None:
        record.parts = sms_parts(record.body)
        record.price = self.state.config.price_per_part * record.parts
        return None

    def _check_mms(self, message: dict[str, Any], record: Message) -> str | None:
        record.extra = {"subject": _text(message, "subject"), "media_file": self.media_file}
        if not record.extra["subject"].strip():
            return "SUBJECT_REQUIRED"
        path = self.media_file.split("?", 1)[0].lower()
        if not path.endswith(MMS_MEDIA_TYPES):
            return "INVALID_MEDIA_FILE"
        record.body = record.body[:MMS_MAX_BODY]
        record.parts, record.price = 1, self.state.config.mms_price
        return None

    def _check_voice(self, message: dict[str, Any], record: Message) -> str | None:
        lang = _text(message, "lang").lower() or "en-us"
        voice = _text(message, "voice").lower() or "female"
        record.extra = {
            "lang": lang,
            "voice": voice,
            "require_input": int(bool(message.get("require_input"))),
            "machine_detection": int(bool(message.get("machine_detection"))),
        }
        if lang not in VOICE_LANGS:
            return "INVALID_LANG"
        if voice not in VOICES or voice not in VOICE_LANGS[lang][1]:
            return "INVALID_VOICE"
        record.parts = voice_parts(record.body)
        record.price = self.state.config.voice_price_per_part * record.parts
        return None


def submit(state: SandboxState, kind: str, body: dict[str, Any], *, commit: bool) -> Outcome:
    """Judge (and, with ``commit``, accept and charge) every message of a request.

    Raises BadRequest when the body itself is unusable.
    """
    messages = messages_of(body)
    media_file = ""
    if kind == "mms":
        media_file = _text(body, "media_file")
    with state.lock:
        return Judge(state, kind, commit, media_file).run(messages)

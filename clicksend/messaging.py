"""SMS, MMS and voice endpoints: send, price, history, receipts, inbound, cancel, templates.

A send answers HTTP 200 even when some messages were refused: read each
``SendResponse.messages[i].status``. ``custom_string`` identifies a message at ClickSend
(there is no idempotency key), and ``cancel_all_*(custom_string)`` cancels by exact match.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from clicksend.endpoints import Endpoints, prepare_messages, segment
from clicksend.models import HistoryItem, InboundMessage, Receipt, SendResponse
from clicksend.pagination import MAX_LIMIT
from clicksend.resources import Template, VoiceLang


def _cancel_filter(custom_string: str | None) -> dict[str, str]:
    return {} if custom_string is None else {"custom_string": custom_string}


def _read_before(date_before: int | None) -> dict[str, int]:
    return {} if date_before is None else {"date_before": int(date_before)}


class _HistoryEndpoints(Endpoints):
    """The history walk shared by SMS, MMS and voice."""

    def _history(
        self,
        path: str,
        date_from: int | None,
        date_to: int | None,
        q: str | None,
        limit: int,
        first_page: int = 1,
    ) -> Iterator[HistoryItem]:
        params = {"date_from": date_from, "date_to": date_to, "q": q}
        return self._pages(
            path, HistoryItem.from_json, limit=limit, params=params, first_page=first_page
        )


class SmsEndpoints(_HistoryEndpoints):
    """``/sms/*``: send, price, history, inbound, receipts, cancel, templates."""

    def send_sms(self, messages: Sequence[Mapping[str, Any]]) -> SendResponse:
        """POST /sms/send; each message may carry to, body, from, source, custom_string,
        schedule (Unix time), list_id. Up to 1000 per call."""
        body = {"messages": prepare_messages(messages)}
        return SendResponse.from_json(self._call("POST", "/sms/send", json=body))

    def price_sms(self, messages: Sequence[Mapping[str, Any]]) -> SendResponse:
        """POST /sms/price: what ``send_sms`` would cost, without sending."""
        body = {"messages": prepare_messages(messages)}
        return SendResponse.from_json(self._call("POST", "/sms/price", json=body))

    def sms_history(
        self,
        *,
        date_from: int | None = None,
        date_to: int | None = None,
        q: str | None = None,
        limit: int = MAX_LIMIT,
        first_page: int = 1,
    ) -> Iterator[HistoryItem]:
        """GET /sms/history, every page; ``q`` is ClickSend's search (e.g. ``to:+61...``)."""
        return self._history("/sms/history", date_from, date_to, q, limit, first_page)

    def sms_inbound(self, *, limit: int = MAX_LIMIT) -> Iterator[InboundMessage]:
        """GET /sms/inbound: unread inbound messages, every page."""
        return self._pages("/sms/inbound", InboundMessage.from_json, limit=limit)

    def mark_sms_inbound_read(self, date_before: int | None = None) -> None:
        """PUT /sms/inbound-read: mark inbound messages (before ``date_before``) read."""
        self._call("PUT", "/sms/inbound-read", json=_read_before(date_before))

    def sms_receipts(self, *, limit: int = MAX_LIMIT) -> Iterator[Receipt]:
        """GET /sms/receipts: unread delivery receipts, every page."""
        return self._pages("/sms/receipts", Receipt.from_json, limit=limit)

    def sms_receipt(self, message_id: str) -> Receipt:
        """GET /sms/receipts/{message_id}: the receipt of one message."""
        return Receipt.from_json(self._data("GET", f"/sms/receipts/{segment(message_id)}"))

    def mark_sms_receipts_read(self, date_before: int | None = None) -> None:
        """PUT /sms/receipts-read: mark receipts (before ``date_before``) read."""
        self._call("PUT", "/sms/receipts-read", json=_read_before(date_before))

    def cancel_sms(self, message_id: str) -> None:
        """PUT /sms/{message_id}/cancel: cancel one scheduled message."""
        self._call("PUT", f"/sms/{segment(message_id)}/cancel")

    def cancel_all_sms(self, custom_string: str | None = None) -> int:
        """PUT /sms/cancel-all: cancel scheduled messages (only those with exactly this
        ``custom_string``, if given); returns how many were cancelled."""
        return self._count("PUT", "/sms/cancel-all", "count", json=_cancel_filter(custom_string))

    def sms_templates(self, *, limit: int = MAX_LIMIT) -> Iterator[Template]:
        """GET /sms/templates, every page."""
        return self._pages("/sms/templates", Template.from_json, limit=limit)

    def sms_template(self, template_id: int) -> Template:
        """GET /sms/templates/{template_id}."""
        return Template.from_json(self._data("GET", f"/sms/templates/{segment(template_id)}"))

    def create_sms_template(self, name: str, body: str) -> Template:
        """POST /sms/templates."""
        payload = {"template_name": name, "body": body}
        return Template.from_json(self._data("POST", "/sms/templates", json=payload))

    def update_sms_template(self, template_id: int, *, name: str, body: str) -> Template:
        """PUT /sms/templates/{template_id}: replace name and body."""
        payload = {"template_name": name, "body": body}
        path = f"/sms/templates/{segment(template_id)}"
        return Template.from_json(self._data("PUT", path, json=payload))

    def delete_sms_template(self, template_id: int) -> None:
        """DELETE /sms/templates/{template_id}."""
        self._call("DELETE", f"/sms/templates/{segment(template_id)}")


class MmsEndpoints(_HistoryEndpoints):
    """``/mms/*``: one ``media_file`` (a URL; jpg or gif, up to 250 kB) per request."""

    def send_mms(self, media_file: str, messages: Sequence[Mapping[str, Any]]) -> SendResponse:
        """POST /mms/send; messages may carry to, body, subject, from, custom_string, schedule."""
        body = {"media_file": media_file, "messages": prepare_messages(messages, required=())}
        return SendResponse.from_json(self._call("POST", "/mms/send", json=body))

    def price_mms(self, media_file: str, messages: Sequence[Mapping[str, Any]]) -> SendResponse:
        """POST /mms/price."""
        body = {"media_file": media_file, "messages": prepare_messages(messages, required=())}
        return SendResponse.from_json(self._call("POST", "/mms/price", json=body))

    def mms_history(
        self,
        *,
        date_from: int | None = None,
        date_to: int | None = None,
        q: str | None = None,
        limit: int = MAX_LIMIT,
        first_page: int = 1,
    ) -> Iterator[HistoryItem]:
        """GET /mms/history, every page."""
        return self._history("/mms/history", date_from, date_to, q, limit, first_page)

    def mms_receipts(self, *, limit: int = MAX_LIMIT) -> Iterator[Receipt]:
        """GET /mms/receipts: unread MMS delivery receipts, every page."""
        return self._pages("/mms/receipts", Receipt.from_json, limit=limit)


class VoiceEndpoints(_HistoryEndpoints):
    """``/voice/*``: text-to-speech calls (``voice`` female/male, ``lang`` from voice_langs)."""

    def send_voice(self, messages: Sequence[Mapping[str, Any]]) -> SendResponse:
        """POST /voice/send; messages may carry to, body, voice, lang, schedule,
        custom_string, require_input, machine_detection."""
        body = {"messages": prepare_messages(messages)}
        return SendResponse.from_json(self._call("POST", "/voice/send", json=body))

    def price_voice(self, messages: Sequence[Mapping[str, Any]]) -> SendResponse:
        """POST /voice/price."""
        prepared = prepare_messages(messages)
        for message in prepared:
            # ClickSend documents this one endpoint's schedule as a string.
            if "schedule" in message:
                message["schedule"] = str(message["schedule"])
        body = {"messages": prepared}
        return SendResponse.from_json(self._call("POST", "/voice/price", json=body))

    def voice_langs(self) -> list[VoiceLang]:
        """GET /voice/lang: the languages and the voices each has."""
        return self._list("/voice/lang", VoiceLang.from_json)

    def voice_history(
        self,
        *,
        date_from: int | None = None,
        date_to: int | None = None,
        q: str | None = None,
        limit: int = MAX_LIMIT,
        first_page: int = 1,
    ) -> Iterator[HistoryItem]:
        """GET /voice/history, every page (the account needs voice enabled)."""
        return self._history("/voice/history", date_from, date_to, q, limit, first_page)

    def voice_receipts(self, *, limit: int = MAX_LIMIT) -> Iterator[Receipt]:
        """GET /voice/receipts, every page."""
        return self._pages("/voice/receipts", Receipt.from_json, limit=limit)

    def cancel_voice(self, message_id: str) -> None:
        """PUT /voice/{message_id}/cancel."""
        self._call("PUT", f"/voice/{segment(message_id)}/cancel", json={})

    def cancel_all_voice(self, custom_string: str | None = None) -> int:
        """PUT /voice/cancel-all (optionally only this ``custom_string``); returns the count."""
        json = _cancel_filter(custom_string)
        return self._count("PUT", "/voice/cancel-all", "count", json=json)

"""Records as ClickSend's JSON shapes (checked against its OpenAPI response schemas)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.records import (
    CONTACT_FIELDS,
    Contact,
    ContactList,
    EmailAddress,
    Inbound,
    Message,
    Receipt,
    Template,
)

USER_ID = 672721
SUBACCOUNT_ID = 1
HISTORY_STATUS = {
    "scheduled": "Scheduled",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
ZERO_PRICE = "0.0000"


def price(value: Decimal) -> str:
    """A price as ClickSend writes it: a string with four decimals."""
    return f"{value:.4f}"


def sms_result(m: Message, status: str = "SUCCESS") -> dict[str, Any]:
    """One entry of an SMS send answer."""
    return {
        "direction": "out",
        "date": m.date,
        "to": m.to,
        "body": m.body,
        "from": m.sender,
        "schedule": m.send_at,
        "message_id": m.message_id,
        "message_parts": m.parts,
        "message_price": price(m.price),
        "from_email": None,
        "list_id": m.list_id,
        "custom_string": m.custom_string,
        "contact_id": m.contact_id,
        "user_id": USER_ID,
        "subaccount_id": SUBACCOUNT_ID,
        "is_shared_system_number": not m.sender,
        "country": m.country,
        "carrier": "",
        "status": status,
    }


def blocked(entry: dict[str, Any], status: str) -> dict[str, Any]:
    """A message refused with ``status``: no schedule, no parts, no price."""
    return {
        **entry,
        "schedule": "",
        "message_parts": 0,
        "message_price": ZERO_PRICE,
        "status": status,
    }


def sms_price_result(entry: dict[str, Any]) -> dict[str, Any]:
    """A price answer entry: dates as strings, as ClickSend's price schema has them."""
    keep = (
        "to",
        "body",
        "from",
        "message_id",
        "message_parts",
        "message_price",
        "custom_string",
        "country",
        "status",
    )
    out = {k: entry[k] for k in keep}
    out["date"] = str(entry["date"])
    out["schedule"] = str(entry["schedule"])
    out["contact_id"] = entry["contact_id"] or ""
    out["custom_string"] = entry["custom_string"] or ""
    out["is_shared_system_number"] = entry["is_shared_system_number"]
    return out


def sms_history(m: Message) -> dict[str, Any]:
    """One SMS history entry."""
    return {
        "direction": "out",
        "date": m.date,
        "to": m.to,
        "body": m.body,
        "status": HISTORY_STATUS[m.state],
        "from": m.sender,
        "schedule": str(m.send_at),
        "status_code": str(m.status_code),
        "status_text": HISTORY_STATUS[m.state],
        "error_code": None,
        "error_text": None,
        "message_id": m.message_id,
        "message_parts": m.parts,
        "message_price": price(m.price),
        "from_email": "",
        "list_id": m.list_id,
        "custom_string": m.custom_string,
        "contact_id": m.contact_id or "",
        "user_id": USER_ID,
        "subaccount_id": SUBACCOUNT_ID,
        "country": m.country,
        "carrier": "",
        "first_name": None,
        "last_name": None,
        "_api_username": "sandbox",
    }


def mms_result(m: Message, status: str = "SUCCESS") -> dict[str, Any]:
    """One entry of an MMS send or price answer."""
    return {
        "list_id": m.list_id,
        "contact_id": int(m.contact_id or 0),
        "message_id": m.message_id,
        "to": m.to,
        "subject": m.extra.get("subject", ""),
        "from": m.sender,
        "body": m.body,
        "country": m.country,
        "custom_string": m.custom_string,
        "schedule": str(m.send_at),
        "message_parts": m.parts,
        "message_price": price(m.price),
        "_media_file_url": m.extra.get("media_file", ""),
        "status": status,
    }


def mms_history(m: Message) -> dict[str, Any]:
    """One MMS history entry."""
    return {
        "direction": "out",
        "date": str(m.date),
        "to": m.to,
        "body": m.body,
        "subject": m.extra.get("subject", ""),
        "priority": 2,
        "_media_file_url": m.extra.get("media_file", ""),
        "status": HISTORY_STATUS[m.state],
        "from": m.sender,
        "schedule": str(m.send_at),
        "date_added": m.date,
        "status_code": str(m.status_code),
        "status_text": HISTORY_STATUS[m.state],
        "error_code": None,
        "error_text": "",
        "message_id": m.message_id,
        "message_parts": f"{m.parts:.2f}",
        "message_price": price(m.price),
        "from_email": None,
        "list_id": m.list_id,
        "custom_string": m.custom_string,
        "contact_id": int(m.contact_id or 0),
        "user_id": USER_ID,
        "subaccount_id": SUBACCOUNT_ID,
        "country": m.country,
        "carrier": "",
        "first_name": "",
        "last_name": "",
        "_api_username": "sandbox",
    }


def voice_result(m: Message, status: str = "SUCCESS") -> dict[str, Any]:
    """One voice entry: send and price answers and history share this shape."""
    return {
        "date": str(m.date),
        "date_added": m.date,
        "list_id": m.list_id,
        "to": m.to,
        "to_type": m.extra.get("to_type", "mobile"),
        "body": m.body,
        "from": m.sender or None,
        "lang": m.extra.get("lang", ""),
        "voice": m.extra.get("voice", ""),
        "schedule": m.send_at,
        "message_id": m.message_id,
        "message_parts": m.parts,
        "message_price": price(m.price),
        "custom_string": m.custom_string,
        "user_id": USER_ID,
        "subaccount_id": SUBACCOUNT_ID,
        "country": m.country,
        "require_input": m.extra.get("require_input", 0),
        "machine_detection": m.extra.get("machine_detection", 0),
        "machine_detected": None,
        "digits": None,
        "carrier": "",
        "status_code": str(m.status_code),
        "status_text": HISTORY_STATUS[m.state],
        "status": status,
        "_api_username": "sandbox",
    }


def voice_history(m: Message) -> dict[str, Any]:
    return {**voice_result(m), "status": HISTORY_STATUS[m.state]}


def receipt(r: Receipt) -> dict[str, Any]:
    """An SMS/MMS receipt (integers), or a voice receipt (strings, as ClickSend has it)."""
    if r.kind == "voice":
        return {
            "timestamp_send": str(r.timestamp_send),
            "timestamp": str(r.timestamp),
            "message_id": r.message_id,
            "status_code": str(r.status_code),
            "status_text": r.status_text,
            "error_code": None,
            "error_text": None,
            "custom_string": r.custom_string,
            "message_type": "voice",
            "digits": "",
        }
    return {
        "timestamp_send": r.timestamp_send,
        "timestamp": r.timestamp,
        "message_id": r.message_id,
        "status_code": r.status_code,
        "status_text": r.status_text,
        "error_code": None,
        "error_text": None,
        "custom_string": r.custom_string,
        "subaccount_id": SUBACCOUNT_ID,
        "message_type": r.kind,
        "digits": 0,
    }


def receipt_form(r: Receipt) -> dict[str, str]:
    """A receipt as ClickSend pushes it (form fields, old and new spellings)."""
    return {
        "timestamp_send": str(r.timestamp_send),
        "timestamp": str(r.timestamp),
        "message_id": r.message_id,
        "messageid": r.message_id,
        "status_code": str(r.status_code),
        "status_text": r.status_text,
        "status": "Delivered" if r.status_code == 201 else "Failed",
        "error_code": "",
        "error_text": "",
        "custom_string": r.custom_string,
        "customstring": r.custom_string,
        "user_id": str(USER_ID),
        "subaccount_id": str(SUBACCOUNT_ID),
        "message_type": r.kind,
    }


def inbound(i: Inbound) -> dict[str, Any]:
    """One inbound reply."""
    return {
        "timestamp": i.timestamp,
        "from": i.sender,
        "body": i.body,
        "original_body": i.original_body,
        "original_message_id": i.original_message_id,
        "to": i.to,
        "custom_string": i.custom_string,
        "message_id": i.message_id,
        "_keyword": (i.body.split() or [""])[0].lower(),
    }


def template(t: Template) -> dict[str, Any]:
    return {"template_id": t.template_id, "template_name": t.template_name, "body": t.body}


def contact_list(c: ContactList) -> dict[str, Any]:
    return {
        "list_id": c.list_id,
        "list_name": c.list_name,
        "list_email_id": f"L{c.list_id}",
        "_contacts_count": len(c.contacts),
        "_import_in_progress": 0,
        "_optout_in_progress": 0,
    }


def contact(c: Contact, list_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"contact_id": c.contact_id, "list_id": c.list_id}
    for name in CONTACT_FIELDS:
        out[name] = c.fields.get(name, "")
    out["date_added"] = c.date_added
    out["date_updated"] = c.date_updated
    out["_list_name"] = list_name
    return out


def email_address(e: EmailAddress) -> dict[str, Any]:
    return {
        "email_address_id": e.email_address_id,
        "email_address": e.email_address,
        "verified": e.verified,
        "date_added": str(e.date_added),
    }

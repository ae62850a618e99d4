"""How many parts (billing units) an SMS or a voice message takes, by ClickSend's rules.

SMS: text made only of GSM 03.38 characters is GSM-7 (160 septets in one part, 153 per part
once concatenated; the extension characters take two septets each); anything else makes the
whole message UCS-2 (70 UTF-16 units in one part, 67 per part). ClickSend truncates a message
past 6 parts. Voice: 300 characters per credit, truncated after 4.
"""

from __future__ import annotations

import math

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Each of these is sent as an escape plus the character: two septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_CHARS = GSM7_BASIC | GSM7_EXTENSION

MAX_SMS_PARTS = 6
MAX_VOICE_PARTS = 4
VOICE_CHARS_PER_PART = 300

_SINGLE = {"gsm7": 160, "ucs2": 70}
_MULTI = {"gsm7": 153, "ucs2": 67}


def sms_encoding(body: str) -> str:
    """``"gsm7"`` when every character is in GSM 03.38, else ``"ucs2"``."""
    return "gsm7" if GSM7_CHARS.issuperset(body) else "ucs2"


def ucs2_trigger(body: str) -> str | None:
    """The first character outside GSM 03.38: the one that makes the message UCS-2."""
    for ch in body:
        if ch not in GSM7_CHARS:
            return ch
    return None


def sms_units(body: str, encoding: str | None = None) -> int:
    """Length in the encoding's units: septets (GSM-7; an extension character takes two)
    or UTF-16 code units (UCS-2; a character beyond the BMP, such as an emoji, takes two)."""
    return sum(_units(body, encoding or sms_encoding(body)))


def _units(body: str, encoding: str) -> list[int]:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of each character."""
    if encoding == "gsm7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in body]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in body]


def _count_parts(units: list[int], per_part: int) -> int:
    """Parts when filled greedily; a two-unit character is never split across parts."""
    parts, used = 1, 0
    for size in units:
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return parts


def sms_parts(body: str) -> tuple[str, int]:
    """(encoding, parts) of an SMS body; an empty body has 0 parts."""
    encoding = sms_encoding(body)
    if not body:
        return encoding, 0
    if encoding == "gsm7" and GSM7_EXTENSION.isdisjoint(body):
        length = len(body)  # fast path: one septet per character
        parts = 1 if length <= 160 else math.ceil(length / 153)
        return encoding, min(parts, MAX_SMS_PARTS)
    units = _units(body, encoding)
    if sum(units) <= _SINGLE[encoding]:
        return encoding, 1
    return encoding, min(_count_parts(units, _MULTI[encoding]), MAX_SMS_PARTS)


def voice_parts(body: str) -> int:
    """Voice credits of a spoken body: 300 characters each, at most 4 (the rest is cut)."""
    if not body:
        return 0
    return min(math.ceil(len(body) / VOICE_CHARS_PER_PART), MAX_VOICE_PARTS)


# How far a text's characters decide an SMS by its length alone (``sms_class``); a body's
# class is the highest of its pieces' (so a body rendered elsewhere, in SQL, is classed
# from its literal text and its values).
BASIC = 0  # basic GSM-7 only: one septet each
EXTENDED = 1  # GSM-7 with an extension character (two septets, never split across parts)
WIDE = 2  # a character outside GSM 03.38 (UCS-2) and none beyond the BMP: one unit each
ASTRAL = 3  # a character beyond the BMP (two UTF-16 units, never split across parts)


def sms_class(text: str) -> int:
    """``BASIC``, ``EXTENDED``, ``WIDE`` or ``ASTRAL`` (see above)."""
    if GSM7_BASIC.issuperset(text):
        return BASIC
    if any(ord(ch) > 0xFFFF for ch in text):
        return ASTRAL
    return EXTENDED if GSM7_CHARS.issuperset(text) else WIDE


def by_length(cls: int, length: int) -> str | None:
    """A body of class ``cls`` and ``length`` characters that encodes as every other such
    body does (encoding, units, parts): ``BASIC`` and ``WIDE`` bodies differ in nothing
    else. None for the classes whose parts depend on where the two-unit characters are."""
    if cls == BASIC:
        return "a" * length
    if cls == WIDE and length > 0:
        return "\u2019" + "a" * (length - 1)
    return None

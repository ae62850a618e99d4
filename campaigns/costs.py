"""What a set of rendered messages will cost, in ClickSend's billing units (parts).

SMS are counted with ``clicksend.parts`` (GSM-7: 160, then 153 per part; UCS-2: 70, then
67; at most 6 parts, the rest is cut). An MMS is one unit whatever its text. A voice
message takes a credit per 300 characters, at most 4. Prices differ per country and
account, so this counts units; ClickSend's ``/sms/price`` turns them into money.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from clicksend.parts import sms_parts, sms_units

MAX_SMS_PARTS = 6
VOICE_CHARS_PER_PART = 300
MAX_VOICE_PARTS = 4
# Units one concatenated part holds, by encoding; beyond MAX_SMS_PARTS of them text is cut.
_PART_UNITS = {"gsm7": 153, "ucs2": 67}


@dataclass
class EncodingTally:
    """Messages and parts of one encoding ("gsm7", "ucs2", "mms" or "voice")."""

    messages: int = 0
    parts: int = 0


@dataclass
class CostEstimate:
    """Totals for a channel, and per encoding. ``truncated`` counts messages too long
    for the channel's part limit (the provider cuts them)."""

    channel: str
    messages: int = 0
    parts: int = 0
    truncated: int = 0
    by_encoding: dict[str, EncodingTally] = field(default_factory=dict)

    def add(self, encoding: str, parts: int, truncated: bool) -> None:
        tally = self.by_encoding.setdefault(encoding, EncodingTally())
        tally.messages += 1
        tally.parts += parts
        self.messages += 1
        self.parts += parts
        self.truncated += truncated


def _sms_truncated(body: str, encoding: str, parts: int) -> bool:
    return (
        parts == MAX_SMS_PARTS and sms_units(body, encoding) > MAX_SMS_PARTS * _PART_UNITS[encoding]
    )


def estimate(channel: str, bodies: Iterable[str]) -> CostEstimate:
    """Count messages and parts of ``bodies`` sent on ``channel`` ("sms", "mms", "voice")."""
    if channel not in ("sms", "mms", "voice"):
        raise ValueError(f"channel: unknown channel {channel!r} (sms, mms or voice)")
    result = CostEstimate(channel=channel)
    for body in bodies:
        if channel == "sms":
            encoding, parts = sms_parts(body)
            result.add(encoding, parts, _sms_truncated(body, encoding, parts))
        elif channel == "mms":
            result.add("mms", 1, False)
        else:
            parts = math.ceil(len(body) / VOICE_CHARS_PER_PART)
            result.add("voice", min(parts, MAX_VOICE_PARTS), parts > MAX_VOICE_PARTS)
    return result

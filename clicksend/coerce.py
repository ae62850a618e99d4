"""Tolerant conversions of the loosely typed values ClickSend answers with.

The real service sends numbers as strings (``"0.0792"``, ``"1.00"``), empty strings for
"none" (``schedule: ""``), and the odd stray character (``"1721099039,"``). These
helpers never raise: a value they cannot read becomes the given default, so one odd
field can never cost a whole answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

_LEADING_NUMBER = re.compile(r"\s*([-+]?\d+(?:\.\d+)?)")


def to_str(value: Any) -> str | None:
    """A non-empty string, or None for None and blank strings."""
    if value is None:
        return None
    # A send answer carries a few strings per message: the common case skips str().
    text = value.strip() if type(value) is str else str(value).strip()
    return text or None


def to_int(value: Any, default: int | None = None) -> int | None:
    """An int from an int, float or numeric string (``"1.00"`` -> 1, ``"17,"`` -> 17)."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) != float("inf") else default
    if isinstance(value, str):
        match = _LEADING_NUMBER.match(value)
        if match:
            return int(Decimal(match.group(1)))
    return default


def to_timestamp(value: Any) -> int | None:
    """A Unix timestamp, or None for missing, empty and zero (ClickSend's "not set")."""
    stamp = to_int(value)
    return stamp if stamp else None


# Prices repeat (a thousand messages of one batch mostly cost the same): strings already
# read, bounded however many distinct prices pass through.
_DECIMALS: dict[str, Decimal] = {}
_DECIMALS_MAX = 4096


def to_decimal(value: Any, default: Decimal = Decimal("0")) -> Decimal:
    """A Decimal from a number or numeric string; floats go through str to keep 0.0792 exact."""
    if isinstance(value, bool) or value is None:
        return default
    if type(value) is str:
        known = _DECIMALS.get(value)
        if known is not None:
            return known
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return default
    if not result.is_finite():
        return default
    if type(value) is str and len(_DECIMALS) < _DECIMALS_MAX:
        _DECIMALS[value] = result
    return result


def to_bool(value: Any) -> bool:
    """ClickSend's 0/1, "0"/"1", true/false flags."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def as_mapping(value: Any) -> Mapping[str, Any]:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}

"""Recipient numbers: valid or not (by phonenumbers), in E.164, and their country.

Looked up once per distinct number and remembered, since a send of 1000 messages would
otherwise spend most of its time in the parser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumber

# phonenumbers' own pattern matcher, used to try the common number types first; a future
# phonenumbers without it just takes the slower general path.
_is_number_matching_desc: Callable[[str, Any], bool] | None = getattr(
    phonenumbers.phonenumberutil, "_is_number_matching_desc", None
)

# ClickSend's test numbers: accepted, "delivered", never sent nor charged.
TEST_NUMBERS = frozenset({"+61411111111", "+61422222222", "+14055555555", "+447777777777"})


@dataclass(frozen=True, slots=True)
class Recipient:
    """A number as ClickSend reports it."""

    e164: str
    country: str  # ISO region code, "" when unknown
    valid: bool
    test: bool


def _split_e164(text: str) -> PhoneNumber | None:
    """A PhoneNumber from "+<digits>" without the general parser (which is slow)."""
    digits = text[1:]
    if not (8 <= len(digits) <= 15 and digits.isdigit()):
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            zeros = len(national) - len(national.lstrip("0"))
            number = PhoneNumber(country_code=code, national_number=int(national or "0"))
            if zeros:
                number.italian_leading_zero = True
                number.number_of_leading_zeros = zeros
            return number
    return None


def _parse(text: str, region: str) -> PhoneNumber | None:
    number = _split_e164(text) if text.startswith("+") else None
    if number is not None:
        return number
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _e164(number: PhoneNumber) -> str:
    zeros = "0" * (number.number_of_leading_zeros or 0) if number.italian_leading_zero else ""
    return f"+{number.country_code}{zeros}{number.national_number}"


def _mobile_or_fixed(number: PhoneNumber, region: str) -> bool:
    """A quick yes: the number matches the region's mobile or fixed-line pattern.

    phonenumbers calls a number valid when it matches any type's pattern; trying the two
    common types first answers most numbers in a third of the time. A "no" proves nothing,
    so the caller then asks phonenumbers itself.
    """
    metadata = PhoneMetadata.metadata_for_region(region)
    if _is_number_matching_desc is None or metadata is None:
        return False
    national = phonenumbers.national_significant_number(number)
    return bool(
        _is_number_matching_desc(national, metadata.general_desc)
        and (
            _is_number_matching_desc(national, metadata.mobile)
            or _is_number_matching_desc(national, metadata.fixed_line)
        )
    )


def _region(number: PhoneNumber) -> str | None:
    """The region the number is valid in, or None when it is not valid."""
    main = phonenumbers.region_code_for_country_code(number.country_code or 0)
    if _mobile_or_fixed(number, main) or phonenumbers.is_valid_number_for_region(number, main):
        return main  # the common case, and far cheaper than scanning every region
    if len(
        COUNTRY_CODE_TO_REGION_CODE.get(number.country_code or 0, ())
    ) > 1 and phonenumbers.is_valid_number(number):
        return phonenumbers.region_code_for_number(number) or ""
    return None


@lru_cache(maxsize=250_000)
def lookup(text: str, region: str = "US") -> Recipient:
    """What ClickSend would make of ``text`` sent with default region ``region``."""
    raw = text.strip()
    if raw in TEST_NUMBERS:
        return Recipient(raw, _test_region(raw), True, True)
    number = _parse(raw, region)
    if number is None:
        return Recipient(raw, "", False, False)
    e164 = _e164(number)
    if e164 in TEST_NUMBERS:
        return Recipient(e164, _test_region(e164), True, True)
    found = _region(number)
    if found is None:
        return Recipient(
            e164, phonenumbers.region_code_for_country_code(number.country_code or 0), False, False
        )
    return Recipient(e164, found, True, False)


def _test_region(e164: str) -> str:
    return {"+61": "AU", "+14": "US", "+44": "GB"}[e164[:3]]

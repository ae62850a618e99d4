"""Recipient numbers: valid or not (by phonenumbers' metadata), in E.164, and their country.

Each distinct number is looked up once and remembered. Numbers written in E.164 take a fast
path: the region's general, mobile and fixed-line patterns from phonenumbers' metadata,
compiled once. A match there is exactly what phonenumbers calls valid; anything else goes
to phonenumbers' own parser and validity check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumber

# ClickSend's test numbers: accepted, "delivered", never sent nor charged.
TEST_NUMBERS = frozenset({"+61411111111", "+61422222222", "+14055555555", "+447777777777"})
_TEST_REGIONS = {"+61": "AU", "+14": "US", "+44": "GB"}

Pattern = tuple[frozenset[int], re.Pattern[str]]


@dataclass(frozen=True, slots=True)
class Recipient:
    """A number as ClickSend reports it."""

    e164: str
    country: str  # ISO region code, "" when unknown
    valid: bool
    test: bool


def _compile(desc: object) -> Pattern | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    return frozenset(getattr(desc, "possible_length", ()) or ()), re.compile(pattern)


@cache
def _patterns(region: str) -> tuple[Pattern, list[Pattern]] | None:
    """The region's general pattern and its mobile and fixed-line patterns."""
    metadata = PhoneMetadata.metadata_for_region(region)
    general = _compile(metadata.general_desc) if metadata else None
    if metadata is None or general is None:
        return None
    kinds = [p for p in (_compile(metadata.mobile), _compile(metadata.fixed_line)) if p]
    return general, kinds


def _matches(national: str, pattern: Pattern) -> bool:
    lengths, regex = pattern
    return (not lengths or len(national) in lengths) and regex.fullmatch(national) is not None


def _quick_valid(national: str, region: str) -> bool:
    """True when the number is surely valid in ``region`` (a mobile or fixed-line number)."""
    patterns = _patterns(region)
    if patterns is None:
        return False
    general, kinds = patterns
    return _matches(national, general) and any(_matches(national, p) for p in kinds)


def _split_e164(text: str) -> tuple[int, str] | None:
    """(country code, national significant number) of "+<digits>"."""
    digits = text[1:]
    if not (8 <= len(digits) <= 15 and digits.isdigit()):
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[size:]
    return None


def _parse(text: str, region: str) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _valid_region(number: PhoneNumber) -> str | None:
    """The region the number is valid in, per phonenumbers, or None when it is not valid."""
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.region_code_for_number(number) or ""


def _main_region(code: int | None) -> str:
    region = phonenumbers.region_code_for_country_code(code or 0)
    return "" if region == phonenumbers.UNKNOWN_REGION else region


@lru_cache(maxsize=250_000)
def lookup(text: str, region: str = "US") -> Recipient:
    """What ClickSend would make of ``text`` sent with default region ``region``."""
    raw = text.strip()
    if raw in TEST_NUMBERS:
        return Recipient(raw, _TEST_REGIONS[raw[:3]], True, True)
    split = _split_e164(raw) if raw.startswith("+") else None
    if split is not None:
        code, national = split
        main = _main_region(code)
        if _quick_valid(national, main):
            return Recipient(raw, main, True, False)
    number = _parse(raw, region)
    if number is None:
        return Recipient(raw, "", False, False)
    e164 = _e164(number)
    if e164 in TEST_NUMBERS:
        return Recipient(e164, _TEST_REGIONS[e164[:3]], True, True)
    found = _valid_region(number)
    if found is None:
        return Recipient(e164, _main_region(number.country_code), False, False)
    return Recipient(e164, found, True, False)

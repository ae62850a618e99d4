"""Phone numbers: parse what people type into E.164, and say where a number lives.

Everything per recipient is keyed on the E.164 form, so "(201) 555-0123" and
"+12015550123" are one recipient. Parsing and validation are phonenumbers' (Google's
libphonenumber metadata): a number is sendable exactly when ``phonenumbers.parse`` accepts
it, it has no extension and ``phonenumbers.is_valid_number`` holds.

Imports check millions of numbers, and phonenumbers spends ~50 us on each (a general
parser, then up to ten pattern matches per candidate region, and every +1 number tried
region by region). Numbers already written in E.164 ("+12015550123") take a short path
that reaches the same verdict from the same metadata with two pattern matches: the
metadata's patterns for one (country code, national number length) are joined into one
alternation once and kept. That path only ever says "valid"; everything else (other
spellings, numbers it cannot decide) goes through phonenumbers itself.
tests/test_campaigns_phones_fast.py holds the two to the same verdict over many generated numbers.
"""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import available_timezones

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberFormat,
)
from phonenumbers import timezone as number_zones

UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers answers when it cannot place a number

_PARSE_PROBLEMS = {
    NumberParseException.INVALID_COUNTRY_CODE: "no country code, or an unknown one",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


class InvalidPhone(ValueError):
    """A number that cannot be sent to; the message says why."""


def check_region(region: str) -> str:
    """The region code upper-cased, or ValueError when phonenumbers does not know it."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_region: unknown region {region!r} (use e.g. US, GB, AU)")
    return code


def _parse(raw: str, region: str | None) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        problem = _PARSE_PROBLEMS.get(exc.error_type, "not a phone number")
        raise InvalidPhone(f"{problem}: {raw!r}") from None


def normalise(raw: str, default_region: str) -> str:
    """``raw`` as E.164 ("+12015550123"). A number without a country code is read as a
    number of ``default_region``. Raises InvalidPhone saying why it is not sendable."""
    if (e164 := short_e164(raw)) is not None:
        return e164
    text = raw.strip()
    if not text:
        raise InvalidPhone("empty")
    number = _parse(text, default_region)
    if number.extension:
        raise InvalidPhone(f"has an extension, which a message cannot dial: {raw!r}")
    if not phonenumbers.is_valid_number(number):
        code = number.country_code or 0
        region = phonenumbers.region_code_for_country_code(code)
        where = region if region != "ZZ" else f"country code +{code}"
        raise InvalidPhone(f"not a valid number for region {where}: {raw!r}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# "+" and ASCII digits only: the one spelling the short path reads.
_E164_DIGITS = re.compile(r"\+[1-9][0-9]{2,19}")
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' bounds on a national significant number


class _Plan:
    """What phonenumbers would consult for numbers of one country code, prepared once.

    ``region`` is the first region of the code (the one ``parse`` strips a national
    prefix for and ``region_code_for_number`` tries first). ``by_length`` caches, per
    national number length, the general pattern and the alternation of every number type
    pattern that admits that length, or None when the region admits no number that long.
    """

    def __init__(self, metadata: PhoneMetadata) -> None:
        self.metadata = metadata
        prefix = metadata.national_prefix_for_parsing
        self.prefix = re.compile(prefix) if prefix else None
        self.by_length: dict[int, tuple[re.Pattern[str], re.Pattern[str]] | None] = {}

    def patterns(self, length: int) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
        if length not in self.by_length:
            self.by_length[length] = self._build(length)
        return self.by_length[length]

    def _build(self, length: int) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
        # phonenumbers' _number_type_helper: the general description must match, then
        # any type; mobile is consulted only when its pattern is not the fixed line's.
        m = self.metadata
        general = _pattern_for(m.general_desc, length)
        kinds = [
            m.premium_rate,
            m.toll_free,
            m.shared_cost,
            m.voip,
            m.personal_number,
            m.pager,
            m.uan,
            m.voicemail,
            m.fixed_line,
        ]
        if not m.same_mobile_and_fixed_line_pattern:
            kinds.append(m.mobile)
        types = [p for p in (_pattern_for(d, length) for d in kinds) if p is not None]
        if general is None or not types:
            return None
        # fullmatch of an alternation holds exactly when one alternative fullmatches.
        return re.compile(general), re.compile("|".join(f"(?:{t})" for t in types))


def _pattern_for(desc: object, length: int) -> str | None:
    """The desc's pattern if a number of ``length`` digits may match it (phonenumbers'
    _is_number_matching_desc: a listed possible length must include it)."""
    if desc is None:
        return None
    lengths = getattr(desc, "possible_length", ()) or ()
    pattern = getattr(desc, "national_number_pattern", None)
    if (lengths and length not in lengths) or not pattern:
        return None
    return str(pattern)


_PLANS: dict[int, _Plan | None] = {}


def _plan(code: int) -> _Plan | None:
    if code not in _PLANS:
        regions = COUNTRY_CODE_TO_REGION_CODE[code]
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
        # With several regions, phonenumbers picks the first whose leading digits match
        # or that the number is valid in; the short path decides only when the first
        # region has no leading digits, so "valid there" means it is the one picked.
        if metadata is not None and (len(regions) == 1 or metadata.leading_digits is None):
            _PLANS[code] = _Plan(metadata)
        else:
            _PLANS[code] = None
    return _PLANS[code]


def short_e164(raw: str) -> str | None:
    """``raw`` as E.164 when the short path finds it valid (it is written in E.164),
    else None: ``normalise`` then decides with phonenumbers."""
    text = raw.strip()
    return text if _E164_DIGITS.fullmatch(text) and valid_e164(text) else None


def valid_e164(text: str) -> bool:
    """True when ``text`` ("+" then ASCII digits) is certainly a valid number written in
    E.164, as phonenumbers would parse and validate it; False means "not decided here"."""
    digits = text[1:]
    # parse's country code: the shortest prefix of at most three digits that is one.
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    plan = _plan(code)
    national = digits[size:]
    if plan is None or not _MIN_NSN <= len(national) <= _MAX_NSN or national[0] == "0":
        return False  # leading zeros and odd lengths: phonenumbers decides
    if plan.prefix is not None and plan.prefix.match(national):
        return False  # parse might strip a national prefix: phonenumbers decides
    patterns = plan.patterns(len(national))
    if patterns is None:
        return False
    general, types = patterns
    return general.fullmatch(national) is not None and types.fullmatch(national) is not None


def timezones_for(e164: str) -> list[str]:
    """The IANA zones phonenumbers places the number in (may be ``["Etc/Unknown"]``)."""
    return list(number_zones.time_zones_for_number(_parse(e164, None)))


def region_of(e164: str) -> str | None:
    """ISO 3166 region of the number ("US", "GB"), or None for non-geographic numbers."""
    region = phonenumbers.region_code_for_number(_parse(e164, None))
    return None if region in (None, "ZZ", "001") else region


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone ("Europe/London"), else ValueError."""
    if name not in _zones():
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/London)")
    return name

"""Phone numbers: parse what people type into E.164, and say where a number lives.

Everything per recipient is keyed on the E.164 form, so "(201) 555-0123" and
"+12015550123" are one recipient. Parsing and validation are phonenumbers' (Google's
libphonenumber metadata); nothing here second-guesses it.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
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
    text = raw.strip()
    if not text:
        raise InvalidPhone("empty")
    number = _parse(text, default_region)
    if number.extension:
        raise InvalidPhone(f"has an extension, which a message cannot dial: {raw!r}")
    # Checking against the default region first skips phonenumbers' search for the
    # number's region (the costly part for +1 numbers); same answer for valid numbers.
    home = phonenumbers.is_valid_number_for_region(number, default_region.upper())
    if not home and not phonenumbers.is_valid_number(number):
        code = number.country_code or 0
        region = phonenumbers.region_code_for_country_code(code)
        where = region if region != "ZZ" else f"country code +{code}"
        raise InvalidPhone(f"not a valid number for region {where}: {raw!r}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


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

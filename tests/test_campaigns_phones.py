"""campaigns.phones: E.164 normalisation, validity, zones and regions."""

from __future__ import annotations

import pytest

from campaigns.phones import (
    InvalidPhone,
    check_region,
    check_timezone,
    normalise,
    region_of,
    timezones_for,
)


@pytest.mark.parametrize(
    "raw",
    [
        "+12015550123",
        "(201) 555-0123",
        "201-555-0123",
        "201.555.0123",
        "1 201 555 0123",
        " +1 201 555 0123 ",
    ],
)
def test_us_spellings_normalise_to_one_e164(raw: str) -> None:
    assert normalise(raw, "US") == "+12015550123"


def test_national_numbers_use_the_default_region() -> None:
    assert normalise("020 7946 0018", "GB") == "+442079460018"
    assert normalise("0412 345 678", "AU") == "+61412345678"


def test_a_country_code_wins_over_the_default_region() -> None:
    assert normalise("+44 20 7946 0018", "US") == "+442079460018"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("call me", "not a phone number"),
        ("555-0123", "not a valid number for region US"),
        ("+1 123 456 7890", "not a valid number for region US"),
        ("+44 20 7946 000", "not a valid number for region GB"),
        ("+999 1234 5678", "country code"),
        ("201-555-0123 ext. 12", "extension"),
    ],
)
def test_invalid_numbers_say_why(raw: str, why: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise(raw, "US")
    assert why in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_timezones_and_region_of_a_number() -> None:
    assert timezones_for("+12015550123") == ["America/New_York"]
    assert "Australia/Sydney" in timezones_for("+61412345678")
    assert timezones_for("+80012345678") == ["Etc/Unknown"]
    assert region_of("+12015550123") == "US"
    assert region_of("+442079460018") == "GB"
    assert region_of("+80012345678") is None


def test_text_that_is_not_a_number_is_rejected_by_the_lookups() -> None:
    with pytest.raises(InvalidPhone):
        timezones_for("nonsense")
    with pytest.raises(InvalidPhone):
        region_of("nonsense")


def test_region_and_zone_checks() -> None:
    assert check_region(" gb ") == "GB"
    with pytest.raises(ValueError, match="default_region: unknown region 'XX'"):
        check_region("XX")
    assert check_timezone("Europe/London") == "Europe/London"
    for bad in ("Mars/Olympus", "Etc/Unknown", "../etc/passwd", ""):
        with pytest.raises(ValueError, match="unknown time zone"):
            check_timezone(bad)

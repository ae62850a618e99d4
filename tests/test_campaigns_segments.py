"""SMS segment counting against ClickSend's rules: GSM 03.38 text is 160 septets in one
part, then 153 a part; an extension character takes two septets; any character outside
GSM 03.38 makes the whole message UCS-2, 70 then 67 UTF-16 units a part."""

from __future__ import annotations

import pytest

from campaigns.preview import encode
from clicksend.parts import GSM7_EXTENSION, sms_parts, sms_units, ucs2_trigger


@pytest.mark.parametrize(
    ("length", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (918, 6), (919, 6)]
)
def test_gsm7_boundaries(length: int, parts: int) -> None:
    encoded = encode("sms", "a" * length)
    assert (encoded.encoding, encoded.characters, encoded.parts) == ("gsm7", length, parts)
    assert encoded.ucs2_char is None
    assert encoded.truncated == (length > 918)


@pytest.mark.parametrize(
    ("length", "parts"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (402, 6), (403, 6)]
)
def test_ucs2_boundaries(length: int, parts: int) -> None:
    body = "Ж" * length
    encoded = encode("sms", body)
    assert (encoded.encoding, encoded.units, encoded.parts) == ("ucs2", length, parts)
    assert encoded.ucs2_char == "Ж"
    assert encoded.truncated == (length > 402)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION - {"\f"}))
def test_each_extension_character_takes_two_septets(char: str) -> None:
    assert sms_units(char) == 2
    # 80 of them fill one part exactly (160 septets); one more makes two parts.
    assert sms_parts(char * 80) == ("gsm7", 1)
    assert sms_parts(char * 81) == ("gsm7", 2)
    # 159 plain characters and one extension character: 161 septets.
    assert encode("sms", "a" * 159 + char).parts == 2
    assert encode("sms", "a" * 158 + char).parts == 1


def test_one_emoji_forces_ucs2_for_the_whole_message() -> None:
    plain = "a" * 100
    assert encode("sms", plain).parts == 1
    encoded = encode("sms", plain + "🎉")
    assert encoded.encoding == "ucs2"
    assert encoded.ucs2_char == "🎉"
    assert encoded.units == 102  # an emoji is two UTF-16 units
    assert encoded.parts == 2  # 102 units > 70


def test_the_first_character_outside_gsm_is_named() -> None:
    assert ucs2_trigger("Hello \u2018world\u2019") == "\u2018"
    assert ucs2_trigger("Héllo €uro [ok]") is None  # é, € and [ are all GSM-7
    assert ucs2_trigger("") is None

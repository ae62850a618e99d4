"""SMS and voice part counting (GSM 03.38 / UCS-2, ClickSend's truncation), in the product
(``clicksend.parts``) and in the sandbox's own copy (``sandbox.parts``): each is held to the
same hand-counted answers, so neither can drift without a failure here."""

from __future__ import annotations

import pytest

from clicksend.parts import sms_encoding, sms_parts, voice_parts
from sandbox import parts as sandbox_parts


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", ("gsm7", 0)),
        ("a", ("gsm7", 1)),
        ("a" * 160, ("gsm7", 1)),
        ("a" * 161, ("gsm7", 2)),
        ("a" * 306, ("gsm7", 2)),
        ("a" * 307, ("gsm7", 3)),
        ("a" * 153 * 6, ("gsm7", 6)),
        ("a" * 5000, ("gsm7", 6)),  # truncated past 6 parts
        ("é£$@ÄÖÑÜ§¿" * 16, ("gsm7", 1)),  # 160 basic-set characters
        ("€" * 80, ("gsm7", 1)),  # 80 extension characters = 160 septets
        ("€" * 81, ("gsm7", 2)),
        ("b" * 159 + "[", ("gsm7", 2)),  # 161 septets
        ("ж", ("ucs2", 1)),
        ("ж" * 70, ("ucs2", 1)),
        ("ж" * 71, ("ucs2", 2)),
        ("ж" * 134, ("ucs2", 2)),
        ("ж" * 135, ("ucs2", 3)),
        ("a" * 150 + "😀", ("ucs2", 3)),  # one emoji makes it all UCS-2; emoji = 2 units
        ("😀" * 35, ("ucs2", 1)),  # 70 UTF-16 units
        ("😀" * 36, ("ucs2", 2)),
        ("ж" * 1000, ("ucs2", 6)),
    ],
)
def test_sms_parts(body: str, expected: tuple[str, int]) -> None:
    assert sms_parts(body) == expected
    assert sandbox_parts.sms_parts(body) == expected[1]


def test_extension_character_is_not_split_across_parts() -> None:
    # 152 septets then an escape pair: the pair moves whole to the next part.
    body = "a" * 152 + "{" + "a" * 152
    assert sms_parts(body) == ("gsm7", 3)
    assert sandbox_parts.sms_parts(body) == 3
    body_without_split = "a" * 151 + "{" + "a" * 153
    assert sms_parts(body_without_split) == ("gsm7", 2)
    assert sandbox_parts.sms_parts(body_without_split) == 2


def test_encoding_names_every_gsm_basic_character() -> None:
    assert sms_encoding("Hello, World! 0123 @£$¥") == "gsm7"
    assert sms_encoding("Hello `backtick`") == "ucs2"  # ` is not in GSM 03.38


@pytest.mark.parametrize(
    ("body", "parts"),
    [("", 0), ("a", 1), ("a" * 300, 1), ("a" * 301, 2), ("a" * 1200, 4), ("a" * 5000, 4)],
)
def test_voice_parts(body: str, parts: int) -> None:
    assert voice_parts(body) == parts
    assert sandbox_parts.voice_parts(body) == parts

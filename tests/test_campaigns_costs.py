"""campaigns.costs: messages and parts by channel and encoding."""

from __future__ import annotations

import pytest

from campaigns.costs import estimate


def test_sms_parts_by_encoding() -> None:
    bodies = ["a" * 160, "a" * 161, "é" * 10, "ł" * 70, "ł" * 71, ""]
    result = estimate("sms", bodies)
    assert (result.messages, result.parts, result.truncated) == (6, 1 + 2 + 1 + 1 + 2 + 0, 0)
    assert result.by_encoding["gsm7"].messages == 4  # "é" is in GSM 03.38; "" counts as gsm7
    assert result.by_encoding["gsm7"].parts == 4
    assert (result.by_encoding["ucs2"].messages, result.by_encoding["ucs2"].parts) == (2, 3)


def test_sms_longer_than_six_parts_is_counted_as_truncated() -> None:
    result = estimate("sms", ["a" * (6 * 153), "a" * (6 * 153 + 1), "ł" * (6 * 67 + 1)])
    assert result.parts == 18
    assert result.truncated == 2


def test_extension_characters_take_two_septets() -> None:
    assert estimate("sms", ["€" * 80]).parts == 1
    assert estimate("sms", ["€" * 81]).parts == 2
    assert estimate("sms", ["€" * 460]).truncated == 1


def test_voice_credits_per_300_characters_at_most_four() -> None:
    result = estimate("voice", ["x" * 300, "x" * 301, "x" * 1300])
    assert (result.parts, result.truncated) == (1 + 2 + 4, 1)
    assert result.by_encoding["voice"].messages == 3


def test_mms_is_one_unit_each() -> None:
    result = estimate("mms", ["x" * 1500, "ł"])
    assert (result.messages, result.parts, list(result.by_encoding)) == (2, 2, ["mms"])


def test_empty_input_and_unknown_channel() -> None:
    assert estimate("sms", []).messages == 0
    with pytest.raises(ValueError, match="channel: unknown channel 'fax'"):
        estimate("fax", ["x"])

"""Fixed reference data: countries, voice languages and voices."""

from __future__ import annotations

from functools import cache
from typing import Any

import phonenumbers
from phonenumbers import geocoder

VOICES = ("female", "male")

# code -> (country, genders offered); ClickSend answers gender as a string or a list.
VOICE_LANGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "en-us": ("USA", ("female", "male")),
    "en-au": ("Australia", ("female", "male")),
    "en-gb": ("UK", ("female", "male")),
    "en-in": ("India", ("female",)),
    "en-gb-wls": ("Wales", ("female", "male")),
    "de-de": ("Germany", ("female", "male")),
    "fr-fr": ("France", ("female", "male")),
    "fr-ca": ("Canada", ("female",)),
    "es-es": ("Spain", ("female", "male")),
    "es-us": ("USA", ("female",)),
    "it-it": ("Italy", ("female", "male")),
    "nl-nl": ("Netherlands", ("female", "male")),
    "ja-jp": ("Japan", ("female",)),
    "pt-br": ("Brazil", ("female", "male")),
}


def voice_langs() -> list[dict[str, Any]]:
    """GET /voice/lang data."""
    return [
        {
            "code": code,
            "country": country,
            "gender": genders[0] if len(genders) == 1 else list(genders),
        }
        for code, (country, genders) in VOICE_LANGS.items()
    ]


@cache
def countries() -> list[dict[str, str]]:
    """GET /countries data: every region phonenumbers knows, with its English name."""
    rows = [
        {"code": code, "value": geocoder._region_display_name(code, "en") or code}
        for code in phonenumbers.SUPPORTED_REGIONS
    ]
    return sorted(rows, key=lambda row: row["value"])

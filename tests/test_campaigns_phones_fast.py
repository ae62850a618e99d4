"""The E.164 short path in campaigns.phones reaches phonenumbers' verdict for every number.

Numbers are generated from phonenumbers' own example numbers for every region and type
(valid ones), then mutated (a digit changed, dropped or added, the national part
replaced by random digits) into numbers that are mostly invalid, plus random digit
strings after a plus for every country code. ``normalise`` must answer exactly what
phonenumbers answers (parse, no extension, is_valid_number, E.164) for each of them.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneNumberType

from campaigns.phones import InvalidPhone, normalise, valid_e164


def reference(text: str, region: str) -> str | None:
    """phonenumbers' own verdict: the E.164 form of a sendable number, else None."""
    try:
        number = phonenumbers.parse(text.strip(), region)
    except NumberParseException:
        return None
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def ours(text: str, region: str) -> str | None:
    try:
        return normalise(text, region)
    except InvalidPhone:
        return None


def _examples() -> list[str]:
    found = []
    for code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            for kind in PhoneNumberType.values():
                if region == "001":
                    example = phonenumbers.example_number_for_non_geo_entity(code)
                else:
                    example = phonenumbers.example_number_for_type(region, kind)
                if example is not None:
                    found.append(
                        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                    )
    return sorted(set(found))


def _mutations(rnd: random.Random, e164: str) -> list[str]:
    digits = e164[1:]
    i = rnd.randrange(1, len(digits))
    changed = digits[:i] + str((int(digits[i]) + rnd.randrange(1, 10)) % 10) + digits[i + 1 :]
    code = next(
        c for c in (digits[:1], digits[:2], digits[:3]) if int(c) in COUNTRY_CODE_TO_REGION_CODE
    )
    national = "".join(rnd.choice("0123456789") for _ in range(len(digits) - len(code)))
    return [
        "+" + changed,
        "+" + digits[:i] + digits[i + 1 :],
        "+" + digits[:i] + rnd.choice("0123456789") + digits[i:],
        "+" + code + national,
        "+" + code + "0" + national,
        "+" + code + "1" + national,
        e164[:3] + " " + e164[3:],  # not E.164 spelling: the general path
    ]


def generated(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    numbers = _examples()
    for e164 in list(numbers):
        numbers += _mutations(rnd, e164)
    codes = sorted(COUNTRY_CODE_TO_REGION_CODE)
    while len(numbers) < count:
        code = str(rnd.choice(codes))
        length = rnd.randrange(1, 18)
        numbers.append("+" + code + "".join(rnd.choice("0123456789") for _ in range(length)))
    return numbers


@pytest.mark.parametrize("region", ["US", "GB", "DE", "IT", "CA"])
def test_the_short_path_gives_phonenumbers_verdict_for_every_number(region: str) -> None:
    numbers = generated(25_000, seed=sum(map(ord, region)))
    differ = [(n, ours(n, region), reference(n, region)) for n in numbers]
    differ = [d for d in differ if d[1] != d[2]]
    assert differ == []


def test_the_short_path_decides_most_valid_numbers_and_never_a_wrong_one() -> None:
    numbers = generated(25_000, seed=13)
    decided = [n for n in numbers if valid_e164(n)]
    valid = [n for n in numbers if reference(n, "US") == n]
    # Every number the short path accepts, phonenumbers accepts as the same E.164 text...
    assert [n for n in decided if reference(n, "US") != n] == []
    # ...and it decides the bulk of them (else the comparison above would prove little).
    assert len(decided) >= 0.8 * len(valid) > 1000
    # Invalid numbers are plentiful in the sample, so both verdicts are exercised.
    assert len(numbers) - len(valid) > 10_000

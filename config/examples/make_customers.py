"""Write ``customers.csv``, the demo contact list, deterministically (seeded).

10,000 data rows of US numbers in the fictional 555-0100..555-0199 range (which
phonenumbers accepts as valid), written the ways people type them, plus deliberate
problems for the import report and the campaign's failure reasons:

- 20 invalid numbers, 30 duplicates (an earlier number written differently),
- 2 empty rows, 1 row with a wrong column count,
- 8 rows with an empty first_name (spring-sale has no default for it).

Run: ``python config/examples/make_customers.py`` (rewrites the file next to it).
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import phonenumbers

SEED = 20261201
ROWS = 10_000
INVALID, DUPLICATES, EMPTY_ROWS, WRONG_WIDTH, NO_FIRST_NAME = 20, 30, 2, 1, 8
HEADER = ["phone_number", "first_name", "last_name", "email", "custom_1", "custom_2"]

AREA_CODES = (  # noqa: SIM905 - one string reads better than a column
    "201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 "
    "229 231 234 239 240 248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 "
    "303 304 305 307 308 309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 "
    "334 336 337 339 347 351 352 360 361 386 401 402 404 405 406 407 408 409 410 412 "
    "413 414 415 417 419 423 425 432 434 435 440 443 469 478 479 480 484 501 502 503 "
    "504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541 559 561 562 563"
).split()
FIRST = (  # noqa: SIM905 - one string reads better than a column
    "Ava Ben Chloe Dev Emma Finn Grace Hugo Isla Jack Kai Lena Liam Maya Noah Olga "
    "Priya Quinn Rosa Sam Tara Umar Vera Will Xena Yara Zoe José Zoë Łukasz Anaïs "
    "Søren"
).split()
LAST = (  # noqa: SIM905 - one string reads better than a column
    "Adams Brown Chen Diaz Evans Fischer Garcia Hughes Ito Jones Khan Lopez Miller "
    "Novak Okafor Patel Quinn Rossi Smith Tanaka Usman Varga Walker Young Zhang"
).split()
CITIES = ("Newark", "Austin", "Denver", "Miami", "Seattle", "Boston", "Phoenix", "Chicago")
# Each is rejected by phonenumbers for the US region (checked below).
INVALID_NUMBERS = (
    "555-0123",
    "+1 123 456 7890",
    "12345",
    "not a number",
    "+1 201 555 01234",
    "(000) 555-0100",
    "+44 20 7946 000",
    "999",
    "+1 911 555 0100",
    "201-555-01",
    "+1 (201) 555",
    "call me",
    "0",
    "+1 555 555 5555",
    "1-800-FLOWERS-NOW-PLEASE",
    "+999 1234 5678",
    "n/a",
    "+1 201 055 0123",
    "201 155 0123",
    "+1",
)


def valid_numbers() -> list[str]:
    numbers = []
    for area in AREA_CODES:
        for line in range(100, 200):
            e164 = f"+1{area}5550{line}"
            if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
                numbers.append(e164)
    return numbers


def written(e164: str, style: int) -> str:
    """The number as a person might type it."""
    area, exchange, line = e164[2:5], e164[5:8], e164[8:]
    return (
        e164,
        f"({area}) {exchange}-{line}",
        f"{area}-{exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"1 {area} {exchange} {line}",
        f"+1 {area} {exchange} {line}",
    )[style % 6]


def contact(rng: random.Random, phone: str, index: int) -> list[str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    appointment = (
        f"2026-12-{rng.randint(1, 28):02d}T{rng.randint(9, 17):02d}:{rng.choice((0, 30)):02d}"
    )
    email = f"{first.lower()}.{last.lower()}{index}@example.com"
    return [phone, first, last, email, appointment, rng.choice(CITIES)]


def build_lines(rng: random.Random) -> list[str]:
    pool = valid_numbers()
    rng.shuffle(pool)
    problems = INVALID + DUPLICATES + EMPTY_ROWS + WRONG_WIDTH
    unique = pool[: ROWS - problems]
    rows = [contact(rng, written(p, rng.randrange(6)), i) for i, p in enumerate(unique)]
    for i in rng.sample(range(len(rows)), NO_FIRST_NAME):
        rows[i][1] = ""
    for i, bad in enumerate(INVALID_NUMBERS):
        rows.insert(rng.randrange(len(rows)), contact(rng, bad, 90_000 + i))
    for i, e164 in enumerate(rng.sample(unique, DUPLICATES)):
        # A different spelling of an earlier number, placed after the first one.
        spellings = [written(e164, style) for style in range(6)]
        first_at = next(n for n, r in enumerate(rows) if r[0] in spellings)
        other = rng.choice([s for s in spellings if s != rows[first_at][0]])
        rows.insert(rng.randrange(first_at + 1, len(rows) + 1), contact(rng, other, 95_000 + i))
    lines = [_csv_line(r) for r in [HEADER, *rows]]
    lines.insert(rng.randrange(10, len(lines)), "")  # a blank line
    lines.insert(rng.randrange(10, len(lines)), "," * (len(HEADER) - 1))  # all cells empty
    extra = _csv_line(contact(rng, "+12015550100", 99_000)) + ",unexpected"
    lines.insert(rng.randrange(10, len(lines)), extra)  # one column too many
    return lines


def _csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def main() -> None:
    for bad in INVALID_NUMBERS:
        try:
            number = phonenumbers.parse(bad, "US")
        except phonenumbers.NumberParseException:
            continue
        assert not phonenumbers.is_valid_number(number), bad
    lines = build_lines(random.Random(SEED))
    target = Path(__file__).with_name("customers.csv")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {target} ({len(lines) - 1} data rows)")


if __name__ == "__main__":
    main()

"""The set-based part of a preview: the database reads the whole audience once and
answers with a few hundred groups of recipients, each group judged, encoded and priced
once in Python (``campaigns.preview``).

A group is recipients whose verdicts cannot differ: the same status (suppressed, failed
with the same missing fields, or a message), the same first eight characters of the
number (its country, as ``country_of`` has it) and, for a message, the same length and
class of body (``clicksend.parts.sms_class``: a body of basic GSM-7 characters, or of
UCS-2 characters none beyond the BMP, encodes by its length alone). The first contact of
a number is the one counted, as in the row-by-row preview and the expansion.

The database judges a recipient only where Python's rule is certain, as the expansion's
rendering in SQL does (``campaigns.expand._SqlChunks``): an ASCII E.164 number, and each
placeholder's value a text with an ASCII letter or digit (on PostgreSQL, a JSON number or
true/false too: Python reads its JSON text there), or no value at all. Any other
recipient (a blank or other value, a number that is not plain E.164, a body whose parts
depend on where its two-unit characters fall) is status ``u``: read again and judged row
by row in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from clicksend.parts import ASTRAL, BASIC, EXTENDED, GSM7_BASIC, GSM7_CHARS, WIDE, sms_class

PREFIX = 8  # characters of a number that decide its country (campaigns.preview)


@dataclass(frozen=True)
class Group:
    """Recipients of one verdict (``by_prefix`` False: status, missing fields, body) or of
    one status and number prefix (True)."""

    by_prefix: bool
    status: str  # d (a number seen before) | u (row by row) | s | f | m
    prefix: str | None
    missing: int  # f: bit i set when the i-th failing field is missing
    length: int | None  # m: the body's length, None when the body is the same for all
    cls: int | None  # m: the body's sms_class
    count: int
    parts: int  # m: the group's parts
    phone: str | None  # one number of the group (for its country)


# Past this many characters a body of every channel is at its part limit.
LONGEST = 2000


def _runs(count: Callable[[int], int], column: str) -> str:
    """A CASE giving ``count(n)`` for ``column`` = n: ``count`` never falls as n grows and
    is the same past LONGEST, so the CASE needs an arm only where it changes (found by
    bisection)."""
    if count(LONGEST) != count(2 * LONGEST):
        raise ValueError(f"parts past {LONGEST} characters: not at the channel's limit")
    arms, n, value, last = [], 0, count(0), count(LONGEST)
    while value != last:
        low, high = n + 1, LONGEST  # the first length with another count
        while low < high:
            middle = (low + high) // 2
            if count(middle) != value:
                high = middle
            else:
                low = middle + 1
        arms.append(f"WHEN {column} <= {low - 1} THEN {value}")
        n, value = low, count(low)
    return f"(CASE {' '.join(arms)} ELSE {last} END)" if arms else str(last)


def _bracket(chars: frozenset[str], postgres: bool) -> str:
    """``chars`` as the inside of a bracket expression (POSIX regex or GLOB): "]" first,
    "-" last, a backslash escaped for PostgreSQL."""
    rest = sorted(chars - {"]", "-", "\\", "["})
    head = "]" if "]" in chars else ""
    tail = ("[" if "[" in chars else "") + ("-" if "-" in chars else "")
    body = "".join(rest)
    if "\\" in chars:
        body += "\\\\" if postgres else "\\"
    return head + body + tail


class AudienceSql:
    """The queries of one preview: ``groups`` and the rows to judge row by row."""

    def __init__(
        self,
        postgres: bool,
        list_ids: list[int],
        literals: tuple[str, ...],
        names: tuple[str, ...],
        defaults: dict[str, str],
        failing: list[str],
        parts: Callable[[int, int], int],
        fixed: int,
    ) -> None:
        """``parts(cls, length)``: the parts of a body of that class and length;
        ``fixed``: those of the body with no value of its own (the literal text and the
        defaults), if there can be one."""
        self.postgres = postgres
        ids = ", ".join(str(int(i)) for i in list_ids)
        basic = _bracket(GSM7_BASIC, postgres)
        self.params: dict[str, Any] = {}
        if postgres:
            self.params.update(
                # every character basic GSM-7, one of them an ASCII letter or digit
                plain=f"^[{basic}]*[0-9A-Za-z][{basic}]*$",
                alnum="[0-9A-Za-z]",
                bmp="^[\\u0001-\\uFFFF]*$",
                nongsm=f"[^{_bracket(GSM7_CHARS, True)}]",
            )
        else:
            self.params.update(
                basic=f"*[^{basic}]*",
                alnum="*[0-9A-Za-z]*",
                bmp="*[^\u0001-\uffff]*",
                nongsm=f"*[^{_bracket(GSM7_CHARS, False)}]*",
            )
        # Python's E.164 test (campaigns.preview), for ASCII digits.
        e164 = (
            "length(c.phone) BETWEEN 8 AND 16 AND substr(c.phone, 1, 1) = '+'"
            " AND ltrim(substr(c.phone, 2), '0123456789') = ''"
        )
        unique = [n for n in dict.fromkeys(names) if n != "phone_number"]
        # a: each contact with its suppression and its fields' JSON (read once each).
        columns = ["c.id", "c.phone", "CASE WHEN s.id IS NULL THEN 0 ELSE 1 END AS sup"]
        if len(list_ids) > 1:  # one list holds a number once (uq_contacts_list_phone)
            columns.append("row_number() OVER (PARTITION BY c.phone ORDER BY c.id) AS n")
        else:
            columns.append("1 AS n")
        columns.append(f"CASE WHEN {e164} THEN 1 ELSE 0 END AS e164")
        # v: each field's JSON type and text.
        typed = ["a.id", "a.phone", "a.sup", "a.n", "a.e164"]
        # b: each field's class (sms_class; -1: no certain value) and length, 1/0 whether
        # it has no value at all (absent).
        derived = ["v.id", "v.phone", "v.sup", "v.n", "v.e164"]
        for i, name in enumerate(unique):
            value = f"v.v{i}"
            if postgres:
                columns.append(f"c.fields -> '{name}' AS j{i}")
                typed += [f"json_typeof(a.j{i}) AS t{i}", f"a.j{i} #>> '{{}}' AS v{i}"]
                cls = (
                    f"CASE WHEN v.t{i} = 'string' THEN CASE WHEN {value} ~ :plain THEN {BASIC}"
                    f" WHEN {value} !~ :alnum THEN -1 WHEN {value} !~ :bmp THEN {ASTRAL}"
                    f" WHEN {value} ~ :nongsm THEN {WIDE} ELSE {EXTENDED} END"
                    # A number or true/false reaches Python as the JSON text (->>), as here.
                    f" WHEN v.t{i} IN ('number', 'boolean') THEN {BASIC} ELSE -1 END"
                )
                absent = f"v.t{i} IS NULL OR v.t{i} = 'null'"
                length = f"char_length({value})"
            else:
                columns.append(f"json_type(c.fields, '$.{name}') AS t{i}")
                columns.append(f"json_extract(c.fields, '$.{name}') AS j{i}")
                typed += [f"a.t{i} AS t{i}", f"a.j{i} AS v{i}"]
                # GLOB and length() stop at a NUL: a value holding one goes row by row.
                cls = (
                    f"CASE WHEN v.t{i} = 'text' AND {value} GLOB :alnum"
                    f" AND instr(CAST({value} AS BLOB), x'00') = 0 THEN"
                    f" CASE WHEN {value} NOT GLOB :basic THEN {BASIC}"
                    f" WHEN {value} GLOB :bmp THEN {ASTRAL}"
                    f" WHEN {value} GLOB :nongsm THEN {WIDE} ELSE {EXTENDED} END ELSE -1 END"
                )
                absent = f"v.t{i} IS NULL OR v.t{i} = 'null'"
                length = f"length({value})"
            derived += [
                f"{cls} AS cl{i}",
                f"CASE WHEN {absent} THEN 1 ELSE 0 END AS ab{i}",
                f"{length} AS ln{i}",  # read only where cl{i} >= 0
            ]
        index = {name: i for i, name in enumerate(unique)}
        # k: the recipient's group key. The body: the literal text, then each placeholder's
        # value where it has one, else its default.
        certain = " AND ".join(f"(b.cl{i} >= 0 OR b.ab{i} = 1)" for i in index.values()) or "1 = 1"
        mask = " + ".join(
            f"CASE WHEN b.ab{index[n]} = 1 THEN {1 << j} ELSE 0 END" for j, n in enumerate(failing)
        )
        lengths = [str(sum(len(x) for x in literals))]
        classes = [str(max(sms_class(x) for x in literals))]
        uses = []
        for name in names:
            if name == "phone_number":  # the contact's own number (E.164 here): basic
                lengths.append("length(b.phone)")
                uses.append("1")
                continue
            i = index[name]
            default = defaults.get(name, "")
            lengths.append(f"CASE WHEN b.cl{i} >= 0 THEN b.ln{i} ELSE {len(default)} END")
            classes.append(f"CASE WHEN b.cl{i} >= 0 THEN b.cl{i} ELSE {sms_class(default)} END")
            uses.append(f"CASE WHEN b.cl{i} >= 0 THEN 1 ELSE 0 END")
        largest = "greatest" if postgres else "max"
        body_class = f"{largest}({', '.join(classes)})" if len(classes) > 1 else classes[0]
        # Any placeholder with the recipient's own value: else the body is the literal
        # text with the defaults, the same for every such recipient.
        any_use = f"{largest}({', '.join(uses)})" if len(uses) > 1 else (uses or ["0"])[0]
        status = (
            "CASE WHEN b.n > 1 THEN 'd' WHEN b.e164 = 0 THEN 'u' WHEN b.sup = 1 THEN 's'"
            f" WHEN NOT ({certain}) THEN 'u'"
            + (f" WHEN ({mask}) > 0 THEN 'f'" if failing else "")
            + f" WHEN {any_use} = 1 AND {body_class} NOT IN ({BASIC}, {WIDE}) THEN 'u'"
            " ELSE 'm' END"
        )
        # Each level is kept from being merged into the next (an OFFSET): merged, the
        # database would read each JSON document and match each value once for every
        # use of it above.
        fence = " OFFSET 0" if postgres else " LIMIT -1 OFFSET 0"
        keyed = (
            f"SELECT b.id, b.phone, {status} AS st, {any_use} AS uses,"
            f" {mask or '0'} AS mask, {' + '.join(lengths)} AS len, {body_class} AS cls"
            f" FROM (SELECT {', '.join(derived)} FROM (SELECT {', '.join(typed)}"
            f" FROM (SELECT {', '.join(columns)}"
            " FROM contacts c LEFT JOIN suppressions s ON s.phone = c.phone"
            f" WHERE c.list_id IN ({ids}){fence}) a{fence}) v{fence}) b{fence}"
        )
        # Parts per recipient, for the totals by number prefix: from the body's length and
        # class, as ``parts`` (Python's rule) has them.
        by_class = {kind: _runs(partial(parts, kind), "len") for kind in (BASIC, WIDE)}
        grouped = (
            "SELECT st,"
            f" CASE WHEN st IN ('s', 'f', 'm') THEN substr(phone, 1, {PREFIX}) END AS pre,"
            " CASE WHEN st = 'f' THEN mask ELSE 0 END AS fmask,"
            " CASE WHEN st = 'm' AND uses = 1 THEN len END AS mlen,"
            " CASE WHEN st = 'm' AND uses = 1 THEN cls END AS mcls,"
            f" CASE WHEN st <> 'm' THEN 0 WHEN uses = 0 THEN {int(fixed)}"
            f" WHEN cls = {BASIC} THEN {by_class[BASIC]} ELSE {by_class[WIDE]} END AS parts,"
            f" phone FROM ({keyed}) k"
        )
        # Two groupings of the recipients: by verdict (status, missing fields, body) for
        # the totals, and by status and number prefix for the countries.
        if postgres:
            self.groups_sql = text(
                "SELECT GROUPING(pre), st, pre, fmask, mlen, mcls, count(*), sum(parts),"
                f" min(phone) FROM ({grouped}{fence}) g"
                " GROUP BY GROUPING SETS ((st, fmask, mlen, mcls), (st, pre))"
            )
        else:
            self.groups_sql = text(
                f"WITH g AS ({grouped})"
                " SELECT 1, st, NULL, fmask, mlen, mcls, count(*), sum(parts), NULL FROM g"
                " GROUP BY st, fmask, mlen, mcls"
                " UNION ALL SELECT 0, st, pre, 0, NULL, NULL, count(*), sum(parts), min(phone)"
                " FROM g GROUP BY st, pre"
            )
        if postgres:
            values = [f"c.fields ->> '{n}'" for n in sorted(set(unique))]
        else:
            values = [f"json_extract(c.fields, '$.\"{n}\"')" for n in sorted(set(unique))]
        self.value_names = sorted(set(unique))
        self.rows_sql = text(
            f"SELECT c.id, c.phone, s.id IS NOT NULL{''.join(', ' + v for v in values)}"
            " FROM contacts c LEFT JOIN suppressions s ON s.phone = c.phone"
            f" WHERE c.id IN (SELECT id FROM ({keyed}) k WHERE st = 'u') ORDER BY c.id"
        ).execution_options(yield_per=10_000)

    def groups(self, session: Session) -> list[Group]:
        with self._no_jit(session):
            rows = session.execute(self.groups_sql, self.params).all()
        return [
            Group(
                not verdict,
                st,
                pre,
                int(mask or 0),
                None if ln is None else int(ln),
                cls,
                int(n),
                int(parts or 0),
                phone,
            )
            for verdict, st, pre, mask, ln, cls, n, parts, phone in rows
        ]

    def odd_rows(self, session: Session) -> Iterator[Any]:
        """(id, phone, suppressed, value of each field in ``value_names``) of the
        recipients judged row by row, in contact order, streamed."""
        with self._no_jit(session):
            yield from session.execute(self.rows_sql, self.params)

    @contextmanager
    def _no_jit(self, session: Session) -> Iterator[None]:
        """PostgreSQL's JIT off for one query: these queries cost enough for it to compile
        them, which takes longer (seconds) than they run."""
        if not self.postgres:
            yield
            return
        was = session.scalar(text("SELECT current_setting('jit')"))
        session.execute(text("SELECT set_config('jit', 'off', true)"))
        try:
            yield
        finally:
            session.execute(text("SELECT set_config('jit', :was, true)"), {"was": was})

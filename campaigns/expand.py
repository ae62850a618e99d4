"""Expand a run into one message row per recipient, in bulk and streaming.

Contacts are read in keyset-paged chunks and written with INSERT ... ON CONFLICT DO
NOTHING on (run_id, phone) (on PostgreSQL, a run over one list COPYs its rows straight
in: no number can repeat there), so the same number in two lists is sent once, a 1M-row
audience never sits in memory, and expanding the same run twice adds nothing. Each chunk
commits with its rows, so a second expansion starts after the last contact written.

A run with no per-recipient plan and a body of plain substitutions is rendered by the
database: each chunk is one INSERT ... SELECT from the contacts with the suppression join,
and on PostgreSQL a run over one list has two chunks written at once on two connections
(``_in_sql``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg.errors import UniqueViolation
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns import expansion_lease
from campaigns.bulk import copy_text, copy_text_to_stage
from campaigns.clock import db_now_sql
from campaigns.definition import CampaignDefinition, load_definition
from campaigns.models import Campaign, Contact, ContactList, Message, Run, table
from campaigns.runs import set_run_status
from campaigns.templates import MissingField, compile_template, template_parts

# An expansion goes on writing while its run is paused (resume then needs no second
# pass); any other state (cancelled) stops it.
EXPANDABLE = ("scheduled", "expanding", "paused")


@dataclass(frozen=True)
class SendPlan:
    """When one recipient's message may go out, or why it must not."""

    not_before: datetime | None = None
    skip_reason: str | None = None
    # Hand the message to the provider now with this future `schedule` (unix seconds),
    # instead of holding it here until it is due.
    provider_schedule: int | None = None


# (phone, contact fields, contact time zone, run occurrence) -> plan; the scheduler supplies
# one for reminders and send windows. None means "send as soon as possible".
Planner = Callable[[str, dict[str, Any], str | None, datetime], SendPlan]


@dataclass
class ExpandReport:
    run_id: int
    candidates: int = 0
    messages: int = 0
    duplicates_removed: int = 0
    suppressed: int = 0
    failed: int = 0
    skipped: int = 0
    # Stopped after a chunk because its turn was over (``turn_seconds``); the run is still
    # expanding and the next expansion takes up from the last contact written.
    yielded: bool = False


def _render_message(
    render: Callable[[dict[str, Any], dict[str, str]], str],
    defaults: dict[str, str],
    phone: str,
    fields: dict[str, Any],
) -> tuple[str, str | None]:
    try:
        return render({**fields, "phone_number": phone}, defaults), None
    except MissingField as exc:
        return "", f"missing field {exc.field}"


def variables_renderer(
    variables: dict[str, str],
) -> Callable[[dict[str, Any], dict[str, str]], str]:
    """For a provider template (SkillBoss notify-send): each variable is itself a
    template; the message body stores the rendered variables as JSON."""
    compiled = {name: compile_template(value) for name, value in variables.items()}

    def render(fields: dict[str, Any], defaults: dict[str, str]) -> str:
        return json.dumps({name: r(fields, defaults) for name, r in compiled.items()})

    return render


def body_renderer(
    defn: CampaignDefinition, template_body: str | None
) -> Callable[[dict[str, Any], dict[str, str]], str]:
    if defn.provider == "skillboss" and isinstance(defn.message.template_id, str):
        return variables_renderer(dict(defn.message.variables or {}))
    return compile_template(message_body_template(defn, template_body))


def message_body_template(defn: CampaignDefinition, template_body: str | None) -> str:
    if defn.message.body is not None:
        return defn.message.body
    if template_body is None:
        raise ValueError("message.template_id: the template's body was not fetched")
    return template_body


def expand_run(
    session: Session,
    run_id: int,
    *,
    template_body: str | None = None,
    planner: Planner | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    owner: str | None = None,
    turn_seconds: float | None = None,
) -> ExpandReport:
    """Write the run's message rows and move it to 'sending'. Commits per chunk
    (``chunk_size`` contacts; by default 5,000, or 20,000 when the database renders, a
    chunk well inside the expansion's lease).

    ``owner``: the run's expansion lease, taken by the caller (``campaigns.expansion_lease``);
    without it the expansion takes the lease itself, and does nothing while another
    expansion holds it.

    ``turn_seconds``: stop after the first chunk written past this long (``yielded``), so
    a worker's only slot goes to the dispatch turns queued meanwhile; the caller enqueues
    the rest of the expansion after them."""
    if owner is None:
        with expansion_lease.expansion_lease(session, run_id) as taken:
            if taken is None:
                return ExpandReport(run_id=run_id, messages=_count(session, run_id))
            return expand_run(
                session,
                run_id,
                template_body=template_body,
                planner=planner,
                chunk_size=chunk_size,
                progress=progress,
                owner=taken,
                turn_seconds=turn_seconds,
            )
    run = session.get(Run, run_id)
    if run is None:
        raise ValueError(f"run {run_id}: no such run")
    report = ExpandReport(run_id=run_id)
    if run.status not in ("scheduled", "expanding"):
        report.messages = _count(session, run_id)
        report.duplicates_removed = run.duplicates_removed
        return report
    set_run_status(session, run_id, "expanding", expected=("scheduled", "expanding"))
    session.commit()

    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    defn = load_definition(campaign.definition)
    render = body_renderer(defn, template_body)
    defaults = dict(defn.message.defaults)
    list_ids = list(
        session.scalars(
            select(ContactList.id).where(
                ContactList.name.in_(defn.audience.lists)
                | ContactList.clicksend_list_id.in_(defn.audience.clicksend_lists)
            )
        )
    )

    if session.get_bind().dialect.name == "postgresql":
        _fresh_contact_statistics(session)
    read = _ContactReader(session, list_ids, chunk_size or PYTHON_CHUNK)
    writer = _MessageWriter(session, run_id, single_list=len(list_ids) == 1)
    # A chunk commits with all its rows, so an expansion that died is resumed after the
    # last contact it wrote (ON CONFLICT would skip the rows again, at a cost).
    last_id = writer.resume_after()
    if last_id:  # the contacts read before count as candidates too
        report.candidates = int(
            session.scalar(
                select(func.count()).where(Contact.list_id.in_(list_ids), Contact.id <= last_id)
            )
            or 0
        )
    occurrence = run.occurrence
    # No per-recipient plan and a body of plain substitutions: the database renders and
    # writes each chunk itself (one INSERT ... SELECT), unless a contact of the chunk
    # needs Python's exact rules (a blank or non-text field), then that chunk goes below.
    parts = template_parts(render) if planner is None else None
    in_sql = (
        _SqlChunks(session, run_id, list_ids, parts, defaults, chunk_size or SQL_CHUNK)
        if parts is not None and list_ids
        else None
    )

    def keep(chunk_session: Session, count: int) -> bool:
        """Commit the chunk just written on ``chunk_session`` if the run still wants it."""
        if not _still_wanted(chunk_session, run_id, owner):
            chunk_session.rollback()
            return False
        chunk_session.commit()
        report.candidates += count
        if progress:
            progress(count)
        return True

    def python_chunk(after: int) -> int:
        """Write the next chunk row by row on the session; the last contact's id (0: none)."""
        rows = read(after)
        if not rows:
            return 0
        writer.write(_message_rows(rows, render, defaults, planner, occurrence))
        return rows[-1][0] if keep(session, len(rows)) else -1

    turn_ends = None if turn_seconds is None else time.monotonic() + turn_seconds

    def turn_over() -> bool:
        return turn_ends is not None and time.monotonic() >= turn_ends

    if in_sql is None:
        while (last := python_chunk(last_id)) > 0:
            last_id = last
            if turn_over():
                report.yielded = True
                return report
        if last < 0:
            return report
    else:
        ended = _in_sql(session, in_sql, writer, last_id, keep, python_chunk, turn_over)
        if ended != "done":
            report.yielded = ended == "yielded"
            return report

    expansion_lease.renew(session, run_id, owner, expansion_lease.STEP_SECONDS)
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics after a bulk load: without them the planner takes the new rows
        # for a small table and scans all of it for every batch it updates.
        session.execute(text("ANALYZE messages"))
    report.messages = _count(session, run_id)
    report.duplicates_removed = report.candidates - report.messages
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(EXPANDABLE))
        .values(duplicates_removed=report.duplicates_removed, expanded_at=db_now_sql(session))
    )
    # A run paused meanwhile stays paused; its resume finds it expanded.
    set_run_status(session, run_id, "sending", expected=("expanding",))
    session.commit()
    for status, count in session.execute(
        select(Message.status, func.count())
        .where(Message.run_id == run_id)
        .group_by(Message.status)
    ):
        if status == "suppressed":
            report.suppressed = count
        elif status == "failed":
            report.failed = count
        elif status == "skipped":
            report.skipped = count
    return report


def _in_sql(
    session: Session,
    chunks: _SqlChunks,
    writer: _MessageWriter,
    last_id: int,
    keep: Callable[[Session, int], bool],
    python_chunk: Callable[[int], int],
    turn_over: Callable[[], bool],
) -> Literal["done", "stopped", "yielded"]:
    """Write the audience after ``last_id`` in chunks the database renders (a chunk
    that needs Python goes by ``python_chunk``): "done", "stopped" if the run stopped
    wanting them, "yielded" after the chunk that ended the expansion's turn.

    PostgreSQL writes the next chunk of a one-list run on a second connection while the
    one before finishes (both cores at work: the backend's insert is the cost, not
    Python's); chunks still commit one after the other in contact order, each after its
    run status check, so a resumed expansion may start after the last contact written.
    The first chunk commits alone, so sending may start as soon as it can.
    """
    sessions = [session]
    # Two chunks at once only while no row can collide (``writer.direct``: one list, whose
    # numbers are unique): over several, a later chunk may write a number first and the
    # earlier one wait on its transaction, which commits after the earlier one (a hang,
    # and the wrong contact kept).
    if writer.direct:
        sessions.append(Session(bind=session.get_bind()))
    pool = ThreadPoolExecutor(max_workers=len(sessions))
    # The chunk being written: its write, its session and its size.
    inflight: tuple[Future[None], Session, int] | None = None
    committed = 0
    try:
        turn = 0
        while True:
            here = sessions[turn % len(sessions)]
            turn += 1
            if inflight is not None and (inflight[1] is here or not committed):
                done, inflight = inflight, None
                done[0].result()
                if not keep(done[1], done[2]):
                    return "stopped"
                committed += 1
            if committed and turn_over():
                if inflight is not None:
                    done, inflight = inflight, None
                    done[0].result()
                    if not keep(done[1], done[2]):
                        return "stopped"
                return "yielded"
            count, last, odd = chunks.bounds(here, last_id)
            job = None
            if count and not odd:
                statement, params = chunks.insert(last_id, last)
                write = Future[None]()
                if len(sessions) > 1:
                    write = pool.submit(writer.insert_select, here, statement, params)
                else:  # one connection: written here and now
                    writer.insert_select(here, statement, params)
                    write.set_result(None)
                job = (write, here, count)
                last_id = last
            if inflight is not None:
                done, inflight = inflight, None
                done[0].result()
                if not keep(done[1], done[2]):
                    if job is not None:
                        job[0].result()
                        job[1].rollback()
                    return "stopped"
                committed += 1
            if job is not None:
                inflight = job
                continue
            if not count:
                return "done"
            last = python_chunk(last_id)  # nothing in flight: a chunk row by row
            if last < 0:
                return "stopped"
            last_id = last
            committed += 1
    finally:
        pool.shutdown(wait=True)
        for other in sessions[1:]:
            other.close()


NO_PLAN = SendPlan()
# Contacts per chunk (one commit and one run status check each): rows built in Python, or
# rendered and written by the database.
PYTHON_CHUNK = 5000
SQL_CHUNK = 20_000
# One contact as the expansion reads it: (id, phone, fields, time zone, suppressed).
ContactRow = tuple[int, str, dict[str, Any], str | None, bool]
# One message row: (contact id, phone, body, status, error, not_before, provider_schedule).
MessageRow = tuple[int, str, str, str, str | None, datetime | None, int | None]
_WRITTEN = (
    "run_id",
    "contact_id",
    "phone",
    "body",
    "status",
    "error",
    "not_before",
    "provider_schedule",
    "attempts",
)


def _message_rows(
    rows: list[ContactRow],
    render: Callable[[dict[str, Any], dict[str, str]], str],
    defaults: dict[str, str],
    planner: Planner | None,
    occurrence: datetime,
) -> list[MessageRow]:
    """Each contact's message row: suppressed, failed (a field missing), skipped by its
    plan, or pending."""
    batch: list[MessageRow] = []
    for contact_id, phone, fields, zone, suppressed in rows:
        body, error = _render_message(render, defaults, phone, fields)
        status = "pending"
        plan = NO_PLAN
        if suppressed:
            status, error = "suppressed", "number opted out"
        elif error is not None:
            status = "failed"
        elif planner is not None:
            plan = planner(phone, fields, zone, occurrence)
            if plan.skip_reason:
                status, error = "skipped", plan.skip_reason
        batch.append(
            (contact_id, phone, body, status, error, plan.not_before, plan.provider_schedule)
        )
    return batch


class _SqlChunks:
    """A chunk of contacts rendered and written by the database, as ``_message_rows``
    would: one INSERT ... SELECT with the suppression join.

    A placeholder's value is taken in SQL only where Python's rule is certain: a text
    value with a letter or digit (not blank, whatever ``str.strip`` counts as space), or
    no value at all (the default, else the row fails naming the first such field). A
    contact with any other value (blank, whitespace, a number, a list) makes its chunk
    go through Python, so every body is what ``campaigns.templates`` renders.
    """

    def __init__(
        self,
        session: Session,
        run_id: int,
        list_ids: list[int],
        parts: tuple[tuple[str, ...], tuple[str, ...]],
        defaults: dict[str, str],
        chunk_size: int,
    ) -> None:
        postgres = session.get_bind().dialect.name == "postgresql"
        literals, names = parts
        unique = list(dict.fromkeys(names))
        ids = ", ".join(str(int(i)) for i in list_ids)
        # SQLite: "+" keeps the (list_id, phone) index out, as in _ContactReader.
        where = f"{'' if postgres else '+'}c.list_id IN ({ids}) AND c.id > :after"
        # One column per field in the inner query, so each contact's JSON is read once.
        columns, ok, value, absent = ["c.id", "c.phone"], {}, {}, {}
        for i, name in enumerate(unique):
            if name == "phone_number":  # the contact's own number, as _render_message has it
                ok[name] = _has_alnum("c.phone", postgres)
                value[name], absent[name] = "c.phone", "1 = 0"
            elif postgres:
                columns.append(f"c.fields -> '{name}' AS f{i}")
                value[name] = f"(c.f{i} #>> '{{}}')"
                ok[name] = f"(json_typeof(c.f{i}) = 'string' AND {_has_alnum(value[name], True)})"
                absent[name] = f"(c.f{i} IS NULL OR json_typeof(c.f{i}) = 'null')"
            else:
                columns.append(f"json_type(c.fields, '$.{name}') AS t{i}")
                columns.append(f"json_extract(c.fields, '$.{name}') AS f{i}")
                value[name] = f"c.f{i}"
                ok[name] = f"(c.t{i} = 'text' AND {_has_alnum(value[name], False)})"
                absent[name] = f"(c.t{i} IS NULL OR c.t{i} = 'null')"
        simple = " AND ".join(f"({ok[n]} OR {absent[n]})" for n in unique) or "1 = 1"
        inner = f"SELECT {', '.join(columns)} FROM contacts c WHERE {where}"
        self.bounds_sql = text(
            "SELECT count(*), max(c.id), coalesce(sum(CASE WHEN "
            f"{simple} THEN 0 ELSE 1 END), 0) FROM ({inner} ORDER BY c.id LIMIT :size) c"
        )
        self.params: dict[str, Any] = {"run_id": run_id, "size": chunk_size}
        failing = [n for n in unique if n not in defaults]
        fails = " OR ".join(absent[n] for n in failing) or "1 = 0"
        pieces = ["CAST(:l0 AS text)"]
        self.params["l0"] = literals[0]
        for i, (name, literal) in enumerate(zip(names, literals[1:], strict=True), start=1):
            if name in defaults:
                self.params[f"d{i}"] = defaults[name]
                pieces.append(
                    f"CASE WHEN {ok[name]} THEN {value[name]} ELSE CAST(:d{i} AS text) END"
                )
            else:
                pieces.append(value[name])
            if literal:
                self.params[f"l{i}"] = literal
                pieces.append(f"CAST(:l{i} AS text)")
        errors = []
        for i, name in enumerate(failing):
            self.params[f"e{i}"] = f"missing field {name}"
            errors.append(f"WHEN {absent[name]} THEN CAST(:e{i} AS text)")
        self.insert_sql = text(
            f"INSERT INTO messages ({', '.join(_WRITTEN)})"
            f" SELECT :run_id, c.id, c.phone,"
            f" CASE WHEN {fails} THEN '' ELSE {' || '.join(pieces)} END,"
            " CASE WHEN s.id IS NOT NULL THEN 'suppressed'"
            f" WHEN {fails} THEN 'failed' ELSE 'pending' END,"
            f" CASE WHEN s.id IS NOT NULL THEN 'number opted out' {' '.join(errors)} END,"
            " NULL, NULL, 0"
            # OFFSET 0: PostgreSQL would merge this subquery into the outer one, and each
            # use of a field there would parse the contact's JSON again (seven times a row).
            f" FROM ({inner} AND c.id <= :last{' OFFSET 0' if postgres else ''}) c"
            " LEFT JOIN suppressions s ON s.phone = c.phone"
            # In contact order, as the rows written one by one: the first of two contacts
            # with one number (two lists) is the one kept.
            " WHERE 1 = 1 ORDER BY c.id"
        )

    def bounds(self, session: Session, after: int) -> tuple[int, int, bool]:
        """The next chunk after contact ``after``: how many contacts, the last one's id,
        and whether one of them needs Python."""
        count, last, odd = session.execute(self.bounds_sql, {**self.params, "after": after}).one()
        return int(count), int(last or 0), bool(odd)

    def insert(self, after: int, last: int) -> tuple[Any, dict[str, Any]]:
        """The statement writing the chunk (after, last] and its parameters."""
        return self.insert_sql, {**self.params, "after": after, "last": last}


def _has_alnum(expression: str, postgres: bool) -> str:
    if postgres:
        return f"{expression} ~ '[[:alnum:]]'"
    return f"{expression} GLOB '*[0-9A-Za-z]*'"


class _ContactReader:
    """The audience a chunk at a time, in contact id order, with each number's
    suppression. The expansion's rows bypass the ORM (a million of them): one DB-API
    query per chunk, fields decoded once."""

    def __init__(self, session: Session, list_ids: list[int], chunk_size: int) -> None:
        self.session, self.list_ids, self.chunk_size = session, list_ids, chunk_size
        self.postgres = session.get_bind().dialect.name == "postgresql"
        lists = "= ANY(%s)" if self.postgres else f"IN ({', '.join('?' * len(list_ids))})"
        # SQLite has no statistics and prefers the (list_id, phone) index for the list
        # test, then sorts the whole list for every chunk; "+" keeps that index out, so
        # the chunk is read along the primary key from the last id. PostgreSQL plans by
        # its statistics (kept fresh above).
        list_id = "c.list_id" if self.postgres else "+c.list_id"
        mark = "%s" if self.postgres else "?"
        self.sql = (
            # fields as text, decoded here: psycopg's json loader costs twice json.loads
            f"SELECT c.id, c.phone, c.fields{'::text' if self.postgres else ''}, c.timezone,"
            " s.id IS NOT NULL"
            " FROM contacts c LEFT JOIN suppressions s ON s.phone = c.phone"
            f" WHERE {list_id} {lists} AND c.id > {mark} ORDER BY c.id LIMIT {mark}"
        )

    def __call__(self, after: int) -> list[ContactRow]:
        if not self.list_ids:
            return []
        lists: Any = self.list_ids if self.postgres else tuple(self.list_ids)
        params = (
            (lists, after, self.chunk_size) if self.postgres else (*lists, after, self.chunk_size)
        )
        cursor = _dbapi(self.session).cursor()
        try:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        loads = json.loads
        return [(i, p, loads(f) if f else {}, z, bool(s)) for i, p, f, z, s in rows]


class _MessageWriter:
    """Writes a chunk of message rows. PostgreSQL: COPY straight into ``messages`` while
    no row can collide (one list: a number appears once), else (several lists, or a
    collision COPY reports: another expansion of the run at work) COPY into a stage and
    INSERT ... ON CONFLICT DO NOTHING. SQLite: one executemany with ON CONFLICT DO
    NOTHING."""

    def __init__(self, session: Session, run_id: int, *, single_list: bool) -> None:
        self.session, self.run_id = session, run_id
        dialect = session.get_bind().dialect
        self.postgres = dialect.name == "postgresql"
        self.direct = self.postgres and single_list
        if not self.postgres:
            # Timestamps as SQLAlchemy stores them on SQLite.
            self.timestamp = table(Message).c.not_before.type.bind_processor(dialect)
            names = ", ".join(_WRITTEN)
            self.insert = (
                f"INSERT INTO messages ({names}) VALUES ({', '.join('?' * len(_WRITTEN))})"
                " ON CONFLICT DO NOTHING"
            )

    def resume_after(self) -> int:
        found = self.session.scalar(
            select(func.max(Message.contact_id)).where(Message.run_id == self.run_id)
        )
        return int(found or 0)

    def write(self, rows: list[MessageRow]) -> None:
        if not rows:
            return
        if not self.postgres:
            stamp, run_id = self.timestamp, self.run_id
            cursor = _dbapi(self.session).cursor()
            try:
                cursor.executemany(
                    self.insert,
                    [
                        (run_id, c, p, b, s, e, stamp(nb) if stamp and nb else nb, ps, 0)
                        for c, p, b, s, e, nb, ps in rows
                    ],
                )
            finally:
                cursor.close()
            return
        data = self._copy_text(rows)
        if self.direct:
            savepoint = self.session.begin_nested()
            try:
                copy_text(self.session, "messages", _WRITTEN, data)
                savepoint.commit()
                return
            except UniqueViolation:
                savepoint.rollback()  # this chunk, and the rest, go the other way
                self.direct = False
        stage = copy_text_to_stage(self.session, table(Message), _WRITTEN, data)
        names = ", ".join(_WRITTEN)
        self.session.execute(
            text(
                f"INSERT INTO messages ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
            )
        )

    def insert_select(self, session: Session, statement: Any, params: dict[str, Any]) -> None:
        """Write rows the database renders (``_SqlChunks``) on ``session``; the same
        collision rule as ``write``."""
        if self.direct:
            savepoint = session.begin_nested()
            try:
                session.execute(statement, params)
                savepoint.commit()
                return
            except IntegrityError as exc:
                savepoint.rollback()
                if not isinstance(exc.orig, UniqueViolation):
                    raise
                self.direct = False
        # After the outer WHERE: SQLite would read ON CONFLICT after a join as its ON.
        session.execute(text(str(statement) + " ON CONFLICT DO NOTHING"), params)

    def _copy_text(self, rows: list[MessageRow]) -> str:
        head = f"{self.run_id}\t"
        return "".join(
            f"{head}{c}\t{p}\t{_copy_value(b)}\t{s}\t{_copy_value(e)}\t"
            f"{NULL if nb is None else nb.isoformat()}\t{NULL if ps is None else ps}\t0\n"
            for c, p, b, s, e, nb, ps in rows
        )


NULL = "\\N"  # COPY text format's NULL
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value: str | None) -> str:
    """A text value in COPY's text format."""
    if value is None:
        return NULL
    if _COPY_SPECIAL.search(value):
        return value.translate(_COPY_ESCAPES)
    return value


# Contacts changed since PostgreSQL last sampled the table, past which the expansion
# samples it first.
STALE_CONTACT_ROWS = 50_000


def _fresh_contact_statistics(session: Session) -> None:
    """ANALYZE contacts when many rows came in since the last sample (a list imported or
    synced a moment ago): with a list's rows unknown to the planner, the chunk query reads
    the whole list and sorts it for every chunk instead of walking the primary key."""
    changed = session.scalar(
        text("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'contacts'")
    )
    if changed is not None and changed > STALE_CONTACT_ROWS:
        session.execute(text("ANALYZE contacts"))
        session.commit()


def _dbapi(session: Session) -> Any:
    connection = session.connection().connection.driver_connection
    assert connection is not None
    return connection


def _still_wanted(session: Session, run_id: int, owner: str) -> bool:
    """Renew the expansion's lease and say whether the chunk just written may stay.

    The UPDATE locks the run's row until the chunk commits, so a cancel (or the deadline's
    end of the expansion, scheduler.tick) either came first (seen here: the chunk is rolled
    back) or waits and then settles these rows with the rest. Taken after the insert, the
    lock is held only for the commit. A lease lost to another expansion (this one stalled
    past it) stops this one: two never write a run at once.
    """
    if not expansion_lease.renew(session, run_id, owner):
        return False
    status = session.scalar(select(Run.status).where(Run.id == run_id))
    return status in EXPANDABLE


def _count(session: Session, run_id: int) -> int:
    return int(session.scalar(select(func.count()).where(Message.run_id == run_id)) or 0)

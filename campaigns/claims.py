"""Every change of a message row's status after its creation: claims, the fence,
releases, results, look-ups, lease recovery, cancel and expiry. docs/message-states.md
draws the states and names the function behind each move.

A claim is an UPDATE of pending rows to 'claimed' with a random token and a lease, taken
with FOR UPDATE SKIP LOCKED on PostgreSQL, so two copies of the same task (a duplicated
Celery message, two workers) can never hold the same row. Every later write names the
token, so a worker whose lease was taken over cannot overwrite the new owner's result.

Each claim also has one row in ``claims`` (the token, the lease, when its request left).
The fence marks that single row right before the request, and lease recovery takes it
(``DELETE ... RETURNING``): both lock the same row, so one of them goes first and the
other sees what it did. Only the worker holding the token and lease recovery move rows out
of 'claimed' (cancel and expiry touch pending rows only), so a fence that passes covers
every row still held under the token. Whoever ends a claim deletes its row first, then
writes the messages: every writer locks the claim row before the message rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypedDict, cast

from sqlalchemy import (
    BindParameter,
    Boolean,
    String,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns.clock import db_now
from campaigns.models import Claim, Message, MessageStatus, Run, table

_messages = table(Message)


class RowUpdate(TypedDict, total=False):
    """New values for one message row (``b_id``), as ``_settle`` writes them. Built here
    only, from the typed results below; every row of one ``settle`` call sets the same
    columns."""

    b_id: int
    status: str  # a MessageStatus
    attempts: int
    lookups: int
    not_before: datetime | None
    error: str | None
    claim_token: str | None
    lease_until: datetime | None
    provider_message_id: str | None
    provider_status: str | None
    parts: int | None
    price: Decimal | None
    sent_at: datetime | None
    provider_schedule: int | None
    attempted_at: datetime | None  # when the request carrying the row left


@dataclass(frozen=True)
class Sent:
    """The provider accepted the message (``record``: claimed -> sent; ``record_lookups``:
    unknown -> sent, found in the history)."""

    id: int
    attempts: int  # counting this one
    provider_message_id: str | None
    provider_status: str | None
    parts: int | None
    price: Decimal | None
    schedule: int | None = None  # provider-side schedule, unix seconds


@dataclass(frozen=True)
class Failed:
    """Final: the provider refused it, or its tries are used up (-> failed)."""

    id: int
    attempts: int
    error: str
    provider_status: str | None = None
    price: Decimal | None = None


@dataclass(frozen=True)
class Later:
    """Back to pending, tried again from ``not_before`` (a transient failure: the attempt
    is counted in ``attempts``; a THROTTLED status or a pause: it is not)."""

    id: int
    attempts: int
    not_before: datetime | None
    error: str


@dataclass(frozen=True)
class LookAgain:
    """Not found in the history yet: still unknown, looked up once more from ``not_before``
    before any resend (``record_lookups``)."""

    id: int
    attempts: int
    not_before: datetime
    error: str


@dataclass(frozen=True)
class Hold:
    """A claimed row that does not leave with this request (not an attempt): back to
    pending until ``until`` (``defer``) or skipped (``skip``), with the reason."""

    id: int
    until: datetime | None = None
    reason: str | None = None


Result = Sent | Failed | Later


@dataclass(frozen=True)
class Claimed:
    id: int
    phone: str
    body: str
    attempts: int
    schedule: int | None = None  # provider-side schedule, unix seconds
    # The number is on the suppression list, as the claim read it (``drop_suppressed``).
    opted_out: bool = False


def claim_batch(
    session: Session, run_id: int, limit: int, *, token: str, lease_until: datetime, now: datetime
) -> list[Claimed]:
    """pending -> claimed: up to ``limit`` due rows of a run (oldest first), and the
    claim's row (the same lease) when any were claimed."""
    m = _messages.c
    due = select(m.id).where(
        m.run_id == run_id,
        # A range of one value, not an equality: with status = 'pending' PostgreSQL drops
        # status from the order below (a constant), the primary key then gives the same
        # order, and the planner, taking pending rows to be spread over every id, walked
        # the primary key from the run's first row past every row already sent, on every
        # claim (two thirds of the database's CPU per batch at 100,000 messages, growing
        # with the run). As a range, only the (run_id, status, id) index is in that order.
        m.status.between(MessageStatus.PENDING, MessageStatus.PENDING),
        or_(m.not_before.is_(None), m.not_before <= now),
    )
    # Ordered as the (run_id, status, id) index is, so the planner reads the pending range
    # of that index.
    due = due.order_by(m.status, m.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # id = ANY(ARRAY(subquery)) runs the subquery once and then looks rows up by primary
        # key; IN (subquery) let the planner hash-join against a scan of the whole table.
        chosen = any_(func.array(due.with_for_update(skip_locked=True).scalar_subquery()))
        where = m.id == chosen
    else:
        where = m.id.in_(due.scalar_subquery())
    # A Core statement on the session's connection: the ORM's handling of the returned
    # rows cost the worker twice the CPU of the whole claim otherwise (bench/RESULTS.md).
    rows = (
        session.connection()
        .execute(
            update(_messages)
            .where(where, m.status == MessageStatus.PENDING)
            .values(status=MessageStatus.CLAIMED, claim_token=token, lease_until=lease_until)
            .returning(m.id, m.phone, m.body, m.attempts, m.provider_schedule, _OPTED_OUT)
        )
        .all()
    )
    if rows:
        session.execute(insert(Claim).values(token=token, run_id=run_id, lease_until=lease_until))
    # The returned columns are Claimed's fields, in its order.
    return [Claimed(*r) for r in rows]


def fence(
    session: Session,
    token: str,
    *,
    need_seconds: float,
    now: datetime | None = None,
    in_flight_id: int | None = None,
) -> datetime | None:
    """Right before the request: mark the claim's request as left, but only if the claim
    is still ours (not recovered) with at least ``need_seconds`` of lease left by the
    database's clock. Returns that instant (the rows' ``attempted_at``), or None: send
    nothing. The caller commits before sending.

    One statement on the claim's single row, so nothing can take the claim between the
    check and the mark, and lease recovery, which takes the same row, either goes first
    (the fence then refuses) or waits and sees the request left. A worker that outlived
    its lease (a stall, a paused VM) sends nothing; one with too little lease left for the
    whole request does not start it. Every row still claimed under the token may go: only
    its holder and recovery move rows out of a claim. ``in_flight_id``: the claim's rows
    go one request each (the notify path) and this row's is the one leaving; the rows
    after it stay unsent if the worker dies. ``now`` replaces the database's clock for
    callers that move time (tests).
    """
    need = timedelta(seconds=need_seconds)
    instant: Any
    if now is not None:
        instant = now
    elif session.get_bind().dialect.name == "postgresql":
        instant = func.clock_timestamp()
    else:
        # SQLite has one writer: a write that changes nothing takes the lock first, so the
        # clock is read once this fence may write, not before a wait for another writer.
        session.execute(
            update(Claim)
            .where(Claim.token == token)
            .values(token=Claim.token)
            .execution_options(synchronize_session=False)
        )
        instant = db_now(session)
    left = session.execute(
        update(Claim)
        .where(Claim.token == token, Claim.lease_until >= instant + need)
        .values(attempted_at=instant, in_flight_id=in_flight_id)
        .returning(Claim.attempted_at)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return cast(datetime | None, left)


def close(session: Session, token: str) -> None:
    """The claim is over (its rows settled or given back): drop its row. Called before
    the rows are written, in the same transaction (claim row first, then messages, the
    order lease recovery locks them in)."""
    session.execute(
        delete(Claim).where(Claim.token == token).execution_options(synchronize_session=False)
    )


def defer(session: Session, token: str, rows: Sequence[Hold]) -> None:
    """claimed -> pending until ``Hold.until`` (a send window, the frequency cap): not an
    attempt. The rows leave the claim; its holder sends the others."""
    _hold(session, token, rows, MessageStatus.PENDING)


def skip(session: Session, token: str, rows: Sequence[Hold]) -> None:
    """claimed -> skipped (the frequency cap with the skip policy): never sent."""
    _hold(session, token, rows, MessageStatus.SKIPPED)


def _hold(session: Session, token: str, rows: Sequence[Hold], status: MessageStatus) -> None:
    # A reason is written only when there is one (a send window keeps the row's error).
    with_reason = any(r.reason is not None for r in rows)
    updates: list[RowUpdate] = []
    for r in rows:
        values: RowUpdate = {
            "b_id": r.id,
            "status": status,
            "not_before": r.until,
            "claim_token": None,
            "lease_until": None,
        }
        if with_reason:
            values["error"] = r.reason
        updates.append(values)
    _settle(session, updates, token=token)


def release_unsent(session: Session, token: str) -> int:
    """claimed -> pending, ending the claim: the fence refused (nothing of this claim
    left), or, one request per row, the rows after the one that failed (not an attempt)."""
    close(session, token)
    result = session.execute(
        update(Message)
        .where(Message.claim_token == token, Message.status == MessageStatus.CLAIMED)
        .values(status=MessageStatus.PENDING, claim_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return _count(result)


def mark_unknown(
    session: Session,
    token: str,
    ids: Sequence[int],
    *,
    error: str,
    look_up_after: datetime,
    attempted_at: datetime,
) -> int:
    """claimed -> unknown: the request's outcome is unknown; the rows wait for a history
    look-up, not made before ``look_up_after`` (the request's end plus the grace period),
    that searches from ``attempted_at`` (when the request left)."""
    result = session.execute(
        update(Message)
        .where(
            Message.id.in_(ids),
            Message.claim_token == token,
            Message.status == MessageStatus.CLAIMED,
        )
        .values(
            status=MessageStatus.UNKNOWN,
            claim_token=None,
            lease_until=None,
            not_before=look_up_after,
            attempted_at=attempted_at,
            lookups=0,
            error=error[:500],
        )
        .execution_options(synchronize_session=False)
    )
    return _count(result)


@dataclass(frozen=True)
class Unknown:
    """A row whose request may have been accepted, taken for one history look-up."""

    id: int
    phone: str
    attempts: int
    attempted_at: datetime | None
    lookups: int


def _unknown_due(run_id: int, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """A run's unknown rows due for a look-up. The status is written into the statement:
    as a parameter, PostgreSQL's generic plan for the prepared statement (psycopg prepares
    a statement run a few times) expected most rows to match and read the whole table (the
    look-first read below: 10-16 ms a batch at 100,000 messages) instead of the
    (run_id, status, id) index."""
    return (
        Message.run_id == run_id,
        Message.status == literal(MessageStatus.UNKNOWN.value, literal_execute=True),
        or_(Message.not_before.is_(None), Message.not_before <= now),
    )


def take_unknown(
    session: Session, run_id: int, limit: int, *, token: str, now: datetime, until: datetime
) -> list[Unknown]:
    """Take up to ``limit`` unknown rows that are due for a look-up, for this caller only
    until ``until``: one dispatch chain looks a set of rows up, not every chain of the run.
    Nothing due (a healthy run, before every claim): one read and no write."""
    # The UPDATE below writes nothing then, but still fires the statement triggers of
    # ``messages`` and needs a commit.
    if not session.scalar(select(exists().where(*_unknown_due(run_id, now)))):
        return []
    due = select(Message.id).where(*_unknown_due(run_id, now))
    due = due.order_by(Message.status, Message.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        where = Message.id == any_(
            func.array(due.with_for_update(skip_locked=True).scalar_subquery())
        )
    else:
        where = Message.id.in_(due.scalar_subquery())
    rows = session.execute(
        update(Message)
        .where(where, Message.status == MessageStatus.UNKNOWN)
        .values(claim_token=token, not_before=until)
        .returning(
            Message.id, Message.phone, Message.attempts, Message.attempted_at, Message.lookups
        )
        .execution_options(synchronize_session=False)
    ).all()
    return [Unknown(r.id, r.phone, r.attempts, r.attempted_at, r.lookups) for r in rows]


def release(
    session: Session,
    token: str,
    *,
    cancelled: bool = False,
    not_before: datetime | None = None,
) -> int:
    """End the claim before its request: every row of it back to pending (a 429, a pause,
    a long limiter wait, the budget), not an attempt; or, for a run cancelled meanwhile,
    to cancelled."""
    close(session, token)
    values: dict[str, Any] = {
        "status": MessageStatus.CANCELLED if cancelled else MessageStatus.PENDING,
        "claim_token": None,
        "lease_until": None,
        "not_before": not_before,
    }
    if cancelled:
        values["error"] = "campaign cancelled"
    result = session.execute(
        update(Message)
        .where(
            Message.claim_token == token,
            Message.status.in_((MessageStatus.CLAIMED, MessageStatus.UNKNOWN)),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _count(result)


def record(
    session: Session,
    token: str,
    results: Sequence[Result],
    *,
    attempted_at: datetime,
    now: datetime,
) -> None:
    """The provider's answer to a request that left at ``attempted_at``: claimed -> sent,
    failed, or pending for a later try. Written only to rows still held under ``token``,
    one statement per kind of result."""
    by_kind: dict[type, list[RowUpdate]] = {Sent: [], Failed: [], Later: []}
    for r in results:
        values = (
            _sent(r, now)
            if isinstance(r, Sent)
            else _failed(r)
            if isinstance(r, Failed)
            else _later(r)
        )
        values.update({"claim_token": None, "lease_until": None, "attempted_at": attempted_at})
        by_kind[type(r)].append(values)
    for kind, rows in by_kind.items():
        written = _settle(session, rows, token=token)
        if written < len(rows) and kind is not Later:
            _record_late(session, rows, attempted_at)


def _record_late(session: Session, rows: Sequence[RowUpdate], attempted_at: datetime) -> None:
    """unknown -> sent / failed: the answer of a worker that stalled after its request
    while lease recovery made its rows unknown. The provider's answer is the truth, so it
    is written to the rows still unknown from this very request (same attempt time) and
    not taken by a look-up; a row resent since, or looked up, is left alone. On the
    SkillBoss path, which has no history to look a row up in, this is what keeps a
    delivered message from ending 'failed'."""
    late = set(
        session.scalars(
            select(Message.id).where(
                Message.id.in_([r["b_id"] for r in rows]),
                Message.status == MessageStatus.UNKNOWN,
                Message.claim_token.is_(None),
                Message.attempted_at == attempted_at,
            )
        )
    )
    if late:
        _settle(
            session, [r for r in rows if r["b_id"] in late], expect_status=MessageStatus.UNKNOWN
        )


def record_lookups(
    session: Session, token: str, results: Sequence[Result | LookAgain], *, now: datetime
) -> None:
    """The history look-up of rows taken with ``take_unknown``: unknown -> sent (found),
    unknown again (``LookAgain``: not found once), pending (not found twice: resent) or
    failed. Written only to rows still unknown under ``token``, in one statement."""
    rows: list[RowUpdate] = []
    for r in results:
        # Every row of the statement sets the same columns, whichever way it went.
        values: RowUpdate = {
            "b_id": r.id,
            "claim_token": None,
            "provider_message_id": None,
            "provider_status": None,
            "parts": None,
            "price": None,
            "sent_at": None,
            "lookups": 0,
        }
        if isinstance(r, Sent):
            sent = _sent(r, now)
            del sent["provider_schedule"]
            values.update(sent)
        elif isinstance(r, LookAgain):
            values.update(
                {
                    "status": MessageStatus.UNKNOWN,
                    "attempts": r.attempts,
                    "lookups": 1,
                    "not_before": r.not_before,
                    "error": r.error,
                }
            )
        elif isinstance(r, Failed):
            values.update(
                {
                    "status": MessageStatus.FAILED,
                    "attempts": r.attempts,
                    "not_before": None,
                    "error": r.error,
                }
            )
        else:
            values.update(_later(r))
        rows.append(values)
    _settle(session, rows, token=token, expect_status=MessageStatus.UNKNOWN)


def give_back_unknown(session: Session, token: str, ids: Sequence[int], when: datetime) -> None:
    """A look-up that could not be made (the history failed): the rows stay unknown and
    any chain may take them again from ``when``."""
    session.execute(
        update(Message)
        .where(
            Message.id.in_(ids),
            Message.claim_token == token,
            Message.status == MessageStatus.UNKNOWN,
        )
        .values(claim_token=None, not_before=when)
        .execution_options(synchronize_session=False)
    )


def _sent(r: Sent, now: datetime) -> RowUpdate:
    return {
        "b_id": r.id,
        "status": MessageStatus.SENT,
        "attempts": r.attempts,
        "provider_message_id": r.provider_message_id,
        "provider_status": r.provider_status,
        "parts": r.parts,
        "price": r.price,
        "provider_schedule": r.schedule,
        "sent_at": now,
        "not_before": None,
        "error": None,
    }


def _failed(r: Failed) -> RowUpdate:
    return {
        "b_id": r.id,
        "status": MessageStatus.FAILED,
        "attempts": r.attempts,
        "provider_status": r.provider_status,
        "price": r.price,
        "not_before": None,
        "error": r.error,
    }


def _later(r: Later) -> RowUpdate:
    return {
        "b_id": r.id,
        "status": MessageStatus.PENDING,
        "attempts": r.attempts,
        "not_before": r.not_before,
        "error": r.error,
    }


def finish_pending(
    session: Session,
    run_id: int,
    final: Literal[MessageStatus.EXPIRED, MessageStatus.CANCELLED],
    error: str,
) -> int:
    """pending -> expired (past the run's deadline) or cancelled (the run was cancelled):
    rows never claimed again. Claimed and unknown rows are left to their claim's holder
    or their look-up."""
    result = session.execute(
        update(Message)
        .where(Message.run_id == run_id, Message.status == MessageStatus.PENDING)
        .values(status=final, error=error)
        .execution_options(synchronize_session=False)
    )
    return _count(result)


def cancelled_at_provider(session: Session, ids: Sequence[int], error: str) -> int:
    """sent/unknown -> cancelled: handed to the provider with a future schedule and
    cancelled there before it went out."""
    result = session.execute(
        update(Message)
        .where(
            Message.id.in_(ids),
            Message.status.in_((MessageStatus.SENT, MessageStatus.UNKNOWN)),
        )
        .values(status=MessageStatus.CANCELLED, error=error)
        .execution_options(synchronize_session=False)
    )
    return _count(result)


def _settle(
    session: Session,
    rows: Sequence[RowUpdate],
    *,
    token: str | None = None,
    expect_status: str | None = None,
) -> int:
    """Write per-message results in one statement; returns how many rows it wrote.

    Each row has ``b_id`` and the columns to set (same keys in every row). With a token,
    only rows still held under that claim are written; with ``expect_status``, only rows
    still in that status (so a stale writer never overwrites newer progress).
    """
    if not rows:
        return 0
    plain = [cast(Mapping[str, Any], r) for r in rows]
    columns = [k for k in plain[0] if k != "b_id"]
    if session.get_bind().dialect.name == "postgresql":
        return _settle_unnest(session, plain, columns, token, expect_status)
    where = [_messages.c.id == bindparam("b_id")]
    if token is not None:
        where.append(_messages.c.claim_token == token)
    if expect_status is not None:
        where.append(_messages.c.status == expect_status)
    stmt = update(_messages).where(and_(*where)).values({c: bindparam(f"v_{c}") for c in columns})
    params = [{"b_id": r["b_id"], **{f"v_{c}": r[c] for c in columns}} for r in plain]
    return int(session.connection().execute(stmt, params).rowcount)


def _settle_unnest(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    columns: list[str],
    token: str | None,
    expect_status: str | None,
) -> int:
    """PostgreSQL: one UPDATE ... FROM unnest(arrays), a column per array.

    A thousand single-row UPDATEs cost a round trip each even when pipelined; this is one
    statement with a dozen parameters, several times faster for a batch.
    """
    # Columns with one value for the whole batch (status 'sent', claim_token NULL, ...) are
    # plain parameters; only the ones that vary per message are arrays. The guards (claim
    # token, expected status) travel as columns of v, not constants: a constant such as
    # claim_token = 'abc' makes the planner expect one matching row and choose a nested
    # loop over all 1000 x 1000 pairs.
    guards = {"token": ("claim_token", token), "expect_status": ("status", expect_status)}
    guards = {g: cv for g, cv in guards.items() if cv[1] is not None}
    varying = [c for c in columns if any(r[c] != rows[0][c] for r in rows)]
    constant = [c for c in columns if c not in varying]
    # The ids as the text of one bigint[] (built by join, not by psycopg's per-element
    # array dumper: 0.1 ms instead of 0.9 for a batch); the guards' arrays are filled by
    # the database from one value (dumping a thousand copies of the token took 1.4 ms).
    ids = "{" + ",".join(str(int(r["b_id"])) for r in rows) + "}"
    arrays: dict[str, Any] = {f"a_{c}": [r[c] for r in rows] for c in varying}
    binds: list[BindParameter[Any]] = [bindparam("a_id", type_=String)]
    binds += [bindparam(f"a_{c}", type_=ARRAY(_messages.c[c].type)) for c in varying]
    binds += [bindparam(f"g_{g}", type_=_messages.c[col].type) for g, (col, _) in guards.items()]
    binds += [bindparam(f"c_{c}", type_=_messages.c[c].type) for c in constant]
    params = arrays | {"a_id": ids, "n": len(rows)}
    params |= {f"g_{g}": value for g, (_, value) in guards.items()}
    params |= {f"c_{c}": rows[0][c] for c in constant}
    v_columns = ["id", *varying, *guards]
    unnested = ["CAST(:a_id AS bigint[])", *(f":a_{c}" for c in varying)]
    unnested += [f"array_fill(CAST(:g_{g} AS text), ARRAY[CAST(:n AS integer)])" for g in guards]
    sets = [f"{c} = v.{c}" for c in varying] + [f"{c} = :c_{c}" for c in constant]
    # m.id = ANY(...) gives the planner an index path of the right size. The cast in a
    # subquery of its own, run once: in the condition itself, a sequential scan (a new
    # run's table, before its statistics) parsed the list again for every row it read.
    ids_once = "CAST((SELECT CAST(:a_id AS bigint[])) AS bigint[])"
    conditions = [f"m.id = ANY({ids_once})", "m.id = v.id"]
    conditions += [f"m.{col} = v.{g}" for g, (col, _) in guards.items()]
    stmt = text(
        f"UPDATE messages AS m SET {', '.join(sets)} "
        f"FROM unnest({', '.join(unnested)}) AS v({', '.join(v_columns)}) "
        f"WHERE {' AND '.join(conditions)}"
    ).bindparams(*binds)
    return int(session.execute(stmt, params).rowcount)  # type: ignore[attr-defined]


def expire_leases(session: Session, now: datetime, *, grace_seconds: float) -> int:
    """claimed -> pending / unknown: recover claims whose worker died (their lease ran
    out). Rows whose request never left go straight back to pending; rows whose request
    left may have been accepted, so they become 'unknown' and are looked up (after the
    grace period) before any resend.

    The claim's row is taken first (deleted), so a fence on it either went before, and
    its mark is seen here, or comes after and refuses."""
    grace = timedelta(seconds=grace_seconds)
    dead = session.execute(
        delete(Claim)
        .where(Claim.lease_until < now)
        .returning(
            Claim.token, Claim.run_id, Claim.lease_until, Claim.attempted_at, Claim.in_flight_id
        )
        .execution_options(synchronize_session=False)
    ).all()
    recovered = 0
    for claim in dead:
        # (run_id, status) first: the (run_id, status, id) index finds the claimed rows.
        held = (
            Message.run_id == claim.run_id,
            Message.status == MessageStatus.CLAIMED,
            Message.claim_token == claim.token,
        )
        if claim.attempted_at is not None:
            left = [*held]
            if claim.in_flight_id is not None:
                left.append(Message.id == claim.in_flight_id)
            # The fence let a request leave only with its whole timeout inside the lease,
            # so it had ended when the lease did: the grace period counts from there.
            recovered += _count(
                session.execute(
                    update(Message)
                    .where(*left)
                    .values(
                        status=MessageStatus.UNKNOWN,
                        claim_token=None,
                        lease_until=None,
                        attempted_at=claim.attempted_at,
                        lookups=0,
                        not_before=claim.lease_until + grace,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
        recovered += _count(
            session.execute(
                update(Message)
                .where(*held)
                .values(status=MessageStatus.PENDING, claim_token=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
        )
    return recovered + _expire_orphans(session, now, grace)


def _expire_orphans(session: Session, now: datetime, grace: timedelta) -> int:
    """Claimed rows with no claim row (claimed before claims had rows) whose lease ran
    out: whether their request left is not known, so they are looked up before any
    resend."""
    # One statement, run by run: the (run_id, status, id) index finds each run's claimed
    # rows (a predicate on status alone scans the whole table), and a statement per run
    # made every tick cost a round trip per cancelled run ever kept.
    orphaned = (
        Message.status == MessageStatus.CLAIMED,
        Message.lease_until < now,
        ~exists().where(Claim.token == Message.claim_token),
    )
    runs = Run.status.in_(("expanding", "sending", "paused", "cancelled"))
    if session.get_bind().dialect.name == "postgresql":
        # LATERAL keeps PostgreSQL on the index per run; a plain join let it scan messages.
        leases = (
            select(Message.lease_until)
            .where(Message.run_id == Run.id, *orphaned)
            .distinct()
            .lateral()
        )
        query = select(Run.id, leases.c.lease_until).join(leases, true()).where(runs)
    else:
        query = (
            select(Message.run_id, Message.lease_until)
            .join(Run, Run.id == Message.run_id)
            .where(runs, *orphaned)
            .distinct()
        )
    found = session.execute(query).all()
    recovered = 0
    for run_id, lease_end in found:
        if lease_end is None:
            continue  # a claim always has a lease; nothing expired without one
        # The grace period counts from each lease's end, as for a claim with its row.
        recovered += _count(
            session.execute(
                update(Message)
                .where(Message.run_id == run_id, *orphaned, Message.lease_until == lease_end)
                .values(
                    status=MessageStatus.UNKNOWN,
                    claim_token=None,
                    lease_until=None,
                    lookups=0,
                    not_before=lease_end + grace,
                )
                .execution_options(synchronize_session=False)
            )
        )
    return recovered


def _count(result: Any) -> int:
    return int(result.rowcount)


def lease_deadline(now: datetime, lease_seconds: float) -> datetime:
    return now + timedelta(seconds=lease_seconds)


# Whether a message's number opted out. Read by the claim itself (``claim_batch``), in the
# statement that takes the rows, and acted on by ``drop_suppressed``: a statement of its
# own, with the batch's thousand numbers bound as a parameter, cost the worker 2-3 ms and
# a round trip per batch.
# Written out: SQLAlchemy writes RETURNING's columns unqualified on SQLite, and there
# "phone = phone" compared the suppression's number with itself.
_OPTED_OUT = literal_column(
    "EXISTS (SELECT 1 FROM suppressions WHERE suppressions.phone = messages.phone)", Boolean
).label("opted_out")


def drop_suppressed(session: Session, batch: list[Claimed], *, token: str) -> list[Claimed]:
    """claimed -> suppressed for the rows of a claimed batch whose number opted out (as
    their claim read it); returns the others. Checked for every claim, right before its
    request, so an opt-out that arrives while a run is sending (a STOP pushed to the
    webhook) stops the rest of it."""
    opted_out = [row.id for row in batch if row.opted_out]
    if not opted_out:
        return batch
    session.execute(
        update(Message)
        .where(Message.id.in_(opted_out), Message.claim_token == token)
        .values(
            status=MessageStatus.SUPPRESSED,
            error="number opted out",
            claim_token=None,
            lease_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    return [row for row in batch if not row.opted_out]

"""Row claims: disjoint under concurrency, released, and recovered after a crash."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from campaigns import claims
from campaigns.clock import utcnow
from campaigns.db import session_factory, session_scope
from campaigns.expand import expand_run
from campaigns.models import Claim, Message
from tests.seed import seed_campaign, seed_list, us_numbers
from tests.statements import captured


def _lease_ends(session: Session, token: str, when: datetime) -> None:
    """Make a claim's lease end at ``when`` (its rows' and its claim row's)."""
    session.execute(update(Message).where(Message.claim_token == token).values(lease_until=when))
    session.execute(update(Claim).where(Claim.token == token).values(lease_until=when))


def _claim_attempted(session: Session, token: str) -> datetime | None:
    return session.scalar(select(Claim.attempted_at).where(Claim.token == token))


def _run(url: str, n: int) -> int:
    seed_list(url, "a", us_numbers(n))
    _, run_id = seed_campaign(url, ["a"])
    with session_scope(url) as session:
        expand_run(session, run_id)
    return run_id


def test_concurrent_claims_never_share_a_row(pg_url: str) -> None:
    run_id = _run(pg_url, 3000)
    taken: list[list[int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def claimer(i: int) -> None:
        make = session_factory(pg_url)
        barrier.wait()
        while True:
            with make() as session:
                now = utcnow()
                batch = claims.claim_batch(
                    session,
                    run_id,
                    97,
                    token=f"t{i}-{len(taken)}",
                    lease_until=now + timedelta(seconds=60),
                    now=now,
                )
                session.commit()
            if not batch:
                return
            with lock:
                taken.append([b.id for b in batch])

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in taken for i in batch]
    assert len(ids) == 3000 and len(set(ids)) == 3000


def test_claims_skip_rows_not_yet_due(db_url: str) -> None:
    run_id = _run(db_url, 4)
    now = utcnow()
    with session_scope(db_url) as session:
        first = session.scalar(
            select(Message.id).where(Message.run_id == run_id).order_by(Message.id)
        )
        session.execute(
            update(Message).where(Message.id == first).values(not_before=now + timedelta(hours=1))
        )
    with session_scope(db_url) as session:
        batch = claims.claim_batch(session, run_id, 10, token="t", lease_until=now, now=now)
    assert len(batch) == 3 and first not in {b.id for b in batch}


def test_expired_leases_sort_by_whether_the_request_left(db_url: str) -> None:
    """A dead worker's rows whose request left are ambiguous (unknown, looked up after
    the grace period); rows whose request never left go straight back to pending."""
    run_id = _run(db_url, 5)
    now = utcnow()
    with session_scope(db_url) as session:
        left = claims.claim_batch(
            session, run_id, 2, token="dead", lease_until=now + timedelta(seconds=60), now=now
        )
        assert len(left) == 2
        assert claims.fence(session, "dead", need_seconds=1) is not None
        _lease_ends(session, "dead", now)
        claims.claim_batch(
            session, run_id, 2, token="stalled", lease_until=now - timedelta(seconds=1), now=now
        )
    with session_scope(db_url) as session:
        claims.claim_batch(
            session, run_id, 1, token="alive", lease_until=now + timedelta(seconds=60), now=now
        )
    later = now + timedelta(seconds=5)
    with session_scope(db_url) as session:
        assert claims.expire_leases(session, later, grace_seconds=30) == 4
    with session_scope(db_url) as session:
        rows = session.scalars(select(Message).where(Message.run_id == run_id)).all()
        statuses = sorted((m.claim_token or "", m.status) for m in rows)
        unknown_after = {m.not_before for m in rows if m.status == "unknown"}
    assert statuses == [
        ("", "pending"),
        ("", "pending"),
        ("", "unknown"),
        ("", "unknown"),
        ("alive", "claimed"),
    ]
    # the grace period counts from the end of the lease, when the request had ended
    assert unknown_after == {now + timedelta(seconds=30)}


def test_fence_passes_only_our_claim_with_enough_lease_left(db_url: str) -> None:
    run_id = _run(db_url, 3)
    now = utcnow()
    with session_scope(db_url) as session:
        ours = claims.claim_batch(
            session, run_id, 2, token="ours", lease_until=now + timedelta(seconds=20), now=now
        )
        assert len(ours) == 2
        assert claims.fence(session, "other", need_seconds=1) is None
        assert claims.fence(session, "ours", need_seconds=60) is None
        assert _claim_attempted(session, "ours") is None
        left = claims.fence(session, "ours", need_seconds=5)
        assert left is not None and _claim_attempted(session, "ours") == left


def test_settle_with_a_stale_token_writes_nothing(db_url: str) -> None:
    run_id = _run(db_url, 1)
    now = utcnow()
    with session_scope(db_url) as session:
        [row] = claims.claim_batch(session, run_id, 1, token="old", lease_until=now, now=now)
        claims.release(session, "old")
        claims.claim_batch(session, run_id, 1, token="new", lease_until=now, now=now)
        claims.record(session, "old", [claims.Failed(row.id, 1, "late")], attempted_at=now, now=now)
        assert session.scalar(select(Message.status).where(Message.id == row.id)) == "claimed"
        accepted = claims.Sent(row.id, 1, "m-1", "SUCCESS", 1, Decimal("0.07"))
        claims.record(session, "new", [accepted], attempted_at=now, now=now)
        assert session.scalar(select(Message.status).where(Message.id == row.id)) == "sent"
        # A look-up's result is written only to rows still unknown.
        claims.record_lookups(session, "new", [claims.Failed(row.id, 2, "not found")], now=now)
        assert session.scalar(select(Message.status).where(Message.id == row.id)) == "sent"


# -- the fence and lease recovery meet on the claim's row ----------------------------------


def _states(url: str, run_id: int) -> dict[int, tuple[str, datetime | None, str | None]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(Message.id, Message.status, Message.attempted_at, Message.claim_token).where(
                Message.run_id == run_id
            )
        ).all()
    return {r.id: (r.status, r.attempted_at, r.claim_token) for r in rows}


def _claims_left(url: str) -> int:
    with session_scope(url) as session:
        return int(session.scalar(select(func.count()).select_from(Claim)) or 0)


def test_a_recovery_waiting_on_a_fence_sees_the_request_left(pg_url: str) -> None:
    """The fence has marked the claim (the request is about to leave) but not committed
    when lease recovery runs: recovery waits for it and makes the rows 'unknown' (looked
    up before any resend), never 'pending' (sent again while the first request lands)."""
    run_id = _run(pg_url, 4)
    make = session_factory(pg_url)
    with make() as session:
        now = session.scalar(select(func.now()))
        batch = claims.claim_batch(
            session, run_id, 3, token="slow", lease_until=now + timedelta(seconds=30), now=now
        )
        session.commit()
    fencing = make()
    left = claims.fence(fencing, "slow", need_seconds=5)  # holds the claim's row
    assert left is not None
    recovered: list[int] = []
    # The tick's view: the lease has run out (the fencing worker then stalls past it).
    later = now + timedelta(seconds=31)

    def recover() -> None:
        with make() as session:
            recovered.append(claims.expire_leases(session, later, grace_seconds=10))
            session.commit()

    thread = threading.Thread(target=recover)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "recovery did not wait for the fence's lock on the claim"
    fencing.commit()
    fencing.close()
    thread.join(timeout=10)
    assert recovered == [3]
    states = _states(pg_url, run_id)
    for row in batch:
        assert states[row.id] == ("unknown", left, None)
    assert sorted(s for s, _, _ in states.values()) == ["pending", "unknown", "unknown", "unknown"]
    assert _claims_left(pg_url) == 0


def test_a_fence_after_recovery_refuses(db_url: str) -> None:
    """A worker that outlived its lease finds its claim recovered: nothing leaves, and
    rows claimed again by another worker stay theirs."""
    run_id = _run(db_url, 2)
    now = utcnow()
    with session_scope(db_url) as session:
        claims.claim_batch(
            session, run_id, 2, token="stalled", lease_until=now + timedelta(seconds=30), now=now
        )
    with session_scope(db_url) as session:
        assert claims.expire_leases(session, now + timedelta(seconds=31), grace_seconds=10) == 2
    with session_scope(db_url) as session:
        taken = claims.claim_batch(
            session, run_id, 2, token="new", lease_until=now + timedelta(hours=1), now=now
        )
    assert len(taken) == 2
    with session_scope(db_url) as session:
        assert claims.fence(session, "stalled", need_seconds=1, now=now) is None
        assert claims.release_unsent(session, "stalled") == 0
    assert {s for s, _, t in _states(db_url, run_id).values()} == {"claimed"}
    assert {t for _, _, t in _states(db_url, run_id).values()} == {"new"}
    with session_scope(db_url) as session:
        assert claims.fence(session, "new", need_seconds=1, now=now) is not None


def test_a_recovered_claim_whose_request_never_left_goes_back_to_pending(db_url: str) -> None:
    run_id = _run(db_url, 3)
    now = utcnow()
    with session_scope(db_url) as session:
        claims.claim_batch(
            session, run_id, 3, token="died", lease_until=now + timedelta(seconds=30), now=now
        )
    with session_scope(db_url) as session:
        assert claims.expire_leases(session, now + timedelta(seconds=31), grace_seconds=10) == 3
    assert {v[:3:2] for v in _states(db_url, run_id).values()} == {("pending", None)}
    assert _claims_left(db_url) == 0


def test_one_request_per_row_recovers_only_the_row_in_flight(db_url: str) -> None:
    """The notify path sends a claim's rows one call each: a worker that dies during the
    second call leaves that row 'unknown'; the first is settled, the third never left."""
    run_id = _run(db_url, 3)
    now = utcnow()
    with session_scope(db_url) as session:
        first, second, third = claims.claim_batch(
            session, run_id, 3, token="one-by-one", lease_until=now + timedelta(seconds=30), now=now
        )
        assert claims.fence(session, "one-by-one", need_seconds=1, in_flight_id=first.id, now=now)
        sent = claims.Sent(first.id, 1, "m-1", "SUCCESS", 1, Decimal("0.07"))
        claims.record(session, "one-by-one", [sent], attempted_at=now, now=now)
        call = now + timedelta(seconds=1)
        left = claims.fence(session, "one-by-one", need_seconds=1, in_flight_id=second.id, now=call)
        assert left == call
    with session_scope(db_url) as session:
        assert claims.expire_leases(session, now + timedelta(seconds=31), grace_seconds=10) == 2
    states = _states(db_url, run_id)
    assert states[first.id] == ("sent", now, None)
    assert states[second.id] == ("unknown", call, None)
    assert states[third.id][0] == "pending"


def test_claimed_rows_without_a_claim_row_are_looked_up_first(db_url: str) -> None:
    """Rows claimed before claims had rows (an upgrade with claims in flight): whether
    their request left is not known, so they are looked up before any resend."""
    run_id = _run(db_url, 2)
    now = utcnow()
    with session_scope(db_url) as session:
        session.execute(
            update(Message)
            .where(Message.run_id == run_id)
            .values(status="claimed", claim_token="before", lease_until=now)
        )
    with session_scope(db_url) as session:
        assert claims.expire_leases(session, now + timedelta(seconds=1), grace_seconds=10) == 2
    assert {v[0] for v in _states(db_url, run_id).values()} == {"unknown"}


def test_a_late_answer_after_recovery_is_written_to_its_rows(db_url: str) -> None:
    """A worker stalled after its request while the tick recovered its claim: the rows
    became unknown. When the provider's answer finally comes, it is the truth (the
    SkillBoss path has no history to look it up in): written to the rows still unknown
    from that very request, and to no other row."""
    run_id = _run(db_url, 3)
    now = utcnow()
    with session_scope(db_url) as session:
        rows = claims.claim_batch(
            session, run_id, 3, token="slow", lease_until=now + timedelta(seconds=60), now=now
        )
        left = claims.fence(session, "slow", need_seconds=1)
        assert left is not None
        _lease_ends(session, "slow", now)
    with session_scope(db_url) as session:
        assert claims.expire_leases(session, now + timedelta(seconds=5), grace_seconds=30) == 3
    sent, refused, other = rows
    with session_scope(db_url) as session:
        # The third row was meanwhile sent by another request (another attempt time).
        session.execute(
            update(Message)
            .where(Message.id == other.id)
            .values(attempted_at=now + timedelta(seconds=1))
        )
    answer = [
        claims.Sent(sent.id, 1, "m-late", "SUCCESS", 1, Decimal("0.07")),
        claims.Failed(refused.id, 1, "INVALID_RECIPIENT"),
        claims.Sent(other.id, 1, "m-other", "SUCCESS", 1, Decimal("0.07")),
    ]
    with session_scope(db_url) as session:
        claims.record(session, "slow", answer, attempted_at=left, now=now)
    with session_scope(db_url) as session:
        got = {
            m.id: (m.status, m.provider_message_id)
            for m in session.scalars(select(Message).where(Message.run_id == run_id))
        }
    assert got == {
        sent.id: ("sent", "m-late"),
        refused.id: ("failed", None),
        other.id: ("unknown", None),
    }


def test_looking_for_unknown_rows_on_a_healthy_run_writes_nothing(db_url: str) -> None:
    """Before every claim the run's unknown rows that are due are taken for a look-up;
    with none due (a healthy run) that is a read, not an UPDATE that writes nothing and
    still fires the statement triggers. Rows that are due are still taken."""
    from sqlalchemy import event

    from campaigns.db import get_engine

    run_id = _run(db_url, 3)
    now = utcnow()
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.lstrip().split()[0].upper())

    def take() -> list[claims.Unknown]:
        statements.clear()
        engine = get_engine(db_url)
        event.listen(engine, "before_cursor_execute", seen)
        try:
            with session_scope(db_url) as session:
                return claims.take_unknown(
                    session, run_id, 10, token="look", now=now, until=now + timedelta(minutes=1)
                )
        finally:
            event.remove(engine, "before_cursor_execute", seen)

    assert take() == []
    assert "UPDATE" not in statements
    with session_scope(db_url) as session:
        first, later = session.scalars(
            select(Message.id).where(Message.run_id == run_id).order_by(Message.id).limit(2)
        ).all()
        session.execute(update(Message).where(Message.id == first).values(status="unknown"))
        session.execute(
            update(Message)
            .where(Message.id == later)
            .values(status="unknown", not_before=now + timedelta(hours=1))
        )
    assert [u.id for u in take()] == [first]
    assert "UPDATE" in statements


def test_a_claim_reads_the_pending_rows_through_the_run_status_index(pg_url: str) -> None:
    """Halfway through a run, a claim finds the pending rows through the (run_id, status,
    id) index. With status compared by equality PostgreSQL dropped it from the order (a
    constant), the primary key gave the same order, and the planner walked the primary
    key from the run's first id past every row already sent, on every claim."""
    import json

    from campaigns.db import get_engine

    run_id = _run(pg_url, 4000)
    now = utcnow()
    lease = now + timedelta(minutes=1)
    for i in range(2):
        with session_scope(pg_url) as session:
            batch = claims.claim_batch(
                session, run_id, 1000, token=f"t{i}", lease_until=lease, now=now
            )
            claims.close(session, f"t{i}")
            claims.record(
                session,
                f"t{i}",
                [claims.Sent(b.id, 1, f"m{b.id}", "SUCCESS", 1, Decimal("0.1")) for b in batch],
                attempted_at=now,
                now=now,
            )

    def claim(session: Session) -> None:
        claims.claim_batch(session, run_id, 1000, token="t2", lease_until=lease, now=now)

    statement, parameters = _the_statement(pg_url, "UPDATE messages", claim)
    with get_engine(pg_url).connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar()

    def scans(node: dict[str, object]) -> list[tuple[str, str]]:
        found = [(str(node.get("Index Name")), str(node.get("Parent Relationship")))]
        for child in node.get("Plans", []):  # type: ignore[attr-defined]
            found += scans(child)
        return found

    plan = json.loads(plan) if isinstance(plan, str) else plan
    used = [name for name, _ in scans(plan[0]["Plan"]) if name != "None"]
    # The chosen rows through the run/status index; only their own look-up by id on the
    # primary key.
    assert "ix_messages_run_status" in used, used
    assert used.count("pk_messages") <= 1, used


def test_a_result_parses_its_list_of_ids_once_whatever_the_plan(pg_url: str) -> None:
    """The result's UPDATE names its rows by a list of ids sent as text. Cast inside the
    condition, PostgreSQL parsed the list again for every row a sequential scan read (the
    plan chosen before a new run's table has statistics): 0.3-0.7 s a batch at 10,000
    messages. The list must be a value computed once, whatever scan the planner picks."""
    import json

    from campaigns.db import get_engine

    run_id = _run(pg_url, 3000)
    now = utcnow()
    with session_scope(pg_url) as session:
        batch = claims.claim_batch(
            session, run_id, 1000, token="t", lease_until=now + timedelta(minutes=1), now=now
        )
        claims.close(session, "t")

    def record(session: Session) -> None:
        sent = [claims.Sent(b.id, 1, f"m{b.id}", "SUCCESS", 1, Decimal("0.1")) for b in batch]
        claims.record(session, "t", sent, attempted_at=now, now=now)

    statement, parameters = _the_statement(pg_url, "UPDATE messages AS m", record)
    with get_engine(pg_url).connect() as conn:
        # The plan of a table without statistics: a sequential scan of messages.
        conn.exec_driver_sql("SET enable_indexscan = off")
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        plan = conn.exec_driver_sql(
            f"EXPLAIN (VERBOSE, FORMAT JSON) {statement}", parameters
        ).scalar()
        conn.rollback()

    def nodes(node: dict[str, object]) -> list[dict[str, object]]:
        found = [node]
        for child in node.get("Plans", []):  # type: ignore[attr-defined]
            found += nodes(child)
        return found

    plan = json.loads(plan) if isinstance(plan, str) else plan
    [scan] = [
        n
        for n in nodes(plan[0]["Plan"])
        if n.get("Node Type") == "Seq Scan" and n.get("Relation Name") == "messages"
    ]
    # A text value turned into bigint[] by its type's input function (through cstring)
    # in a filter is run again for each row the scan reads.
    assert "cstring" not in str(scan.get("Filter")), scan.get("Filter")


def _the_statement(url: str, starts: str, action: Callable[[Session], None]) -> tuple[str, object]:
    """The one statement beginning with ``starts`` that ``action`` runs (rolled back
    after), with its parameters, to read its plan."""
    [found] = [(sql, p) for sql, p in captured(url, action) if sql.lstrip().startswith(starts)]
    return found

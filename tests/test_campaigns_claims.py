"""Row claims: disjoint under concurrency, released, and recovered after a crash."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select, update

from campaigns import claims
from campaigns.clock import utcnow
from campaigns.db import session_factory, session_scope
from campaigns.expand import expand_run
from campaigns.models import Message
from tests.seed import seed_campaign, seed_list, us_numbers


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


def test_expired_leases_become_unknown_and_live_ones_stay(db_url: str) -> None:
    run_id = _run(db_url, 4)
    now = utcnow()
    with session_scope(db_url) as session:
        claims.claim_batch(
            session, run_id, 2, token="dead", lease_until=now - timedelta(seconds=1), now=now
        )
    with session_scope(db_url) as session:
        claims.claim_batch(
            session, run_id, 1, token="alive", lease_until=now + timedelta(seconds=60), now=now
        )
    with session_scope(db_url) as session:
        assert claims.expire_leases(session, now) == 2
    with session_scope(db_url) as session:
        statuses = sorted(
            (m.claim_token or "", m.status)
            for m in session.scalars(select(Message).where(Message.run_id == run_id))
        )
    assert statuses == [
        ("", "pending"),
        ("alive", "claimed"),
        ("dead", "unknown"),
        ("dead", "unknown"),
    ]


def test_settle_with_a_stale_token_writes_nothing(db_url: str) -> None:
    run_id = _run(db_url, 1)
    now = utcnow()
    with session_scope(db_url) as session:
        [row] = claims.claim_batch(session, run_id, 1, token="old", lease_until=now, now=now)
        claims.release(session, "old")
        claims.claim_batch(session, run_id, 1, token="new", lease_until=now, now=now)
        claims.settle(session, [{"b_id": row.id, "status": "failed"}], token="old")
        assert session.scalar(select(Message.status).where(Message.id == row.id)) == "claimed"
        claims.settle(session, [{"b_id": row.id, "status": "sent"}], token="new")
        assert session.scalar(select(Message.status).where(Message.id == row.id)) == "sent"
        claims.settle(session, [{"b_id": row.id, "status": "failed"}], expect_status="unknown")
        assert session.scalar(select(Message.status).where(Message.id == row.id)) == "sent"

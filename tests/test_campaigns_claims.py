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


def test_expired_leases_sort_by_whether_the_request_left(db_url: str) -> None:
    """A dead worker's rows whose request left are ambiguous (unknown, looked up after
    the grace period); rows whose request never left go straight back to pending."""
    run_id = _run(db_url, 5)
    now = utcnow()
    with session_scope(db_url) as session:
        left = claims.claim_batch(
            session, run_id, 2, token="dead", lease_until=now + timedelta(seconds=60), now=now
        )
        assert claims.fence(session, "dead", [r.id for r in left], need_seconds=1) == {
            r.id for r in left
        }
        session.execute(
            update(Message).where(Message.claim_token == "dead").values(lease_until=now)
        )
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
        ids = [r.id for r in ours]
        assert claims.fence(session, "other", ids, need_seconds=1) == set()
        assert claims.fence(session, "ours", ids, need_seconds=60) == set()
        attempted = session.scalars(select(Message.attempted_at).where(Message.id.in_(ids)))
        assert set(attempted) == {None}
        assert claims.fence(session, "ours", ids, need_seconds=5) == set(ids)
        attempted = session.scalars(select(Message.attempted_at).where(Message.id.in_(ids)))
        assert None not in set(attempted)


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

"""A run's totals (campaigns.stats) always equal what its message rows say, on both
databases, through expansion (COPY on PostgreSQL), claims, releases and results."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import String, cast, func, literal, select, update

from campaigns.claims import claim_batch, release
from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message, Run, RunReceiptTotal, RunStatusTotal, Suppression
from campaigns.receipts import apply_receipts
from campaigns.retention import purge_messages
from campaigns.stats import UNDELIVERED, delivery_counts, run_stats, status_counts
from tests.seed import seed_campaign, seed_list, us_numbers


def live(url: str, run_id: int) -> tuple[dict[str, int], Decimal, int]:
    with session_scope(url) as session:
        counts = {
            s: n
            for s, n in session.execute(
                select(Message.status, func.count())
                .where(Message.run_id == run_id)
                .group_by(Message.status)
            )
        }
        price, parts = session.execute(
            select(
                func.coalesce(func.sum(Message.price), 0), func.coalesce(func.sum(Message.parts), 0)
            ).where(Message.run_id == run_id, Message.status == "sent")
        ).one()
    return counts, Decimal(str(price)), int(parts)


def kept(url: str, run_id: int) -> tuple[dict[str, int], Decimal, int]:
    with session_scope(url) as session:
        stats = run_stats(session, run_id)
        assert status_counts(session, run_id) == {s: n for s, n in stats.counts.items() if n}
    return {s: n for s, n in stats.counts.items() if n}, stats.price, stats.parts


def test_totals_follow_every_change_of_the_rows(db_url: str) -> None:
    phones = us_numbers(40)
    seed_list(db_url, "a", phones)
    with session_scope(db_url) as session:
        session.add(Suppression(phone=phones[3], reason="STOP"))
    _, run_id = seed_campaign(db_url, ["a"])
    with session_scope(db_url) as session:
        expand_run(session, run_id, chunk_size=15)
    assert kept(db_url, run_id) == live(db_url, run_id) == ({"pending": 39, "suppressed": 1}, 0, 0)
    now = utcnow()
    with session_scope(db_url) as session:
        batch = claim_batch(session, run_id, 10, token="t1", lease_until=now, now=now)
        claim_batch(session, run_id, 5, token="t2", lease_until=now, now=now)
        release(session, "t2", not_before=now + timedelta(hours=1))
        session.execute(
            update(Message)
            .where(Message.id.in_([c.id for c in batch[:7]]))
            .values(status="sent", price=Decimal("0.0825"), parts=2)
        )
        session.execute(
            update(Message).where(Message.id == batch[7].id).values(status="failed", error="x")
        )
    assert kept(db_url, run_id) == live(db_url, run_id)
    counts, price, parts = kept(db_url, run_id)
    assert counts == {"pending": 29, "claimed": 2, "sent": 7, "failed": 1, "suppressed": 1}
    assert (price, parts) == (Decimal("0.5775"), 14)
    with session_scope(db_url) as session:
        assert run_stats(session, run_id).waiting == 5
    if db_url.startswith("postgresql"):
        with session_scope(db_url) as session:
            appended = session.scalar(select(func.count()).where(RunStatusTotal.run_id == run_id))
        assert appended and appended < 20  # a few rows per statement, not one per message


def receipts_counted(url: str, run_id: int) -> tuple[int, int]:
    """(delivered, undelivered) counted from the rows, by the rule of campaigns.stats."""
    with session_scope(url) as session:
        found = dict(
            session.execute(
                select(Message.delivery_status, func.count())
                .where(Message.run_id == run_id, Message.delivery_status.is_not(None))
                .group_by(Message.delivery_status)
            ).all()
        )
    delivered = found.get("delivered", 0)
    return delivered, sum(n for s, n in found.items() if s in UNDELIVERED)


def receipts_kept(url: str, run_id: int) -> tuple[int, int]:
    with session_scope(url) as session:
        stats = run_stats(session, run_id)
        assert delivery_counts(session, run_id) == (stats.delivered, stats.undelivered)
    return stats.delivered, stats.undelivered


def test_receipt_counts_follow_receipts_and_outlive_the_purge(db_url: str) -> None:
    seed_list(db_url, "a", us_numbers(30))
    _, run_id = seed_campaign(db_url, ["a"])
    _, other = seed_campaign(db_url, ["a"])
    for run in (run_id, other):
        with session_scope(db_url) as session:
            expand_run(session, run)
            ids = list(session.scalars(select(Message.id).where(Message.run_id == run)))
            session.execute(  # as a worker records a batch sent, one statement
                update(Message)
                .where(Message.id.in_(ids))
                .values(
                    status="sent",
                    provider_message_id=literal(f"r{run}-", String) + cast(Message.id, String),
                    delivery_status="sent",
                )
            )
    provider = [f"r{run_id}-{i}" for i in sorted(ids_of(db_url, run_id))]
    assert receipts_kept(db_url, run_id) == receipts_counted(db_url, run_id) == (0, 0)
    with session_scope(db_url) as session:  # the poller's batch: 12 delivered, 5 failed
        apply_receipts(session, [(p, "delivered") for p in provider[:12]])
        apply_receipts(session, [(p, "failed") for p in provider[12:17]])
    with session_scope(db_url) as session:  # webhook calls, one receipt each
        apply_receipts(session, [(provider[17], "temporary_failure")])
        apply_receipts(session, [(provider[18], "undelivered")])
        apply_receipts(session, [(provider[19], "expired")])
    assert receipts_kept(db_url, run_id) == receipts_counted(db_url, run_id) == (12, 7)
    with session_scope(db_url) as session:  # receipts that change a receipt
        apply_receipts(session, [(provider[17], "delivered")])  # temporary failure, then done
        apply_receipts(session, [(provider[0], "failed")])  # a final one replaces a final one
        apply_receipts(session, [(provider[1], "sent")])  # a late "queued" changes nothing
        apply_receipts(session, [(provider[18], "undelivered")])  # replayed
    assert receipts_kept(db_url, run_id) == receipts_counted(db_url, run_id) == (12, 8)
    assert receipts_kept(db_url, other) == receipts_counted(db_url, other) == (0, 0)
    with session_scope(db_url) as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status="completed", finished_at=utcnow() - timedelta(days=100))
        )
    with session_scope(db_url) as session:
        assert purge_messages(session, timedelta(days=90), batch=7).messages == 30
    assert receipts_counted(db_url, run_id) == (0, 0)  # the rows are gone ...
    assert receipts_kept(db_url, run_id) == (12, 8)  # ... their receipts' counts are not
    if db_url.startswith("postgresql"):
        with session_scope(db_url) as session:
            kept_rows = session.execute(
                select(RunReceiptTotal.delivery_status, RunReceiptTotal.writer).where(
                    RunReceiptTotal.run_id == run_id
                )
            ).all()
        # 24 receipts, each its own UPDATE statement, added into one counter per receipt
        # status (6 seen here) and connection that wrote it, not a row per statement.
        writers = {writer for _, writer in kept_rows}
        assert len(kept_rows) <= 6 * len(writers) < 24


def ids_of(url: str, run_id: int) -> list[int]:
    with session_scope(url) as session:
        return list(session.scalars(select(Message.id).where(Message.run_id == run_id)))

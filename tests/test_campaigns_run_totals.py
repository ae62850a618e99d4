"""A run's totals (campaigns.stats) always equal what its message rows say, on both
databases, through expansion (COPY on PostgreSQL), claims, releases and results."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select, update

from campaigns.claims import claim_batch, release
from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message, RunStatusTotal, Suppression
from campaigns.stats import run_stats, status_counts
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

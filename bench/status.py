"""Status of a large run while it sends: `campaigns.stats.run_stats` (what `clarion
campaign status` and the API answer with) on a run of ``--recipients`` messages.

    flock /tmp/bench.lock .venv/bin/python bench/status.py --recipients 1000000

A fresh PostgreSQL database, the run expanded, then a process that keeps sending: it
claims 1000 pending rows and records them sent (with a price), as a worker does, as fast
as it can. Meanwhile ``--samples`` answers of ``run_stats`` are timed, and, for
comparison, the same figures counted from the message rows (what the status did before
the run's totals were kept). Prints the medians and 95th percentiles in milliseconds,
and the query plans of the status's queries.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text

from bench.common import scratch_database, seed_contacts


def sender(db_url: str, run_id: int) -> None:
    """Runs in its own process until killed: claim 1000, record them sent."""
    import uuid
    from decimal import Decimal

    from sqlalchemy import update

    from campaigns.claims import claim_batch
    from campaigns.clock import utcnow
    from campaigns.db import session_scope
    from campaigns.models import Message

    with session_scope(db_url) as session:
        while True:
            now = utcnow()
            batch = claim_batch(
                session, run_id, 1000, token=uuid.uuid4().hex, lease_until=now, now=now
            )
            session.commit()
            if not batch:
                return
            session.execute(
                update(Message)
                .where(Message.id.in_([c.id for c in batch]))
                .values(status="sent", price=Decimal("0.0825"), parts=1, claim_token=None)
            )
            session.commit()


def explain_writes(db_url: str, run_id: int) -> dict[str, str]:
    """EXPLAIN ANALYZE of a claim of 1000 rows and of the settle of a claimed batch (as
    campaigns.claims writes them), each rolled back, at the run's full size."""
    import psycopg

    from campaigns.db import normalise_url

    claim = (
        "UPDATE messages SET status = 'claimed', claim_token = %(t)s, lease_until = now(),"
        " attempted_at = now() WHERE messages.id = ANY(ARRAY(SELECT messages.id FROM messages"
        " WHERE messages.run_id = %(r)s AND messages.status = 'pending' AND"
        " (messages.not_before IS NULL OR messages.not_before <= now())"
        " ORDER BY messages.status, messages.id LIMIT 1000 FOR UPDATE SKIP LOCKED))"
        " AND messages.status = 'pending'"
        " RETURNING messages.id, messages.phone, messages.body, messages.attempts"
    )
    settle = (
        "UPDATE messages AS m SET provider_message_id = v.provider_message_id,"
        " status = 'sent', claim_token = NULL, sent_at = now(), price = 0.0825, parts = 1"
        " FROM unnest(%(ids)s::bigint[], %(pm)s::varchar[], %(tok)s::varchar[])"
        " AS v(id, provider_message_id, token)"
        " WHERE m.id = ANY(%(ids)s::bigint[]) AND m.id = v.id AND m.claim_token = v.token"
    )
    dsn = normalise_url(db_url).replace("postgresql+psycopg://", "postgresql://")
    plans = {}
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + claim, {"t": "x", "r": run_id})
        plans["claim (1000 of 1,000,000 pending)"] = "\n".join(r[0] for r in rows)
        conn.rollback()
        ids = [r[0] for r in conn.execute(claim, {"t": "plan", "r": run_id})]
        conn.commit()
        params = {"ids": ids, "pm": [f"p{i}" for i in ids], "tok": ["plan"] * len(ids)}
        rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + settle, params)
        plans["settle (a batch of 1000)"] = "\n".join(r[0] for r in rows)
        conn.rollback()
    return plans


def counted(session: object, run_id: int) -> None:
    """The figures counted from the rows (the status before run totals were kept)."""
    from campaigns.models import Message

    s = session  # type: ignore[assignment]
    s.execute(  # type: ignore[attr-defined]
        select(Message.status, func.count())
        .where(Message.run_id == run_id)
        .group_by(Message.status)
    ).all()
    s.execute(  # type: ignore[attr-defined]
        select(func.sum(Message.price), func.sum(Message.parts)).where(
            Message.run_id == run_id, Message.status == "sent"
        )
    ).one()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        sender(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    from campaigns.db import session_scope
    from campaigns.expand import expand_run
    from campaigns.runs import create_campaign, start_campaign
    from campaigns.stats import run_stats

    with scratch_database() as db_url:
        seed_contacts(db_url, "bench", args.recipients)
        with session_scope(db_url) as session:
            campaign = create_campaign(
                session,
                {
                    "name": "bench",
                    "channel": "sms",
                    "audience": {"lists": ["bench"]},
                    "message": {"body": "Hi {first_name}", "from": "Clarion"},
                },
            )
            run = start_campaign(session, campaign.id)
            assert run is not None
            run_id = run.id
        with session_scope(db_url) as session:
            expand_run(session, run_id, chunk_size=20_000)
        write_plans = explain_writes(db_url, run_id)
        proc = subprocess.Popen([sys.executable, __file__, "--sender", db_url, str(run_id)])
        try:
            time.sleep(3)  # sending under way
            kept, rows = [], []
            for _ in range(args.samples):
                with session_scope(db_url) as session:
                    started = time.perf_counter()
                    stats = run_stats(session, run_id)
                    kept.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    counted(session, run_id)
                    rows.append((time.perf_counter() - started) * 1000)
            sent_at_end = stats.counts["sent"]
            with session_scope(db_url) as session:
                plans = {
                    "totals": "SELECT status, sum(messages), sum(price), sum(parts) FROM"
                    f" run_status_totals WHERE run_id = {run_id} GROUP BY status",
                    "waiting": "SELECT count(*), min(not_before) FROM messages WHERE"
                    f" run_id = {run_id} AND status = 'pending' AND not_before > now()",
                    "failure reasons": "SELECT error, count(*) FROM messages WHERE"
                    f" run_id = {run_id} AND status IN ('failed', 'skipped', 'expired')"
                    " GROUP BY error",
                }
                explained = {
                    name: "\n".join(
                        r[0] for r in session.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}"))
                    )
                    for name, sql in plans.items()
                }
        finally:
            proc.kill()
            proc.wait()
    q = statistics.quantiles
    print(f"run of {args.recipients:,} messages, {sent_at_end:,} sent by the last sample")
    print("| status from | median ms | p95 ms |")
    print(f"| run totals (run_stats) | {statistics.median(kept):.1f} | {q(kept, n=20)[-1]:.1f} |")
    print(f"| counting the rows | {statistics.median(rows):.1f} | {q(rows, n=20)[-1]:.1f} |")
    for name, plan in {**write_plans, **explained}.items():
        print(f"\n{name}:\n{plan}")


if __name__ == "__main__":
    main()

"""Status of a large run while it sends: `campaigns.stats.run_stats` (what `clarion
campaign status` and the API answer with) on a run of ``--recipients`` messages.

    flock /tmp/bench.lock .venv/bin/python bench/status.py --recipients 1000000

A fresh PostgreSQL database, the run expanded, then a process that keeps sending: it
claims 1000 pending rows and records them sent (with a price), then records the
receipts of the batch before, as a worker and the receipt poller do, as fast as it can.
Meanwhile ``--samples`` answers of ``run_stats`` are timed, and, for comparison, the same
figures counted from the message rows (what the status did before the run's totals, and
then its receipts, were kept). Prints the medians and 95th percentiles in milliseconds,
and the query plans of the claim, the settle and the status, each statement captured as
the code sends it and explained (EXPLAIN ANALYZE, rolled back) at the run's full size.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.common import scratch_database, seed_contacts, sms_campaign, started_run
from tests.statements import captured


def sender(db_url: str, run_id: int) -> None:
    """Runs in its own process until killed: claim 1000, record them sent (with a
    provider message id), then the delivery receipts of the batch before, as the receipt
    poller records them (``campaigns.receipts.apply_receipts``: 950 delivered, 50
    failed)."""
    import uuid
    from decimal import Decimal

    from sqlalchemy import String, cast, literal, update

    from campaigns.claims import claim_batch
    from campaigns.clock import utcnow
    from campaigns.db import session_scope
    from campaigns.models import Message
    from campaigns.receipts import apply_receipts

    before: list[int] = []
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
                .values(
                    status="sent",
                    price=Decimal("0.0825"),
                    parts=1,
                    claim_token=None,
                    provider_message_id=literal("p", String) + cast(Message.id, String),
                )
            )
            session.commit()
            apply_receipts(
                session,
                [(f"p{i}", "failed" if i % 20 == 0 else "delivered") for i in before],
            )
            session.commit()
            before = [c.id for c in batch]


def _explain(db_url: str, statements: list[tuple[str, Any]]) -> list[str]:
    """EXPLAIN ANALYZE of each statement with its own parameters, each rolled back."""
    from campaigns.db import get_engine

    plans = []
    with get_engine(db_url).connect() as conn:
        for statement, params in statements:
            if statement.lstrip().upper().startswith(("SELECT CLOCK_TIMESTAMP", "SAVEPOINT")):
                continue
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement, params)
            first = " ".join(statement.split())[:110]
            lines = ("    " + (r[0] if len(r[0]) <= 150 else r[0][:150] + " ...") for r in rows)
            plans.append(first + " ...\n" + "\n".join(lines))
            conn.rollback()
    return plans


def explain_writes(db_url: str, run_id: int) -> dict[str, str]:
    """EXPLAIN ANALYZE of the statements ``campaigns.claims`` runs to claim a batch of
    1000 and to record it as sent (``claims.record``), captured from the code itself
    and each rolled back, at the run's full size."""
    from campaigns import claims
    from campaigns.clock import db_now

    def claim(session: Session) -> object:
        now = db_now(session)
        return claims.claim_batch(
            session, run_id, 1000, token="plan", lease_until=now + timedelta(minutes=5), now=now
        )

    plans = {"claim (1000 of the run's pending rows)": _explain(db_url, captured(db_url, claim))}
    # A batch claimed for real, to settle.
    from campaigns.db import session_scope

    with session_scope(db_url) as session:
        now = db_now(session)
        batch = claims.claim_batch(
            session, run_id, 1000, token="plan", lease_until=now + timedelta(minutes=5), now=now
        )

    def settle(session: Session) -> None:
        now = db_now(session)
        results = [
            claims.Sent(row.id, row.attempts + 1, f"p{row.id}", "SUCCESS", 1, Decimal("0.0825"))
            for row in batch
        ]
        claims.record(session, "plan", results, attempted_at=now, now=now)

    plans["settle (the claimed batch of 1000, as sent)"] = _explain(
        db_url, captured(db_url, settle)
    )
    return {name: "\n".join(found) for name, found in plans.items()}


def explain_status(db_url: str, run_id: int) -> dict[str, str]:
    """EXPLAIN ANALYZE of every statement ``run_stats`` runs, captured from the code."""
    from campaigns.stats import run_stats

    found = _explain(db_url, captured(db_url, lambda session: run_stats(session, run_id)))
    return {"status (every statement of run_stats)": "\n".join(found)}


def counted(session: Session, run_id: int) -> None:
    """The figures counted from the rows: the status before run totals were kept, and its
    count of delivery receipts before they were kept too (migration 0013)."""
    from campaigns.models import Message

    session.execute(
        select(Message.status, func.count())
        .where(Message.run_id == run_id)
        .group_by(Message.status)
    ).all()
    session.execute(
        select(func.sum(Message.price), func.sum(Message.parts)).where(
            Message.run_id == run_id, Message.status == "sent"
        )
    ).one()
    receipts_counted(session, run_id)


def receipts_counted(session: Session, run_id: int) -> None:
    """The receipt count as ``campaigns.stats`` made it before migration 0013."""
    from campaigns.models import Message

    session.execute(
        select(Message.delivery_status, func.count())
        .where(Message.run_id == run_id, Message.delivery_status.is_not(None))
        .group_by(Message.delivery_status)
    ).all()


def explain_receipts_counted(db_url: str, run_id: int) -> dict[str, str]:
    found = _explain(db_url, captured(db_url, lambda session: receipts_counted(session, run_id)))
    return {"receipts counted from the rows (the status's count before 0013)": "\n".join(found)}


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
    from campaigns.stats import run_stats

    with scratch_database() as db_url:
        seed_contacts(db_url, "bench", args.recipients)
        run_id = started_run(db_url, sms_campaign(db_url, body="Hi {first_name}"))
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
            explained = explain_status(db_url, run_id) | explain_receipts_counted(db_url, run_id)
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

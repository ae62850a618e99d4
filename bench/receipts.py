"""Delivery receipts recorded, as the receipt poller records them, on PostgreSQL and SQLite.

    flock /tmp/bench.lock .venv/bin/python bench/receipts.py --messages 200000 --runs 3

Per run and database: a fresh database holding one run of ``--messages`` sent messages
(expanded by ``campaigns.expand.expand_run``, then marked sent with provider ids, as a
worker's results leave them), then their receipts ("delivered") recorded through
``campaigns.receipts.apply_receipts`` in chunks of ``--chunk``, each committed, as
``workers.receipts.poll_receipts`` does. Prints receipts per second, this process's CPU
and (PostgreSQL) the database's per 1000 receipts, the plan of one chunk's statement, and
checks that the run's kept delivery totals equal its rows.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DatabaseCpu, scratch_database, seed_contacts

STATUS = "delivered"


def _prepare(db_url: str, messages: int) -> list[str]:
    """A run of ``messages`` sent messages; their provider ids, in the order sent."""
    from sqlalchemy import String, cast, literal, select, update

    from campaigns.db import session_scope
    from campaigns.expand import expand_run
    from campaigns.migrate import upgrade
    from campaigns.models import Message
    from tests.seed import seed_campaign, seed_list, us_numbers

    upgrade(db_url)
    if db_url.startswith("sqlite"):
        seed_list(db_url, "bench", us_numbers(messages))
    else:
        seed_contacts(db_url, "bench", messages)
    _, run_id = seed_campaign(db_url, ["bench"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
    with session_scope(db_url) as session:
        session.execute(
            update(Message)
            .where(Message.run_id == run_id)
            .values(
                status="sent",
                provider_message_id=literal("P", String) + cast(Message.id, String),
            )
        )
    with session_scope(db_url) as session:
        ids = session.scalars(select(Message.id).where(Message.run_id == run_id)).all()
    if not db_url.startswith("sqlite"):
        _analyze(db_url)
    return [f"P{i}" for i in sorted(ids)]


def _analyze(db_url: str) -> None:
    from sqlalchemy import text

    from campaigns.db import get_engine

    with get_engine(db_url).connect() as conn:
        conn.execute(text("ANALYZE messages"))
        conn.commit()


def _plan(db_url: str, chunk: list[str]) -> list[str]:
    """EXPLAIN of the chunk's statement, as apply_receipts sends it (PostgreSQL)."""
    from sqlalchemy import event

    from campaigns.db import get_engine, session_scope
    from campaigns.receipts import apply_receipts

    engine = get_engine(db_url)
    plan: list[str] = []

    def explain(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if statement.startswith("UPDATE messages"):
            # An executemany (one statement per receipt): the plan of its first.
            cursor.execute("EXPLAIN " + statement, params[0] if many else params)
            # The chunk's ids, written out in the plan, are cut short.
            plan.extend(re.sub(r"'\{[^}]{60,}\}'", "'{...}'", row[0]) for row in cursor.fetchall())

    event.listen(engine, "before_cursor_execute", explain)
    try:
        with session_scope(db_url) as session:
            apply_receipts(session, [(p, STATUS) for p in chunk])
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", explain)
    return plan


def measure(db_url: str, messages: int, chunk: int) -> dict[str, Any]:
    from campaigns.db import session_scope
    from campaigns.models import Message
    from campaigns.receipts import apply_receipts
    from campaigns.stats import delivery_counts, run_stats

    provider_ids = _prepare(db_url, messages)
    postgres = not db_url.startswith("sqlite")
    plan = _plan(db_url, provider_ids[:chunk]) if postgres else []
    database = DatabaseCpu(db_url).start() if postgres else None
    cpu, started = time.process_time(), time.perf_counter()
    written = 0
    with session_scope(db_url) as session:
        for i in range(0, len(provider_ids), chunk):
            written += apply_receipts(session, [(p, STATUS) for p in provider_ids[i : i + chunk]])
            session.commit()
    seconds = time.perf_counter() - started
    ours = time.process_time() - cpu
    database_cpu = database.stop() if database else None
    with session_scope(db_url) as session:
        run_id = session.query(Message.run_id).limit(1).scalar()
        stats = run_stats(session, run_id)
        kept = (stats.delivered, stats.undelivered)
        assert kept == delivery_counts(session, run_id) == (messages, 0), kept
    return {
        "receipts": messages,
        "written": written,
        "receipts_per_s": round(messages / seconds),
        "seconds": round(seconds, 2),
        "cpu_s_per_1000_this_process": round(ours * 1000 / messages, 4),
        "cpu_s_per_1000_database": (
            round(database_cpu * 1000 / messages, 4) if database_cpu is not None else None
        ),
        "plan": plan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--databases", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"]
    )
    args = parser.parse_args()
    for kind in args.databases:
        results = []
        for _ in range(args.runs):
            if kind == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    results.append(measure(f"sqlite:///{tmp}/bench.db", args.messages, args.chunk))
            else:
                with scratch_database() as url:
                    results.append(measure(url, args.messages, args.chunk))
        rates = [r["receipts_per_s"] for r in results]
        print(
            json.dumps(
                {
                    "database": kind,
                    "receipts_per_s_median": statistics.median(rates),
                    "runs": [{k: v for k, v in r.items() if k != "plan"} for r in results],
                    "plan": results[0]["plan"],
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()

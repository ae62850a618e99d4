"""Lease recovery (``claims.expire_leases``, run by every scheduler tick) with many
cancelled runs kept, and a large messages table.

    .venv/bin/python bench/lease_recovery.py --cancelled 2000 --messages 300000

A fresh PostgreSQL database: one run with ``--messages`` sent rows, ``--cancelled``
cancelled runs, nothing to recover. Prints the median of ``--repeat`` recoveries and the
plan of the statement that looks for claimed rows without a claim row.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch_database
from campaigns import claims
from campaigns.clock import db_now
from campaigns.db import get_engine, session_scope


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cancelled", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with scratch_database() as url:
        with session_scope(url) as session:
            session.execute(
                text(
                    "INSERT INTO campaigns (name, channel, status, definition, created_at)"
                    " VALUES ('bench', 'sms', 'active', '{}', now())"
                )
            )
            session.execute(
                text(
                    "INSERT INTO runs (campaign_id, occurrence, status, key, spent,"
                    " duplicates_removed, rate_limited, created_at)"
                    " SELECT 1, now() - make_interval(mins => g), CASE WHEN g = 0 THEN"
                    " 'sending' ELSE 'cancelled' END, md5(g::text), 0, 0, 0, now()"
                    " FROM generate_series(0, :n) g"
                ).bindparams(n=args.cancelled)
            )
            session.execute(
                text(
                    "INSERT INTO messages (run_id, phone, body, status, attempts, lookups)"
                    " SELECT 1, '+1201' || lpad(g::text, 7, '0'), 'hi', 'sent', 1, 0"
                    " FROM generate_series(1, :m) g"
                ).bindparams(m=args.messages)
            )
        with session_scope(url) as session:
            session.execute(text("ANALYZE"))
        times = []
        for _ in range(args.repeat):
            with session_scope(url) as session:
                now = db_now(session)
                start = time.perf_counter()
                claims.expire_leases(session, now, grace_seconds=90)
                times.append(time.perf_counter() - start)
        print(
            f"{args.cancelled} cancelled runs, {args.messages} messages: expire_leases median "
            f"{statistics.median(times) * 1000:.1f} ms of {args.repeat}"
        )
        # The plan of the look-up as the code sends it.
        sent: list[tuple[str, object]] = []

        def keep(
            _conn: object, _cursor: object, statement: str, params: object, *_: object
        ) -> None:
            if statement.lstrip().startswith("SELECT") and "claims" in statement:
                sent.append((statement, params))

        engine = get_engine(url)
        event.listen(engine, "before_cursor_execute", keep)
        with session_scope(url) as session:
            claims.expire_leases(session, db_now(session), grace_seconds=90)
        event.remove(engine, "before_cursor_execute", keep)
        with engine.connect() as conn:
            for statement, params in sent:
                plan = conn.exec_driver_sql("EXPLAIN " + statement, params)  # type: ignore[arg-type]
                print("\n".join(row[0] for row in plan))


if __name__ == "__main__":
    main()

"""Expansion: a run over one large contact list into message rows (dedupe, suppressions,
rendering), on PostgreSQL and SQLite.

    flock /tmp/bench.lock .venv/bin/python bench/expand.py --recipients 1000000 --runs 3

Per run and database: a fresh database with ``--recipients`` contacts (one in 1000 of
them suppressed), an unscheduled campaign with a one-placeholder body, then, in a
process of its own (peak memory sampled), ``campaigns.expand.expand_run`` of its run.
The yardstick, timed in the same process: the bulk insert of the same rows (run, contact,
phone, body, status) into a bare table of those columns, COPY on PostgreSQL and one
executemany per 5000 rows on SQLite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import MemorySampler, scratch_database, seed_contacts

SUPPRESS_EVERY = 1000
BODY = "Hi {first_name}, 20% off everything this weekend. Reply STOP to opt out"


def prepare(db_url: str, recipients: int) -> int:
    """Contacts, suppressions and a started campaign; returns the run id."""
    from sqlalchemy import insert

    from campaigns.db import session_scope
    from campaigns.migrate import upgrade
    from campaigns.models import Suppression
    from campaigns.runs import create_campaign, start_campaign

    upgrade(db_url)
    if db_url.startswith("sqlite"):
        seed_sqlite(db_url, recipients)
    else:
        seed_contacts(db_url, "bench", recipients)
    with session_scope(db_url) as session:
        phones = [number(i) for i in range(0, recipients, SUPPRESS_EVERY)]
        session.execute(insert(Suppression), [{"phone": p, "reason": "bench"} for p in phones])
        definition = {
            "name": "bench",
            "channel": "sms",
            "audience": {"lists": ["bench"]},
            "message": {"body": BODY, "from": "Clarion"},
        }
        campaign = create_campaign(session, definition)
        run = start_campaign(session, campaign.id)
        assert run is not None
        return run.id


def number(i: int) -> str:
    return f"+1{201 + i // 8_000_000}{200 + (i // 10_000) % 800:03d}{i % 10_000:04d}"


def seed_sqlite(db_url: str, count: int) -> None:
    import sqlite3

    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    with conn:
        list_id = conn.execute(
            "INSERT INTO contact_lists (name, source, created_at)"
            " VALUES ('bench', 'local', '2026-01-01') RETURNING id"
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO contacts (list_id, phone, fields, updated_at)"
            " VALUES (?, ?, ?, '2026-01-01')",
            ((list_id, number(i), f'{{"first_name": "N{i}"}}') for i in range(count)),
        )
    conn.close()


def raw_insert(db_url: str, run_id: int, recipients: int) -> float:
    """The same rows into a bare table, as fast as the database takes them."""
    rows = (
        (run_id, i + 1, number(i), BODY.replace("{first_name}", f"N{i}"), "pending")
        for i in range(recipients)
    )
    columns = "run_id bigint, contact_id bigint, phone varchar(20), body text, status varchar(20)"
    if db_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        conn.execute(f"CREATE TABLE bare ({columns})")
        started = time.perf_counter()
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == 5000:
                conn.executemany("INSERT INTO bare VALUES (?, ?, ?, ?, ?)", batch)
                conn.commit()
                batch = []
        conn.executemany("INSERT INTO bare VALUES (?, ?, ?, ?, ?)", batch)
        conn.commit()
        conn.close()
        return time.perf_counter() - started
    import psycopg

    from campaigns.db import normalise_url

    dsn = normalise_url(db_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as pg:
        pg.execute(f"CREATE TABLE bare ({columns})")
        pg.commit()
        started = time.perf_counter()
        with pg.cursor() as cur, cur.copy("COPY bare FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        pg.commit()
        return time.perf_counter() - started


def child(db_url: str, run_id: int, recipients: int) -> None:
    """Runs in its own process: the raw insert, then the expansion; prints JSON."""
    from campaigns.db import session_scope
    from campaigns.expand import expand_run

    raw_s = raw_insert(db_url, run_id, recipients)
    started = time.perf_counter()
    cpu = time.process_time()
    with session_scope(db_url) as session:
        report = expand_run(session, run_id)
    expand_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "raw_s": raw_s,
                "expand_s": expand_s,
                "expand_cpu_s": time.process_time() - cpu,
                "messages": report.messages,
                "suppressed": report.suppressed,
            }
        )
    )


def one_run(kind: str, recipients: int, tmp: Path) -> dict[str, float]:
    if kind == "sqlite":
        db = tmp / f"bench-{time.monotonic_ns()}.db"
        return measure(f"sqlite:///{db}", recipients)
    with scratch_database() as db_url:
        return measure(db_url, recipients)


def measure(db_url: str, recipients: int) -> dict[str, float]:
    run_id = prepare(db_url, recipients)
    cmd = [sys.executable, __file__, "--child", db_url, str(run_id), str(recipients)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    with MemorySampler([proc.pid], interval=0.2) as sampler:
        out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit("expansion failed")
    result = json.loads(out)
    assert result["messages"] == recipients, result
    assert result["suppressed"] == len(range(0, recipients, SUPPRESS_EVERY)), result
    return {
        "expand_s": result["expand_s"],
        "per_s": recipients / result["expand_s"],
        "raw_s": result["raw_s"],
        "raw_per_s": recipients / result["raw_s"],
        "share": result["raw_s"] / result["expand_s"],
        "cpu_s": result["expand_cpu_s"],
        "peak_mb": max(sampler.peaks.values(), default=0) / 2**20,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--databases", default="postgresql,sqlite")
    args = parser.parse_args()
    print(
        "| database | run | expand s | recipients/s | raw insert s | raw rows/s | share |"
        " expander CPU s | peak RSS MB |"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases.split(","):
            results = []
            for run in range(1, args.runs + 1):
                r = one_run(kind, args.recipients, Path(tmp))
                results.append(r)
                print(row(kind, str(run), r), flush=True)
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            print(row(kind, "median", med), flush=True)


def row(kind: str, run: str, r: dict[str, float]) -> str:
    return (
        f"| {kind} | {run} | {r['expand_s']:.1f} | {r['per_s']:,.0f} | {r['raw_s']:.2f}"
        f" | {r['raw_per_s']:,.0f} | {r['share']:.0%} | {r['cpu_s']:.1f} | {r['peak_mb']:.0f} |"
    )


if __name__ == "__main__":
    main()

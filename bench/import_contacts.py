"""Contact import as a user runs it: `clarion lists import` of a large CSV into PostgreSQL.

    flock /tmp/bench.lock .venv/bin/python bench/import_contacts.py --rows 1000000 --runs 3

Writes a CSV of ``--rows`` rows in 5 columns (E.164 numbers; one row in 1000 has an
invalid number, to be reported without stopping), then, per run, in a fresh database:
the raw COPY of the same file into a bare table of 5 text columns (the database's own
speed, the yardstick), and `clarion lists import` in a process of its own, its peak
memory (the importing process and each worker process) sampled. Prints a table row per
run and the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CLARION, MemorySampler, scratch_database
from campaigns.db import normalise_url

BAD_EVERY = 1000


def write_csv(path: Path, rows: int) -> int:
    """The file; returns how many rows carry an invalid number."""
    bad = 0
    with path.open("w") as out:
        out.write("phone_number,first_name,last_name,email,custom_1\n")
        for i in range(rows):
            area = 201 + (i // 8_000_000)
            exchange = 200 + (i // 10_000) % 800
            phone = f"+1{area}{exchange:03d}{i % 10_000:04d}"
            if i % BAD_EVERY == BAD_EVERY - 1:
                phone, bad = f"+1123{phone[5:]}", bad + 1  # area code 123 does not exist
            out.write(f"{phone},First{i},Last{i},user{i}@example.com,tier{i % 7}\n")
    return bad


def raw_copy(db_url: str, path: Path) -> float:
    dsn = normalise_url(db_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE bare (phone_number text, first_name text, last_name text,"
            " email text, custom_1 text)"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, path.open("rb") as fh:
            sql = "COPY bare FROM STDIN WITH (FORMAT csv, HEADER true)"
            with cur.copy(sql) as copy:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
        conn.commit()
        return time.perf_counter() - started


def one_run(path: Path, rows: int, bad: int) -> dict[str, float]:
    with scratch_database() as db_url:
        copy_s = raw_copy(db_url, path)
        env_cmd = [*CLARION, "lists", "import", str(path), "--list", "bench", "--json"]
        env = {"CLARION_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
        started = time.perf_counter()
        proc = subprocess.Popen(env_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with MemorySampler([proc.pid], interval=0.2) as sampler:
            out, err = proc.communicate()
        import_s = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"import failed: {err.decode()[-2000:]}")
        import json

        report = json.loads(out)
        assert report["imported"] == rows - bad, report["imported"]
        assert len(report["errors"]) == bad
        peaks = sampler.peaks
        main_peak = peaks.get(proc.pid, 0)
        other = max((v for k, v in peaks.items() if k != proc.pid), default=0)
    return {
        "import_s": import_s,
        "rows_per_s": rows / import_s,
        "copy_s": copy_s,
        "copy_rows_per_s": rows / copy_s,
        "share": copy_s / import_s,
        "main_mb": main_peak / 2**20,
        "worker_mb": other / 2**20,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        bad = write_csv(path, args.rows)
        print(f"{args.rows:,} rows, {bad:,} invalid, {path.stat().st_size / 2**20:.0f} MB")
        print(f"load average at start {os.getloadavg()[0]:.2f}")
        print(
            "| run | import s | rows/s | raw COPY s | COPY rows/s | import / COPY"
            " | peak RSS MB | load (1 min) |"
        )
        results = []
        for run in range(1, args.runs + 1):
            r = one_run(path, args.rows, bad)
            results.append(r)
            print(
                f"| {run} | {r['import_s']:.1f} | {r['rows_per_s']:,.0f} | {r['copy_s']:.2f}"
                f" | {r['copy_rows_per_s']:,.0f} | {r['share']:.0%}"
                f" | {r['main_mb']:.0f} (workers {r['worker_mb']:.0f}) | {r['load']:.2f} |",
                flush=True,
            )
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(
            f"| median | {med['import_s']:.1f} | {med['rows_per_s']:,.0f} | {med['copy_s']:.2f}"
            f" | {med['copy_rows_per_s']:,.0f} | {med['share']:.0%}"
            f" | {med['main_mb']:.0f} (workers {med['worker_mb']:.0f}) | {med['load']:.2f} |"
        )


if __name__ == "__main__":
    main()

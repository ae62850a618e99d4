"""Growth: the end-to-end run (bench/dispatch.py) at several sizes; time and CPU per
message at each, to show the cost per message stays flat as the run grows.
The whole run (from `campaign start`, with its fixed start-up cost) and the dispatch phase
(first to last accepted message) are reported apart.

    flock /tmp/bench.lock .venv/bin/python bench/growth.py --sizes 10000,100000,1000000 \
        --runs 3,3,1

Each size runs ``bench/dispatch.py --recipients N --workers 2`` in a process of its own
(fresh database, Redis broker, two workers, the scheduler, the sandbox) the given number
of times; prints a row per run and the median per size: seconds, messages per second,
and CPU-seconds per 1000 messages of the workers, PostgreSQL and the sandbox (and of
Clarion's own processes, the workers and PostgreSQL, without the provider's stand-in);
the share of the machine's CPU left idle and waiting for I/O over the run, and the WAL the server
wrote per 1000 messages and the checkpoints it began meanwhile (server-wide).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def one(size: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE / "dispatch.py"), "--recipients", str(size), "--workers", "2"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out)
    assert result["ledger_exact"], result
    cpu = result["cpu_seconds_per_1000_messages"]
    # PostgreSQL: the processes serving the run's own database; every postgres process of
    # a shared server also counts other databases' work.
    postgresql = cpu.get("postgresql_this_database", cpu["postgresql"])
    return {
        "seconds": result["seconds_start_to_last_accepted"],
        "per_s": result["msg_per_s_start_to_last_accepted"],
        "dispatch_per_s": result["msg_per_s_dispatch_phase"],
        "workers": cpu["workers"],
        "postgresql": postgresql,
        "sandbox": cpu["sandbox"],
        "cpu": cpu["workers"] + postgresql + cpu["sandbox"],
        # Clarion's own processes: the provider's stand-in is not part of the system.
        "ours": cpu["workers"] + postgresql,
        # The whole machine's CPU over the run: left idle, and waiting for I/O.
        "idle": result["machine"]["idle"],
        # Busy with other work than the run's (the scheduler, Redis, other users).
        "others": result["machine"]["busy"] - result["machine"]["ours"],
        "iowait": result["machine"]["iowait"],
        "wal_mb_per_1000": result["postgresql_server"]["wal_mb"] * 1000 / result["sent"],
        "checkpoints": result["postgresql_server"]["checkpoints"],
        "while_expanding_s": result["seconds_while_expanding"],
        "while_expanding": result["msg_per_s_while_expanding"],
        "after_expanded": result["msg_per_s_after_expanded"],
        "tenths": result["msg_per_s_by_tenth"],
        "start_cpu": cpu["campaign_start"] * result["sent"] / 1000,
        "first_accepted": result["seconds_start_to_last_accepted"]
        - result["sent"] / result["msg_per_s_dispatch_phase"],
    }


def row(size: str, run: str, r: dict[str, Any]) -> str:
    return (
        f"| {size} | {run} | {r['seconds']:.1f} | {r['per_s']:,.0f} | {r['dispatch_per_s']:,.0f}"
        f" | {r['cpu']:.3f} | {r['ours']:.3f}"
        f" | {r['workers']:.3f} | {r['postgresql']:.3f} | {r['sandbox']:.3f}"
        f" | {r['idle']:.0%} | {r['others']:.0%} | {r['iowait']:.0%} | {r['wal_mb_per_1000']:.2f}"
        f" | {r['checkpoints']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", default="3,3,1")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = [int(r) for r in args.runs.split(",")]
    print(
        "| recipients | run | seconds | msg/s | msg/s, dispatch phase | CPU-s per 1000 msgs"
        " | of it Clarion's (workers + PostgreSQL)"
        " | workers | PostgreSQL (this database) | sandbox | machine idle"
        " | machine busy, not the run"
        " | I/O wait"
        " | WAL MB per 1000 msgs | checkpoints |"
    )
    phases = []
    for size, count in zip(sizes, runs, strict=True):
        results = []
        for run in range(1, count + 1):
            results.append(one(size))
            print(row(f"{size:,}", str(run), results[-1]), flush=True)
            phases.append(phase_row(f"{size:,}", str(run), results[-1]))
        med = {k: statistics.median(r[k] for r in results if k != "tenths") for k in TABLE}
        print(row(f"{size:,}", "**median**", med), flush=True)
    # The dispatch phase in parts: while the run was still expanded and after, and each
    # tenth of the messages in the order they were sent.
    print(
        "\n| recipients | run | s to the first accepted | `campaign start` CPU-s"
        " | s while expanding | msg/s while expanding | msg/s after"
        " | msg/s by tenth of the messages |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for line in phases:
        print(line)


TABLE = (
    "seconds",
    "per_s",
    "dispatch_per_s",
    "workers",
    "postgresql",
    "sandbox",
    "cpu",
    "ours",
    "idle",
    "others",
    "iowait",
    "wal_mb_per_1000",
    "checkpoints",
)


def phase_row(size: str, run: str, r: dict[str, Any]) -> str:
    tenths = " / ".join("-" if t is None else f"{t / 1000:.1f}k" for t in r["tenths"])
    return (
        f"| {size} | {run} | {r['first_accepted']:.2f} | {r['start_cpu']:.2f}"
        f" | {r['while_expanding_s']:.1f} | {r['while_expanding']:,.0f}"
        f" | {r['after_expanded']:,.0f} | {tenths} |"
    )


if __name__ == "__main__":
    main()

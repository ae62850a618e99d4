"""How long `clarion --help` takes, start to exit: the start-up cost of every command.

Run:  flock /tmp/bench.lock .venv/bin/python bench/cli_startup.py [--runs 15]

Runs the installed `clarion` script the given number of times (after one warm-up run, so
the files are in the page cache) and prints the median wall time and the median CPU time
(user + system) of the process. The CPU time holds when other processes compete for the
cores; the wall time is what a user waits.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _one(command: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    command = [str(Path(sys.executable).with_name("clarion")), "--help"]
    _one(command)  # warm-up
    samples = [_one(command) for _ in range(args.runs)]
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    print(
        json.dumps(
            {
                "runs": args.runs,
                "wall_seconds_median": round(statistics.median(walls), 3),
                "wall_seconds_min": round(min(walls), 3),
                "cpu_seconds_median": round(statistics.median(cpus), 3),
                "load_average_1min": round(_load(), 2),
            }
        )
    )


def _load() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


if __name__ == "__main__":
    main()

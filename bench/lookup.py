"""A history look-up after a crash, in the window of a large run.

Run:  .venv/bin/python bench/lookup.py [--messages 300000] [--missing 7] [--runs 3]

The sandbox (in a thread of this process, over loopback HTTP) holds ``--messages`` SMS of
one run; a dead worker's batch left ``--missing`` numbers the provider never took, plus
three it took last. Measured in the same run: the look-up of those numbers as
reconciliation does it (``workers.reconcile._look_up``), and, for comparison, one walk
of the whole window, which is what a look-up of a missing number used to cost (twice: a
first "not found" is confirmed by a second look-up). Prints seconds and history requests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KEY = "run-bench"


def _history_requests(root: str) -> int:
    stats = httpx.get(f"{root}/_sandbox/stats", timeout=30).json()
    return int(stats["requests_by_endpoint"].get("GET /v3/sms/history", 0))


def main() -> None:
    from clicksend.client import ClickSendClient
    from sandbox.config import SandboxConfig
    from sandbox.server import start_in_thread
    from tests.seed import us_numbers
    from workers.reconcile import _look_up
    from workers.sender import history

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--missing", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    sent = us_numbers(args.messages)
    never = us_numbers(args.missing, start=args.messages)
    wanted = {*never, *sent[-3:]}
    handle = start_in_thread(SandboxConfig(api_key="bench-key", receipt_delay_seconds=3600))
    try:
        with ClickSendClient(handle.base_url, "sandbox", "bench-key", timeout=60) as client:
            for i in range(0, len(sent), 1000):
                client.send_sms(
                    [{"to": p, "body": "hi", "custom_string": KEY} for p in sent[i : i + 1000]]
                )
            rows = []
            for run in range(1, args.runs + 1):
                before, started = _history_requests(handle.root_url), time.perf_counter()
                found = _look_up(client, "sms", KEY, wanted, 0, 2**31)
                look_s = time.perf_counter() - started
                look_n = _history_requests(handle.root_url) - before
                assert set(found) == set(sent[-3:]), "the look-up missed a message"
                before, started = _history_requests(handle.root_url), time.perf_counter()
                walked = sum(1 for _ in history(client, "sms", 0, 2**31))
                walk_s = time.perf_counter() - started
                walk_n = _history_requests(handle.root_url) - before
                assert walked == args.messages
                rows.append((look_s, look_n, walk_s, walk_n))
                print(
                    f"run {run}: look-up {look_s:.2f} s in {look_n} requests;"
                    f" one walk of the window {walk_s:.1f} s in {walk_n} requests",
                    flush=True,
                )
    finally:
        handle.stop()
    look = statistics.median(r[0] for r in rows)
    walk = statistics.median(r[2] for r in rows)
    print(
        f"median: look-up {look:.2f} s ({rows[0][1]} requests) for {len(wanted)} numbers in a"
        f" window of {args.messages:,} messages; one walk of that window {walk:.1f} s"
        f" ({rows[0][3]} requests), twice that before a missing number was called missing"
    )


if __name__ == "__main__":
    main()

"""Scheduler latency: how soon after its time a scheduled campaign's run fires and sends.

    .venv/bin/python bench/scheduler_latency.py --campaigns 50 --recipients 10

Starts `clarion scheduler` (beat) and `clarion worker` processes against a throw-away
PostgreSQL database, the Redis broker and a sandbox process; creates ``--campaigns``
campaigns with ``send_at`` spread over the next seconds (at fractional seconds, so the
tick phase is sampled evenly), waits for every run to complete, and reports p50 / p99 /
max of: run created - occurrence ("fired"), and first message accepted by the provider -
occurrence ("first sent").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench.common import (
    CLARION,
    env_for,
    sandbox_process,
    scratch_database,
    seed_contacts,
    stop_groups,
)
from campaigns.clock import utcnow
from campaigns.db import session_scope
from campaigns.models import Message, Run
from campaigns.runs import create_campaign, start_campaign


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def create_campaigns(url: str, count: int, lead: float, spread: float) -> None:
    first = utcnow() + timedelta(seconds=lead)
    with session_scope(url) as session:
        for i in range(count):
            at = first + timedelta(seconds=spread * i / count)
            definition = {
                "name": f"latency-{i}",
                "channel": "sms",
                "audience": {"lists": ["customers"]},
                "message": {"body": "Reminder {first_name}", "from": "Clarion"},
                "schedule": {"send_at": at.isoformat()},
            }
            campaign = create_campaign(session, definition)
            start_campaign(session, campaign.id)


def measure(url: str) -> dict[str, list[float]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(Run.occurrence, Run.created_at, func.min(Message.sent_at))
            .join(Message, Message.run_id == Run.id)
            .group_by(Run.id)
        ).all()
    return {
        "fired": [(created - at).total_seconds() for at, created, _ in rows],
        "first_sent": [(sent - at).total_seconds() for at, _, sent in rows if sent is not None],
    }


def completed(url: str) -> int:
    with session_scope(url) as session:
        return int(session.scalar(select(func.count()).where(Run.status == "completed")) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--recipients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="worker concurrency")
    parser.add_argument("--tick", type=float, default=1.0, help="scheduler_tick_seconds")
    parser.add_argument("--spread", type=float, default=30.0, help="seconds the times span")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, scratch_database() as url:
        log_dir = Path(tmp)
        seed_contacts(url, "customers", args.recipients)
        with sandbox_process(log_dir) as sandbox:
            env = env_for(
                url,
                sandbox,
                f"bench-sched-{uuid.uuid4().hex[:6]}:",
                CLARION_SCHEDULER_TICK_SECONDS=str(args.tick),
            )
            commands = [
                ["scheduler", "--loglevel", "WARNING"],
                ["worker", "-c", str(args.workers), "--loglevel", "WARNING"],
            ]
            procs = [
                subprocess.Popen(
                    [*CLARION, *cmd],
                    env=env,
                    stdout=(log_dir / f"{cmd[0]}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                for cmd in commands
            ]
            try:
                time.sleep(5)  # both processes up and connected before the first time
                create_campaigns(url, args.campaigns, lead=5.0, spread=args.spread)
                deadline = time.monotonic() + args.spread + 120
                while completed(url) < args.campaigns and time.monotonic() < deadline:
                    time.sleep(0.5)
            finally:
                stop_groups(procs, grace=30)
            samples = measure(url)
    result = {
        "campaigns": args.campaigns,
        "completed": len(samples["fired"]),
        "recipients_per_campaign": args.recipients,
        "tick_seconds": args.tick,
    }
    for name, values in samples.items():
        if values:
            result[name] = {
                "p50": round(statistics.median(values), 3),
                "p99": round(percentile(values, 0.99), 3),
                "max": round(max(values), 3),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

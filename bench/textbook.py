"""Textbook-sender calibration: the reference design's yardstick, measured there at
~540 msg/s (one Celery task and one HTTP request per message, a row update each), run on
this machine beside `bench/dispatch.py`.

    flock /tmp/bench.lock .venv/bin/python bench/textbook.py --recipients 20000

A fresh PostgreSQL database holds ``textbook_messages`` (one row per recipient, seeded
from ``seed_contacts``); the sandbox provider runs in its own process with no rate limit;
two `celery -A bench.textbook_app worker -c 1 --pool prefork` processes consume a queue of
this run's own on the Redis broker. Every row is published as one `send_one(id)` task; the
clock starts at the first publish and stops when no row is left pending (the database is
polled every 0.2 s). Reports msg/s, CPU-seconds per 1000 messages (workers, PostgreSQL,
sandbox, Redis, the publishing process) and the sandbox ledger check (every recipient
exactly once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from kombu import Exchange, Queue
from sqlalchemy import create_engine, func, select, text

from bench.common import (
    REDIS_URL,
    Sandbox,
    cpu_seconds,
    sandbox_process,
    scratch_database,
    seed_contacts,
    stop_groups,
)
from bench.textbook_app import Base, TextbookMessage, send_one

ROOT = Path(__file__).resolve().parent.parent
BODY_SQL = "'Hi ' || (fields->>'first_name') || ', 20% off this week. Reply STOP to opt out'"
REFERENCE_MSG_PER_S = 540


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    print(json.dumps(run(args), indent=2))


def run(args: argparse.Namespace) -> dict[str, object]:
    log_dir = Path(tempfile.mkdtemp(prefix="clarion-bench-textbook-"))
    run_id = uuid.uuid4().hex[:8]
    queue = f"textbook-{run_id}"
    custom_string = f"textbook-{run_id}"
    with scratch_database() as db_url, sandbox_process(log_dir) as sandbox:
        engine = create_engine(db_url)
        try:
            t_seed = time.monotonic()
            ids = seed(engine, db_url, args.recipients)
            seed_seconds = time.monotonic() - t_seed
            env = worker_env(db_url, sandbox, queue, run_id)
            procs: list[subprocess.Popen[bytes]] = []
            try:
                hostnames = []
                for i in range(args.workers):
                    hostname = f"textbook{i}-{run_id}@bench"
                    hostnames.append(hostname)
                    log = (log_dir / f"worker-{i}.log").open("wb")
                    procs.append(
                        subprocess.Popen(
                            [
                                *[sys.executable, "-m", "celery"],
                                *["-A", "bench.textbook_app", "worker"],
                                *["-c", "1", "--pool", "prefork", "-Q", queue],
                                *["--hostname", hostname, "--loglevel", "WARNING"],
                            ],
                            env=env,
                            cwd=ROOT,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
                wait_ready(hostnames, procs, timeout=60)
                worker_pids = [p.pid for p in procs]
                stats_before = sandbox.stats()
                cpu_before = _cpu(worker_pids, sandbox.pid)
                t0_wall = time.time()
                t0 = time.monotonic()
                with send_one.app.producer_or_acquire() as producer:
                    for message_id in ids:
                        send_one.apply_async((message_id,), queue=queue, producer=producer)
                publish_seconds = time.monotonic() - t0
                elapsed = wait_done(engine, t0, args.timeout)
                cpu_after = _cpu(worker_pids, sandbox.pid)
                stats_after = sandbox.stats()
            finally:
                stop_groups(procs, grace=20)
                drop_queue(queue)
            with engine.connect() as conn:
                sent, failed, last_sent = conn.execute(
                    select(
                        func.count().filter(TextbookMessage.status == "sent"),
                        func.count().filter(TextbookMessage.status == "failed"),
                        func.max(TextbookMessage.sent_at),
                    )
                ).one()
        finally:
            engine.dispose()
        ledger = sandbox.ledger(custom_string)
    by_recipient: dict[str, int] = ledger.get("by_recipient", {})
    # requests_total counts every request, the stats call made after the run included
    requests = stats_after.get("requests_total", 0) - stats_before.get("requests_total", 0) - 1
    last_row = last_sent.timestamp() - t0_wall if last_sent is not None else None
    return {
        "recipients": args.recipients,
        "workers": args.workers,
        "design": "textbook: one Celery task + one HTTP request + one row update per message",
        "sent": sent,
        "failed": failed,
        "seconds_first_publish_to_last_sent": round(elapsed, 2),
        "msg_per_s": round(sent / elapsed),
        "seconds_first_publish_to_last_row_sent_at": round(last_row, 2) if last_row else None,
        "msg_per_s_by_row_timestamps": round(sent / last_row) if last_row else None,
        "publish_seconds": round(publish_seconds, 2),
        "publishes_per_s": round(len(ids) / publish_seconds),
        "seed_seconds": round(seed_seconds, 1),
        "requests": requests,
        "http_429": stats_after.get("rate_limited", 0) - stats_before.get("rate_limited", 0),
        "ledger_custom_string": custom_string,
        "ledger_accepted": ledger.get("accepted_total"),
        "ledger_recipients": len(by_recipient),
        "ledger_duplicates": len(ledger.get("duplicates", [])),
        "ledger_exact": (
            ledger.get("accepted_total") == args.recipients == sent
            and len(by_recipient) == args.recipients
            and all(n == 1 for n in by_recipient.values())
            and not ledger.get("duplicates")
        ),
        "cpu_seconds_per_1000_messages": {
            k: round((cpu_after[k] - cpu_before[k]) * 1000 / max(1, sent), 3) for k in cpu_after
        },
        "reference_msg_per_s": REFERENCE_MSG_PER_S,
        "logs": str(log_dir),
    }


def seed(engine: Any, db_url: str, count: int) -> list[int]:
    """``count`` contacts (COPY, as dispatch.py seeds them), then one pending row each."""
    seed_contacts(db_url, "textbook", count)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO textbook_messages (phone, body, status)"
                f" SELECT phone, {BODY_SQL}, 'pending' FROM contacts c"
                " JOIN contact_lists l ON l.id = c.list_id WHERE l.name = 'textbook'"
                " ORDER BY c.id"
            )
        )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE textbook_messages"))
        conn.commit()
        return list(conn.scalars(select(TextbookMessage.id).order_by(TextbookMessage.id)))


def worker_env(db_url: str, sandbox: Sandbox, queue: str, run_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        BENCH_REDIS_URL=REDIS_URL,
        TEXTBOOK_DATABASE_URL=db_url,
        TEXTBOOK_SANDBOX_URL=sandbox.base_url,
        TEXTBOOK_SANDBOX_USERNAME="sandbox",
        TEXTBOOK_SANDBOX_API_KEY=sandbox.api_key,
        TEXTBOOK_QUEUE=queue,
        TEXTBOOK_RUN_ID=run_id,
    )
    return env


def wait_ready(hostnames: list[str], procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """Until every worker answers a ping (each is consuming its queue by then)."""
    deadline = time.monotonic() + timeout
    waiting = set(hostnames)
    while waiting:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a textbook worker exited during start-up; see its log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers not ready: {sorted(waiting)}")
        replies = send_one.app.control.ping(destination=sorted(waiting), timeout=1.0)
        for reply in replies or []:
            waiting -= set(reply)


def wait_done(engine: Any, t0: float, timeout: float) -> float:
    """Seconds from ``t0`` until no row is pending (polled every 0.2 s)."""
    query = select(func.count()).where(TextbookMessage.status == "pending")
    with engine.connect() as conn:
        while True:
            pending = conn.execute(query).scalar_one()
            conn.rollback()
            now = time.monotonic()
            if pending == 0:
                return now - t0
            if now - t0 > timeout:
                raise TimeoutError(f"{pending} rows still pending after {timeout} s")
            time.sleep(0.2)


def drop_queue(queue: str) -> None:
    """Remove the run's queue and its binding tables from Redis. Celery declared the queue
    on a direct exchange of the same name; kombu deletes only what its channel declared, so
    the queue is declared once more and then deleted."""
    with send_one.app.connection_for_write() as conn:
        bound = Queue(queue, Exchange(queue, "direct"), routing_key=queue)(conn.default_channel)
        bound.declare()
        bound.delete()


def _cpu(worker_pids: list[int], sandbox_pid: int) -> dict[str, float]:
    me = psutil.Process().cpu_times()
    return {
        "workers": cpu_seconds(worker_pids),
        "sandbox": cpu_seconds([sandbox_pid]),
        "postgresql": cpu_seconds([], names=("postgres",)),
        "redis": cpu_seconds([], names=("redis-server",)),
        "publisher_and_poller": me.user + me.system,
    }


if __name__ == "__main__":
    main()

"""Dispatch benchmark: one SMS run through real worker processes, PostgreSQL, the Redis
broker and the sandbox provider (a separate process).

    .venv/bin/python bench/dispatch.py --recipients 100000 --workers 2          # throughput
    .venv/bin/python bench/dispatch.py --recipients 300000 --workers 4 --limit-rps 2
    .venv/bin/python bench/dispatch.py --recipients 120000 --workers 2 --limit-rps 2 --jitter-ms 300
    .venv/bin/python bench/dispatch.py --recipients 1000000 --workers 2         # memory
    .venv/bin/python bench/dispatch.py --recipients 1000000 --workers 1 --concurrency 2 \
        --limit-rps 1 --until-expanded                       # expansion while rate-limited

Reports messages per second from `campaign start` to the last message the sandbox
accepted (and the dispatch phase alone), 429s, the ledger check (every recipient exactly
once) and the peak resident memory of each worker process; over the same window, the
machine's idle, I/O-wait and other-work shares, the server's WAL and checkpoints, and the
dispatch phase in parts (while the run was still expanded and after; each tenth).
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
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from sqlalchemy import func, select

from bench.common import (
    CLARION,
    DatabaseCpu,
    MemorySampler,
    cpu_seconds,
    env_for,
    free_port,
    sandbox_process,
    scheduler_process,
    scratch_database,
    seed_contacts,
    sms_campaign,
    workers,
)
from campaigns.db import session_scope
from campaigns.models import Message, Run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="pool processes per worker (clarion worker -c N); dispatch chains = workers x N",
    )
    parser.add_argument(
        "--limit-rps", type=float, default=0.0, help="sandbox limit, requests/s (0: none)"
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--broker",
        default="redis",
        choices=["redis", "amqp"],
        help="Celery broker: Redis, or RabbitMQ at BENCH_AMQP_URL (a queue of its own)",
    )
    parser.add_argument(
        "--limiter",
        default="",
        help="margin,burst_seconds of Clarion's request limiter (default: the settings')",
    )
    parser.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        help="sandbox arrival jitter: each request is counted 0..J ms after it was sent",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--until-expanded",
        action="store_true",
        help="stop once the run is expanded; report how long expanding took",
    )
    args = parser.parse_args()
    prefix = f"clarion-bench:{uuid.uuid4().hex[:8]}:"
    try:
        print(json.dumps(run(args, prefix), indent=2))
    finally:
        if args.broker == "amqp":
            _drop_queue("clarion-" + prefix.strip(":").replace(":", "-"))


def run(args: argparse.Namespace, prefix: str) -> dict[str, object]:
    log_dir = Path(tempfile.mkdtemp(prefix="clarion-bench-"))
    with scratch_database() as db_url, sandbox_process(log_dir) as sandbox:
        extra = {
            "CLARION_BATCH_SIZE": str(args.batch_size),
            "CLARION_DISPATCH_PARALLELISM": str(args.workers * args.concurrency),
        }
        if args.limit_rps:
            burst = max(1, int(args.limit_rps))
            sandbox.configure(
                rate_limit_rps=args.limit_rps,
                rate_limit_burst=burst,
                arrival_jitter_ms=args.jitter_ms,
            )
            extra["CLARION_RATE_LIMIT_REQUESTS_PER_SECOND"] = str(args.limit_rps)
            if args.limiter:
                margin, burst_seconds = args.limiter.split(",")
                extra["CLARION_RATE_LIMIT_MARGIN"] = margin
                extra["CLARION_RATE_LIMIT_BURST_SECONDS"] = burst_seconds
        if args.broker == "amqp":
            extra["CLARION_BROKER_URL"] = AMQP_URL
            extra["CLARION_BROKER_QUEUE"] = "clarion-" + prefix.strip(":").replace(":", "-")
        env = env_for(db_url, sandbox, prefix, **extra)
        t_seed = time.monotonic()
        seed_contacts(db_url, "bench", args.recipients)
        seed_seconds = time.monotonic() - t_seed
        campaign_id = sms_campaign(db_url)
        # The production topology: the workers and one scheduler (lease recovery, kicks,
        # housekeeping such as vacuuming the messages table).
        # Under a limit each worker serves its metrics, read at the end: where a chain's time
        # went (waiting for its turn, the request, the rest).
        slots = args.workers * args.concurrency
        metrics_port = _free_port_range(slots) if args.limit_rps else 0
        with (
            workers(
                env, args.workers, log_dir, args.concurrency, metrics_port=metrics_port
            ) as procs,
            scheduler_process(env, log_dir) as scheduler,
        ):
            time.sleep(4)  # let the workers connect before the clock starts
            stats_before = sandbox.stats()
            worker_pids = [p.pid for p in procs]
            cpu_before = _cpu(worker_pids, sandbox.pid, scheduler.pid)
            cpu_before["campaign_start"] = _children_cpu()
            machine_before, server_before = psutil.cpu_times(), _server_stats(db_url)
            database_cpu = DatabaseCpu(db_url).start()
            with MemorySampler(worker_pids) as memory:
                t0 = time.time()
                subprocess.run(
                    [*CLARION, "campaign", "start", str(campaign_id)],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                # The command's own CPU: its imports, checks over the audience, exit.
                cpu_after_start = _children_cpu()
                if args.until_expanded:
                    return _expanded(db_url, campaign_id, t0, args)
                run_id, status = _wait(db_url, campaign_id, args.timeout)
            stats_after = sandbox.stats()
            cpu_after = _cpu(worker_pids, sandbox.pid, scheduler.pid)
            machine_after, server_after = psutil.cpu_times(), _server_stats(db_url)
            cpu_after["postgresql_this_database"] = database_cpu.stop()
            cpu_after["campaign_start"] = cpu_after_start
            cpu_before["postgresql_this_database"] = 0.0
            chains = _chain_times(metrics_port, slots) if metrics_port else {}
            limiter = _limiter_stats(env) if args.limit_rps else {}
        with session_scope(db_url) as session:
            first, last, sent = session.execute(
                select(func.min(Message.sent_at), func.max(Message.sent_at), func.count()).where(
                    Message.run_id == run_id, Message.status == "sent"
                )
            ).one()
            assert first is not None and last is not None, "the run sent nothing"
            run_row = session.get(Run, run_id)
            assert run_row is not None
            key, started = run_row.key, run_row.started_at
            phases = _phases(session, run_id, run_row.expanded_at)
        ledger = sandbox.ledger(key)
    total = last.timestamp() - t0
    dispatch = max(1e-9, last.timestamp() - first.timestamp())
    by_endpoint = _delta(
        stats_before.get("requests_by_endpoint", {}),
        stats_after.get("requests_by_endpoint", {}),
    )
    # Provider requests only: not the benchmark's own reads of the sandbox's admin pages.
    requests = sum(n for k, n in by_endpoint.items() if " /_sandbox/" not in k)
    throttled = stats_after.get("rate_limited", 0) - stats_before.get("rate_limited", 0)
    result: dict[str, object] = {
        "recipients": args.recipients,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "broker": args.broker,
        "limit_rps": args.limit_rps,
        "jitter_ms": args.jitter_ms,
        "limiter": args.limiter or "settings",
        "run_status": status,
        "sent": sent,
        "seconds_start_to_last_accepted": round(total, 2),
        "msg_per_s_start_to_last_accepted": round(sent / total),
        "msg_per_s_dispatch_phase": round(sent / dispatch),
        "expansion_seconds": round((first - started).total_seconds(), 2) if started else None,
        **phases,
        "seed_seconds": round(seed_seconds, 1),
        "requests": requests,
        "http_429": throttled,
        "http_429_share": round(throttled / requests, 4) if requests else 0,
        "requests_by_endpoint": by_endpoint,
        "sandbox_busiest_second_requests": stats_after.get("max_requests_in_1s"),
        "ledger_accepted": ledger.get("accepted_total"),
        "ledger_duplicates": len(ledger.get("duplicates", [])),
        "ledger_exact": ledger.get("accepted_total") == sent and not ledger.get("duplicates"),
        "cpu_seconds_per_1000_messages": {
            k: round((cpu_after[k] - cpu_before[k]) * 1000 / max(1, sent), 3) for k in cpu_after
        },
        # The whole machine over the same window (every process, ours or not): a run
        # that is slower with the same CPU per message waits on something, or shares it.
        "machine": _machine_shares(
            machine_before,
            machine_after,
            ours=sum(
                cpu_after[k] - cpu_before[k]
                for k in (
                    "workers",
                    "sandbox",
                    "postgresql_this_database",
                    "campaign_start",
                    "scheduler",
                )
            ),
        ),
        # The PostgreSQL server (every database): WAL written, checkpoints begun.
        "postgresql_server": {k: server_after[k] - server_before[k] for k in server_after},
        "peak_rss_mb_per_process": {
            str(pid): round(rss / 2**20, 1) for pid, rss in memory.peaks.items()
        },
        "logs": str(log_dir),
    }
    if args.limit_rps:
        result["limit_efficiency"] = round(sent / (dispatch * args.limit_rps * args.batch_size), 4)
        # Every accepted request counts against the limit (sends and polls alike).
        accepted = requests - throttled
        result["accepted_requests_per_limit"] = round(accepted / (dispatch * args.limit_rps), 4)
        # The same without the limiter's burst at the start (a full bucket granted at once),
        # which a short run would otherwise count as sending above the limit.
        burst_requests = _request_burst(args)
        result["limit_efficiency_after_burst"] = round(
            (sent / args.batch_size - burst_requests) / (dispatch * args.limit_rps), 4
        )
        result["dispatch_phase_seconds"] = round(dispatch, 2)
        result["sends"] = round(sent / args.batch_size)
        # The worker side: sends per chain-second; what the chains did with their time.
        result["chains"] = chains
        result["limiter"] = {
            k: round(limiter[k], 3) for k in ("grants", "rate_limited", "factor") if k in limiter
        }
    return result


def _request_burst(args: argparse.Namespace) -> float:
    """The request burst Clarion's limiter was configured with for this run."""
    from config.settings import Settings
    from workers.ratelimit import provider_request_limits

    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    margin, burst_seconds = defaults.rate_limit_margin, defaults.rate_limit_burst_seconds
    if args.limiter:
        margin, burst_seconds = (float(x) for x in args.limiter.split(","))
    burst = provider_request_limits(args.limit_rps, margin, burst_seconds)[1]
    return burst or 0.0


def _free_port_range(count: int) -> int:
    """A first port with the ``count`` after it free too (checked, not reserved)."""
    import socket

    for _ in range(50):
        base = free_port()
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("0.0.0.0", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range for the workers' metrics")


def _chain_times(port: int, count: int) -> dict[str, float]:
    """Summed over the workers: limiter turns, seconds waited for them, send requests and
    their seconds (from each worker's Prometheus metrics)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    out = {"turns": 0.0, "waited_s": 0.0, "sends": 0.0, "send_request_s": 0.0}
    for i in range(count):
        text = httpx.get(f"http://127.0.0.1:{port + i}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "clarion_limiter_wait_seconds_sum":
                    out["waited_s"] += sample.value
                elif sample.name == "clarion_limiter_wait_seconds_count":
                    out["turns"] += sample.value
                elif sample.labels.get("endpoint") == "POST /sms/send":
                    if sample.name == "clarion_provider_request_duration_seconds_sum":
                        out["send_request_s"] += sample.value
                    elif sample.name == "clarion_provider_request_duration_seconds_count":
                        out["sends"] += sample.value
    return {k: round(v, 2) for k, v in out.items()}


def _limiter_stats(env: dict[str, str]) -> dict[str, float]:
    """The account limiter's counters in Redis, read with the workers' own settings."""
    from unittest import mock

    from config.settings import Settings
    from workers.context import limiter_stats

    clarion = {k: v for k, v in env.items() if k.startswith("CLARION_")}
    with mock.patch.dict(os.environ, clarion):
        return limiter_stats(Settings(_env_file=None)) or {}  # type: ignore[call-arg]


AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _drop_queue(name: str) -> None:
    from kombu import Connection

    with Connection(AMQP_URL) as connection:
        channel: Any = connection.channel()  # a pyamqp channel, typed as kombu's base
        channel.queue_delete(name)
        channel.exchange_delete(name)


def _phases(session: Any, run_id: int, expanded_at: Any) -> dict[str, object]:
    """The dispatch phase in parts: messages per second while the run was still being
    expanded and after, and for each tenth of the messages in the order they were sent
    (a run that slows as its table grows shows it in the later tenths)."""
    from sqlalchemy import text

    cuts = session.execute(
        text(
            "SELECT percentile_disc(ARRAY[0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1])"
            " WITHIN GROUP (ORDER BY sent_at) FROM messages"
            " WHERE run_id = :r AND status = 'sent'"
        ),
        {"r": run_id},
    ).scalar_one()
    sent = session.execute(
        text("SELECT count(*) FROM messages WHERE run_id = :r AND status = 'sent'"),
        {"r": run_id},
    ).scalar_one()
    before = session.execute(
        text(
            "SELECT count(*) FROM messages WHERE run_id = :r AND status = 'sent' AND sent_at <= :e"
        ),
        {"r": run_id, "e": expanded_at},
    ).scalar_one()
    first, last = cuts[0], cuts[-1]
    while_expanding = max(1e-9, (expanded_at - first).total_seconds())
    after = max(1e-9, (last - expanded_at).total_seconds())
    return {
        "msg_per_s_while_expanding": round(before / while_expanding),
        "msg_per_s_after_expanded": round((sent - before) / after),
        "seconds_while_expanding": round(while_expanding, 2),
        # A batch's rows share one time: a tenth within one batch (a small run) has none.
        "msg_per_s_by_tenth": [
            round(sent / 10 / (b - a).total_seconds()) if b > a else None for a, b in pairwise(cuts)
        ],
    }


def _machine_shares(before: Any, after: Any, ours: float) -> dict[str, float]:
    """Shares of the machine's CPU time between two ``psutil.cpu_times()``: busy (user,
    system and the rest), of it the run's own (``ours``, CPU-seconds of its workers,
    database and sandbox), idle, and waiting for I/O."""
    spent = {k: getattr(after, k) - getattr(before, k) for k in after._fields}
    total = sum(spent.values()) or 1e-9
    idle, iowait = spent.get("idle", 0.0), spent.get("iowait", 0.0)
    return {
        "busy": round((total - idle - iowait) / total, 3),
        "ours": round(ours / total, 3),
        "idle": round(idle / total, 3),
        "iowait": round(iowait / total, 3),
    }


def _server_stats(db_url: str) -> dict[str, float]:
    """Server-wide counters: MB of WAL written, checkpoints (timed and requested)."""
    import psycopg

    from campaigns.db import normalise_url

    dsn = normalise_url(db_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        wal, checkpoints = conn.execute(
            "SELECT (SELECT wal_bytes FROM pg_stat_wal) / 1048576.0,"
            " (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
        ).fetchone()  # type: ignore[misc]
    return {"wal_mb": round(float(wal), 1), "checkpoints": float(checkpoints)}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v - before.get(k, 0)}


def _children_cpu() -> float:
    """CPU-seconds of this process's finished children (the `campaign start` command)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _cpu(worker_pids: list[int], sandbox_pid: int, scheduler_pid: int) -> dict[str, float]:
    return {
        "workers": cpu_seconds(worker_pids),
        "sandbox": cpu_seconds([sandbox_pid]),
        "scheduler": cpu_seconds([scheduler_pid]),
        "postgresql": cpu_seconds([], names=("postgres",)),
        "redis": cpu_seconds([], names=("redis-server",)),
    }


def _expanded(
    db_url: str, campaign_id: int, t0: float, args: argparse.Namespace
) -> dict[str, object]:
    """Seconds from `campaign start` (and from the worker's start of the expansion) until
    the run's expansion finished, how many messages were sent meanwhile and when the
    first was."""
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        with session_scope(db_url) as session:
            run = session.scalars(select(Run).where(Run.campaign_id == campaign_id)).first()
            if run is not None and run.expanded_at is not None:
                sent, first = session.execute(
                    select(func.count(), func.min(Message.sent_at)).where(
                        Message.run_id == run.id,
                        Message.status == "sent",
                        Message.sent_at <= run.expanded_at,
                    )
                ).one()
                seconds = run.expanded_at.timestamp() - t0
                began = run.started_at
                assert began is not None
                return {
                    "recipients": args.recipients,
                    "workers": args.workers,
                    "concurrency": args.concurrency,
                    "limit_rps": args.limit_rps,
                    "expansion_seconds": round(seconds, 2),
                    "recipients_per_s_expanded": round(args.recipients / seconds),
                    "sent_while_expanding": sent,
                    "first_send_seconds": round(first.timestamp() - t0, 2) if first else None,
                    # From the worker's start of the expansion (the start's checks before it).
                    "expansion_seconds_in_worker": round(
                        (run.expanded_at - began).total_seconds(), 2
                    ),
                    "first_send_seconds_from_expansion_start": (
                        round((first - began).total_seconds(), 2) if first else None
                    ),
                }
        time.sleep(0.2)
    raise TimeoutError("the run was not expanded in time")


def _wait(db_url: str, campaign_id: int, timeout: float) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(db_url) as session:
            run = session.scalars(select(Run).where(Run.campaign_id == campaign_id)).first()
            if run is not None and run.status not in ("scheduled", "expanding", "sending"):
                return run.id, run.status
        time.sleep(0.5)
    raise TimeoutError("the run did not finish in time")


if __name__ == "__main__":
    main()

"""Where a worker's CPU goes per batch: the dispatch path profiled in one process.

    flock /tmp/bench.lock .venv/bin/python bench/profile_dispatch.py --recipients 30000
    flock /tmp/bench.lock .venv/bin/python bench/profile_dispatch.py --py-spy .venv/bin/py-spy

With ``--py-spy`` (``pip install py-spy``; not a project dependency) the process is sampled
instead of traced, so the figures carry no profiler overhead.

A fresh PostgreSQL database, the sandbox provider in a process of its own, one run
expanded up front; then this process calls ``Dispatcher.dispatch_once`` (the body of the
dispatch task, built by the worker context as a worker builds it) until the run is done,
under cProfile. Prints the worker's CPU per batch split by where it went, the SQL
statements per batch (count and time waiting for their answers, grouped by their first
words) and the profile's top functions; with either, the CPU the PostgreSQL backend spent
on each kind of statement per batch (read from its ``/proc/<pid>/schedstat``, so the
server must run on this host and be readable by this user). No broker: the task's own
cost (Celery, Redis) is not in it, and ``bench/dispatch.py`` measures the whole path.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event

from bench.common import (
    env_for,
    sandbox_process,
    scratch_database,
    seed_contacts,
    sms_campaign,
    started_run,
)
from campaigns.db import get_engine, session_scope
from config.settings import Settings
from workers import context, runner

# Where the time of a batch goes, by the function (its file and name) it is spent under.
PARTS = {
    "claim": ("claims.py", "claim_batch"),
    "fence": ("claims.py", "fence"),
    "settle": ("claims.py", "record"),
    "http request (client)": ("http.py", "request"),
    "build messages": ("outgoing.py", "build_messages"),
    "prepare messages": ("endpoints.py", "prepare_messages"),
    "parse answer": ("models.py", "from_json"),
    "record_minute": ("activity.py", "record_minute"),
    "db clock": ("clock.py", "db_now"),
    "suppressions": ("claims.py", "drop_suppressed"),
    "frequency cap": ("frequency.py", "hold_back"),
    "budget check": ("budget.py", "over_budget"),
    "spend": ("budget.py", "record_spend"),
    "reconcile.settle_ripe": ("reconcile.py", "settle_ripe"),
    "canary.gate": ("canary.py", "gate"),
    "rate limiter": ("dispatch.py", "_wait_for_rate_limit"),
    "send window": ("dispatch.py", "_send_window_check"),
    "commit": ("session.py", "commit"),
}


def _drop_indexes(db_url: str, names: list[str]) -> None:
    """Drop these indexes of ``messages`` (a unique one through its constraint)."""
    from sqlalchemy import text

    with session_scope(db_url) as session:
        for name in names:
            constraint = session.scalar(
                text("SELECT 1 FROM pg_constraint WHERE conname = :n"), {"n": name}
            )
            statement = "ALTER TABLE messages DROP CONSTRAINT {}" if constraint else "DROP INDEX {}"
            quoted = '"' + name.replace('"', '""') + '"'
            session.execute(text(statement.format(quoted)))
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=30_000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--save", default="", help="write the raw profile to this file")
    parser.add_argument(
        "--wall", action="store_true", help="profile wall time (default: this process's CPU)"
    )
    parser.add_argument(
        "--py-spy",
        default="",
        metavar="PATH",
        help="sample with this py-spy binary instead of cProfile (no profiler overhead)",
    )
    parser.add_argument(
        "--drop-index",
        action="append",
        default=[],
        metavar="NAME",
        help="drop this index of messages after the expansion, to see what it costs the send"
        " path (a measurement only: the indexes are there for a reason)",
    )
    args = parser.parse_args()
    prefix = f"clarion-bench:{uuid.uuid4().hex[:8]}:"
    log_dir = Path(tempfile.mkdtemp(prefix="clarion-profile-"))
    with scratch_database() as db_url, sandbox_process(log_dir) as sandbox:
        env = env_for(db_url, sandbox, prefix)
        os.environ.update(env)
        settings = Settings()
        t0 = time.perf_counter()
        seed_contacts(db_url, "bench", args.recipients)
        print(f"seeded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        run_id = started_run(db_url, sms_campaign(db_url))
        ctx = context.start(settings)
        with ctx.session() as session:
            runner.expand(session, run_id, settings, ctx.lookups)
        print(f"expanded after {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        _drop_indexes(db_url, args.drop_index)
        server_cpu: dict[str, list[float]] = defaultdict(list)
        statements = _count_statements(get_engine(db_url), server_cpu)
        dispatcher = ctx.dispatcher
        dispatcher.dispatch_once(run_id)  # warm-up: caches, the first connection
        statements.clear()
        server_cpu.clear()
        batches = sent = 0
        profile = cProfile.Profile() if args.wall else cProfile.Profile(time.process_time)
        sampler = _start_py_spy(args.py_spy, log_dir) if args.py_spy else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if sampler is None:
            profile.enable()
        while True:
            outcome = dispatcher.dispatch_once(run_id)
            if outcome.sent:
                batches += 1
                sent += outcome.sent
            if outcome.action in ("done", "stopped"):
                break
            if outcome.action == "wait":
                time.sleep(outcome.delay)
        profile.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        context.stop()
    if sampler is not None:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(60)
        _report_samples(log_dir / "py-spy.txt", batches, sent, cpu, wall)
    else:
        _report(profile, statements, batches, sent, cpu, wall, args)
    _report_server_cpu(server_cpu, batches)


def _report_server_cpu(server_cpu: dict[str, list[float]], batches: int) -> None:
    """The PostgreSQL backend's CPU per batch by statement (its triggers included)."""
    total = sum(sum(v) for v in server_cpu.values())
    if not total:
        print("\n(no PostgreSQL backend CPU: /proc/<pid>/schedstat not readable)")
        return
    per_batch = max(1, batches)
    print(f"\nPostgreSQL backend CPU per batch: {total * 1000 / per_batch:.2f} ms, by statement:")
    for kind, seen in sorted(server_cpu.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"  {len(seen) / per_batch:5.1f}  {sum(seen) * 1000 / per_batch:7.2f} ms"
            f"  ({sum(seen) / total:5.1%})  {kind}"
        )


def _start_py_spy(binary: str, log_dir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(os.getpid()),
            "--rate",
            "500",
            "--format",
            "raw",
            "--output",
            str(log_dir / "py-spy.txt"),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached
    return proc


def _is(frame: str, file: str, name: str) -> bool:
    """Whether a py-spy frame ("Class.method (path/file.py:12)") is ``name`` in ``file``."""
    function, _, where = frame.partition(" (")
    return function.rpartition(".")[2] == name and f"/{file}:" in f"/{where}"


def _report_samples(path: Path, batches: int, sent: int, cpu: float, wall: float) -> None:
    """CPU per batch under each part, from py-spy's collapsed stacks (CPU samples only)."""
    per_batch = max(1, batches)
    samples: list[tuple[list[str], int]] = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples.append((stack.split(";"), int(count)))
    total = sum(c for _, c in samples)
    print(f"{sent} messages in {batches} batches; {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(f"worker CPU per 1000 messages: {cpu * 1000 / max(1, sent):.4f} s")
    print(f"CPU per batch: {cpu * 1000 / per_batch:.1f} ms; {total} samples\n")
    print("CPU per batch under (share of the samples):")
    for part, (file, name) in PARTS.items():
        n = sum(c for frames, c in samples if any(_is(f, file, name) for f in frames))
        print(
            f"  {part:24s} {cpu * 1000 / per_batch * n / max(1, total):7.2f} ms  "
            f"({n / max(1, total):.1%})"
        )
    leaves: dict[str, int] = defaultdict(int)
    for frames, c in samples:
        leaves[frames[-1]] += c
    print("\nhottest functions (own samples):")
    for leaf, c in sorted(leaves.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {c / max(1, total):6.1%}  {leaf}")


def _count_statements(
    engine: Any, server_cpu: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """Time from sending each statement to its answer, grouped by its first words; and
    in ``server_cpu`` the CPU the PostgreSQL backend spent on each (triggers included),
    read from its /proc/<pid>/schedstat (same host, readable by this user). What the
    backend spends between statements (BEGIN, COMMIT) goes under "between statements"."""
    times: dict[str, list[float]] = defaultdict(list)

    def backend_cpu(conn: Any) -> float | None:
        if server_cpu is None:
            return None
        pid = conn.info.get("pg_pid")
        if pid is None:
            pid = conn.info["pg_pid"] = conn.connection.dbapi_connection.info.backend_pid
        try:
            return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
        except OSError:
            return None

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        cpu = backend_cpu(conn)
        last = conn.info.get("cpu_after")
        if server_cpu is not None and cpu is not None and last is not None:
            server_cpu["between statements (BEGIN, COMMIT)"].append(cpu - last)
        conn.info["cpu_before"] = cpu
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        times[_kind(statement)].append(time.perf_counter() - conn.info.pop("t0"))
        cpu, started = backend_cpu(conn), conn.info.pop("cpu_before", None)
        if server_cpu is not None and cpu is not None and started is not None:
            server_cpu[_kind(statement)].append(cpu - started)
        conn.info["cpu_after"] = cpu

    @event.listens_for(engine, "commit")
    def commit(conn: Any) -> None:
        times["COMMIT"].append(0.0)

    return times


def _kind(statement: str) -> str:
    words = re.sub(r"\s+", " ", statement).strip()
    if words.startswith("UPDATE messages"):
        # Which one: the claim, the result (settle), a look-up's take, ...
        return "UPDATE messages SET " + words.partition(" SET ")[2][:40]
    match = re.match(r"(UPDATE \w+|INSERT INTO \w+|DELETE FROM \w+|SELECT .{0,60}?FROM \w+)", words)
    return match.group(1) if match else words[:50]


def _report(
    profile: cProfile.Profile,
    statements: dict[str, list[float]],
    batches: int,
    sent: int,
    cpu: float,
    wall: float,
    args: argparse.Namespace,
) -> None:
    if args.save:
        profile.dump_stats(args.save)
    stats = pstats.Stats(profile)
    per_batch = max(1, batches)
    print(f"{sent} messages in {batches} batches; {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(f"worker CPU per 1000 messages: {cpu * 1000 / max(1, sent):.4f} s")
    print(
        f"wall per batch: {wall * 1000 / per_batch:.1f} ms, CPU per batch: "
        f"{cpu * 1000 / per_batch:.1f} ms\n"
    )
    print(f"cumulative {'wall' if args.wall else 'CPU'} time (profiled) per batch under:")
    raw: Any = stats.stats  # type: ignore[attr-defined]
    for part, (file, name) in PARTS.items():
        total = sum(v[3] for (f, _, n), v in raw.items() if f.endswith(file) and n == name)
        calls = sum(v[1] for (f, _, n), v in raw.items() if f.endswith(file) and n == name)
        print(f"  {part:24s} {total * 1000 / per_batch:7.2f} ms  ({calls / per_batch:.1f} calls)")
    print("\nSQL statements per batch (count, ms waiting for the answer):")
    for kind, seen in sorted(statements.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {len(seen) / per_batch:5.1f}  {sum(seen) * 1000 / per_batch:7.2f} ms  {kind}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()

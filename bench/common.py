"""Shared set-up for the benchmarks: a throw-away PostgreSQL database, a sandbox process,
bulk-seeded contacts, worker processes with their peak memory sampled."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

# The process helpers are the system tests'; the benchmarks use them from there.
from tests.processes import CLARION as CLARION
from tests.processes import Sandbox as Sandbox
from tests.processes import free_port as free_port
from tests.processes import sandbox_process as sandbox_process
from tests.processes import stop_groups as stop_groups

PG_ADMIN_URL = os.environ.get(
    "BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"clarion_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    from campaigns.migrate import upgrade

    upgrade(url)
    try:
        yield url
    finally:
        from campaigns.db import get_engine

        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def env_for(db_url: str, sandbox: Sandbox, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(
        CLARION_DATABASE_URL=db_url,
        CLARION_BROKER_URL=REDIS_URL,
        CLARION_REDIS_URL=REDIS_URL,
        CLARION_REDIS_KEY_PREFIX=prefix,
        CLARION_PROVIDER="sandbox",
        CLARION_SANDBOX_URL=sandbox.base_url,
        CLARION_SANDBOX_USERNAME="sandbox",
        CLARION_SANDBOX_API_KEY=sandbox.api_key,
        CLARION_LOG_LEVEL=os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
    )
    env.update(extra)
    return env


def seed_contacts(db_url: str, list_name: str, count: int) -> None:
    """Bulk-write `count` distinct valid US numbers (COPY on PostgreSQL)."""
    import psycopg

    from campaigns.db import normalise_url

    dsn = normalise_url(db_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        list_id = conn.execute(
            "INSERT INTO contact_lists (name, source, created_at)"
            " VALUES (%s, 'local', now()) RETURNING id",
            (list_name,),
        ).fetchone()[0]  # type: ignore[index]
        with conn.cursor().copy(
            "COPY contacts (list_id, phone, fields, updated_at) FROM STDIN"
        ) as copy:
            for i in range(count):
                area = 201 + (i // 8_000_000)
                exchange = 200 + (i // 10_000) % 800
                phone = f"+1{area}{exchange:03d}{i % 10_000:04d}"
                copy.write_row(
                    (list_id, phone, f'{{"first_name": "N{i}"}}', "2026-01-01T00:00:00Z")
                )


SMS_BODY = "Hi {first_name}, 20% off this week. Reply STOP to opt out"


def sms_campaign(db_url: str, name: str = "bench", body: str = SMS_BODY) -> int:
    """A draft SMS campaign to the list "bench" (``seed_contacts``); returns its id."""
    from campaigns.db import session_scope
    from campaigns.runs import create_campaign

    definition = {
        "name": name,
        "channel": "sms",
        "audience": {"lists": ["bench"]},
        "message": {"body": body, "from": "Clarion"},
    }
    with session_scope(db_url) as session:
        return create_campaign(session, definition).id


def started_run(db_url: str, campaign_id: int) -> int:
    """Start the campaign in this process (no checks, no broker); returns its run's id."""
    from campaigns.db import session_scope
    from campaigns.runs import start_campaign

    with session_scope(db_url) as session:
        run = start_campaign(session, campaign_id)
        assert run is not None
        return run.id


def cpu_seconds(pids: list[int], names: tuple[str, ...] = ()) -> float:
    """CPU time used so far by these process trees and by every process with one of
    these names (PostgreSQL backends come and go; they are found by name)."""
    total = 0.0
    seen: set[int] = set()
    procs = []
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            procs += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    if names:
        procs += [p for p in psutil.process_iter(["name"]) if p.info["name"] in names]
    for proc in procs:
        if proc.pid in seen:
            continue
        seen.add(proc.pid)
        try:
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            pass
    return total


@dataclass
class MemorySampler:
    """Samples the resident memory of process trees; peak per tree (parent + children)."""

    pids: list[int]
    interval: float = 0.5
    peaks: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in self.pids:
                try:
                    proc = psutil.Process(pid)
                    for p in [proc, *proc.children(recursive=True)]:
                        rss = p.memory_info().rss
                        self.peaks[p.pid] = max(self.peaks.get(p.pid, 0), rss)
                except psutil.NoSuchProcess:
                    pass


@contextmanager
def scheduler_process(env: dict[str, str], log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (log_dir / "scheduler.log").open("wb")
    proc = subprocess.Popen(
        [*CLARION, "scheduler", "--loglevel", "WARNING"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop_groups([proc], grace=15)


@contextmanager
def workers(
    env: dict[str, str],
    count: int,
    log_dir: Path,
    concurrency: int = 1,
    metrics_port: int = 0,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` worker processes; with ``metrics_port`` each serves its pool processes'
    metrics on ports of its own from there (worker i from metrics_port + i * concurrency)."""
    procs = []
    try:
        for i in range(count):
            log = (log_dir / f"worker-{i}.log").open("wb")
            env_i = dict(env)
            if metrics_port:
                env_i["CLARION_METRICS_PORT"] = str(metrics_port + i * concurrency)
            procs.append(
                subprocess.Popen(
                    [
                        *CLARION,
                        "worker",
                        "-c",
                        str(concurrency),
                        "--hostname",
                        f"bench{i}@%h",
                        "--loglevel",
                        os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
                    ],
                    env=env_i,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        yield procs
    finally:
        stop_groups(procs, grace=20)


class DatabaseCpu:
    """CPU time of the PostgreSQL processes serving one database: its client backends and
    the autovacuum workers on it, found in ``pg_stat_activity`` as they come and go. The
    count over every ``postgres`` process (``cpu_seconds(names=("postgres",))``) also
    holds what other databases of a shared server cost; this one does not (nor the
    server-wide WAL writer and checkpointer). A backend is read from its start if it
    started after ``start()``; the last fraction of a sampling interval of one that
    ended before ``stop()`` is missed."""

    def __init__(self, db_url: str, interval: float = 0.25) -> None:
        from campaigns.db import normalise_url

        self._dsn = normalise_url(db_url).replace("postgresql+psycopg://", "postgresql://")
        self.interval = interval
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()

    def _sample(self, conn: object, since: float) -> None:
        rows = conn.execute(  # type: ignore[attr-defined]
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        for (pid,) in rows:
            try:
                proc = psutil.Process(pid)
                times = proc.cpu_times()
                used = times.user + times.system
                if pid not in self._first:
                    self._first[pid] = 0.0 if proc.create_time() >= since else used
                self._last[pid] = used
            except psutil.NoSuchProcess:
                pass

    def start(self) -> DatabaseCpu:
        import time

        import psycopg

        self._conn = psycopg.connect(self._dsn, autocommit=True)
        since = time.time()
        self._sample(self._conn, since)

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self._sample(self._conn, since)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        """CPU-seconds used since ``start()``."""
        self._stop.set()
        self._thread.join()
        self._sample(self._conn, 0.0)
        self._conn.close()
        return sum(self._last[pid] - self._first[pid] for pid in self._last)

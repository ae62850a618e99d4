"""Recovery benchmark: a service of the run's own dies mid-run and comes back; how long
until sending resumes, and until the run ends?

    .venv/bin/python bench/recovery.py --service redis --repeats 3
    .venv/bin/python bench/recovery.py --service postgresql --repeats 3

``redis``: a private redis-server (no persistence) is the broker and the shared limiter; it
is killed (SIGKILL, everything queued is lost) and started again. ``postgresql``: a private
cluster (initdb/pg_ctl under a temporary directory) holds the run; it is stopped with
``pg_ctl -m immediate`` (a crash: no shutdown checkpoint, connections cut) and started again.
Two workers and a scheduler send an SMS run to the sandbox (a separate process) under a
client-side limit, so the run lasts long enough to be hit mid-way.

Reported per repeat: seconds from the service's return (it answers again) to the first
message the sandbox accepts after it (sending resumed), and to the run's last accepted
message (run end: the run's ``finished_at``); the ledger check (every recipient exactly once).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text

from bench.common import (
    CLARION,
    env_for,
    free_port,
    sandbox_process,
    scheduler_process,
    scratch_database,
    seed_contacts,
    sms_campaign,
    workers,
)
from campaigns.db import get_engine, session_scope
from campaigns.migrate import upgrade
from campaigns.models import Message, Run

# Shorter than the defaults so that a crash's claims come back within the run: the lease
# must still cover the HTTP timeout (+3 s); the grace must cover the sandbox's answer time.
SETTINGS = {
    "CLARION_BATCH_SIZE": "200",
    "CLARION_DISPATCH_PARALLELISM": "2",
    "CLARION_RATE_LIMIT_REQUESTS_PER_SECOND": "10",
    "CLARION_HTTP_TIMEOUT_SECONDS": "5",
    "CLARION_LEASE_SECONDS": "10",
    "CLARION_RECONCILE_GRACE_SECONDS": "5",
    "CLARION_RECONCILE_AFTER_SECONDS": "2",
}
DOWN_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--service", choices=("redis", "postgresql"), required=True)
    parser.add_argument("--recipients", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.service, args.recipients) for _ in range(args.repeats)]
    summary = {
        "service": args.service,
        "recipients": args.recipients,
        "settings": SETTINGS,
        "down_seconds": DOWN_SECONDS,
        "runs": runs,
        "median_resume_seconds": statistics.median(r["resume_seconds"] for r in runs),
        "median_end_seconds": statistics.median(r["end_seconds"] for r in runs),
        "all_exact": all(r["ledger_exact"] for r in runs),
    }
    print(json.dumps(summary, indent=2))


# -- private services -------------------------------------------------------------------


TRUST_POSTGRES = ("-U", "postgres", "-A", "trust")
NO_DISK = ("--save", "", "--appendonly", "no")


class PrivateRedis:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log_dir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"), *NO_DISK],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _until(lambda: _cli_ok(["redis-cli", "-p", str(self.port), "ping"]), "redis")

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.crash()


class PrivatePostgres:
    def __init__(self, base: Path) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not candidates:
            raise SystemExit("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = Path(candidates[-1]).parent
        self.data = base / "pgdata"
        self.port = free_port()
        self.log = base / "postgresql.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/clarion"
        # PostgreSQL refuses to run as root: the cluster then belongs to the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(base, "postgres")
        subprocess.run(
            [*self.as_user, str(self.bin / "initdb"), "-D", str(self.data), *TRUST_POSTGRES],
            check=True,
            capture_output=True,
        )
        self.sockets = base

    @property
    def _pg_ctl(self) -> str:
        return str(self.bin / "pg_ctl")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = [*self.as_user, self._pg_ctl, "-D", str(self.data), "-l", str(self.log)]
        subprocess.run(
            [*command, "-o", options, "-w", "start"],
            check=True,
            capture_output=True,
        )

    def crash(self) -> None:
        subprocess.run(
            [*self.as_user, self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, self._pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )

    def create_database(self) -> None:
        admin = create_engine(
            self.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE clarion"))
        admin.dispose()
        upgrade(self.url)


def _cli_ok(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True).stdout.strip() == b"PONG"


def _until(predicate: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


# -- one run ---------------------------------------------------------------------------


@contextmanager
def _database(service: str, base: Path) -> Iterator[tuple[str, PrivatePostgres | None]]:
    if service != "postgresql":
        with scratch_database() as url:
            yield url, None
        return
    pg = PrivatePostgres(base)
    pg.start()
    try:
        pg.create_database()
        yield pg.url, pg
    finally:
        get_engine.cache_clear()
        pg.stop()


def one_run(service: str, recipients: int) -> dict[str, float | int | bool]:
    base = Path(tempfile.mkdtemp(prefix="clarion-recovery-"))
    redis = PrivateRedis(base)
    redis.start()
    try:
        with _database(service, base) as (db_url, pg), sandbox_process(base) as sandbox:
            prefix = f"clarion-recovery:{uuid.uuid4().hex[:8]}:"
            env = env_for(
                db_url,
                sandbox,
                prefix,
                CLARION_BROKER_URL=redis.url,
                CLARION_REDIS_URL=redis.url,
                **SETTINGS,
            )
            seed_contacts(db_url, "bench", recipients)
            campaign_id = sms_campaign(db_url, "recovery", body="Hi {first_name}")
            with workers(env, 2, base), scheduler_process(env, base):
                time.sleep(4)
                subprocess.run(
                    [*CLARION, "campaign", "start", str(campaign_id)],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                _until(
                    lambda: sandbox.stats()["messages_accepted"] > recipients // 3, "progress", 300
                )
                (pg or redis).crash()
                time.sleep(DOWN_SECONDS)
                (pg or redis).start()
                back = time.time()
                accepted = sandbox.stats()["messages_accepted"]
                _until(lambda: sandbox.stats()["messages_accepted"] > accepted, "resume", 300)
                resumed = time.time()
                run_id, key = _wait_end(db_url, campaign_id)
            with session_scope(db_url) as session:
                last = session.scalar(select(Run.finished_at).where(Run.id == run_id))
                sent = session.scalar(
                    select(func.count()).where(Message.run_id == run_id, Message.status == "sent")
                )
            ledger = sandbox.ledger(key)
            assert last is not None
            result: dict[str, float | int | bool] = {
                "resume_seconds": round(resumed - back, 2),
                "end_seconds": round(last.timestamp() - back, 2),
                "sent": sent or 0,
                "ledger_exact": ledger.get("accepted_total") == recipients
                and sent == recipients
                and not ledger.get("duplicates"),
            }
            return result
    finally:
        redis.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(base)


def _wait_end(db_url: str, campaign_id: int, timeout: float = 600) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with session_scope(db_url) as session:
                run = session.scalars(select(Run).where(Run.campaign_id == campaign_id)).first()
                if run is not None and run.status not in ("scheduled", "expanding", "sending"):
                    return run.id, run.key
        except Exception:
            pass
        time.sleep(0.2)
    raise TimeoutError("the run did not finish in time")


if __name__ == "__main__":
    main()

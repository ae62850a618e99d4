"""Workers survive a broker that restarts under a running campaign.

The tests start a Redis (no persistence, so every restart loses the queues) or a RabbitMQ
node of their own on free ports and never touch the machine's shared ones.

Redis is stopped while a worker is inside a request (the sandbox holds every request a
moment) and, having a free slot, also waits on the queue for its next task: the channel
holding the running task's unacknowledged message is then in the middle of a read when
the connection is collected. That is what made kombu's plain Redis transport kill the
worker (``workers/broker.py``); with one slot per worker, or no request on the wire, it
did not show."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import exists, select

from campaigns.db import session_scope
from campaigns.models import Message
from tests.processes import free_port
from tests.procs import processes, scaled_env, wait_for
from tests.seed import us_numbers
from tests.system.test_workers_resilience import (
    FAST,
    SCHEDULER,
    WORKER,
    _assert_exactly_once,
    _create,
    _redis_server,
    _sandbox,
    _sent,
    _start_sending,
    _status,
)
from workers.broker import Transport

pytestmark = [pytest.mark.services, pytest.mark.slow]

RESTARTS = 6
# Two slots and one dispatch chain: a worker runs one task and waits for another.
TWO_SLOTS = ["worker", "-c", "2", "--loglevel", "WARNING"]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(10)


def test_workers_survive_repeated_broker_restarts(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "redis.log"
    redis_proc = _redis_server(port, log)
    phones = us_numbers(6_000)
    campaign_id = _create(pg_url, phones)
    try:
        # Every request held a moment (well inside the HTTP timeout): a restart finds a
        # worker inside one, and the run outlasts every restart.
        with _sandbox(hold_rate=1.0, hold_seconds=0.5) as sandbox:
            url = f"redis://127.0.0.1:{port}/0"
            env = scaled_env(
                pg_url,
                "clarion:",
                sandbox,
                CLARION_BATCH_SIZE="50",
                CLARION_DISPATCH_PARALLELISM="1",
                CLARION_BROKER_URL=url,
                CLARION_REDIS_URL=url,
                **FAST,
            )
            commands = [TWO_SLOTS, [*TWO_SLOTS, "--hostname", "second@%h"], SCHEDULER]
            with processes(env, *commands, log_dir=tmp_path) as procs:
                run_id = _start_sending(env, pg_url, campaign_id)
                for restart in range(RESTARTS):
                    before = _sent(pg_url, run_id)
                    wait_for(
                        lambda b=before: _sent(pg_url, run_id) > b + 200,
                        120,
                        0.1,
                        f"progress before restart {restart + 1}",
                    )
                    wait_for(lambda: _on_the_wire(pg_url, run_id), 60, 0.05, "a request")
                    time.sleep(0.1)
                    _stop(redis_proc)  # everything queued in the broker is gone with it
                    time.sleep(1)
                    redis_proc = _redis_server(port, log)
                    time.sleep(2)  # the workers reconnect, restoring their unacked tasks
                    dead = [p.args for p in procs if p.poll() is not None]
                    assert not dead, f"after restart {restart + 1}, exited: {dead}"
                wait_for(
                    lambda: _status(pg_url, campaign_id) == "completed", 300, what="completion"
                )
                dead = [p.args for p in procs if p.poll() is not None]
                assert not dead, f"exited: {dead}"
            logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("proc-*.log"))
            assert "Unrecoverable error" not in logs
            _assert_exactly_once(pg_url, sandbox, campaign_id, phones)
    finally:
        redis_proc.kill()


def _on_the_wire(db_url: str, run_id: int) -> bool:
    with session_scope(db_url) as session:
        return bool(
            session.scalar(
                select(exists().where(Message.run_id == run_id, Message.status == "claimed"))
            )
        )


def _channels_with_an_unacked_message(url: str, transport: Any) -> tuple[Any, Any]:
    """A connection with a channel holding an unacknowledged message, opened before a
    channel whose close needs the broker (an auto-delete fanout queue, like Celery's
    remote-control queue): kombu closes channels newest first."""
    connection = Connection(url, transport=transport)
    channel = connection.channel()
    queue = Queue("work", Exchange("work"), "work", channel=channel)
    queue.declare()
    connection.Producer(channel=channel).publish({"run": 1}, exchange="work", routing_key="work")
    holder = connection.channel()
    assert holder.basic_get("work", no_ack=False) is not None
    fanout = connection.channel()
    Queue("control", Exchange("control", type="fanout"), auto_delete=True, channel=fanout).declare()
    fanout.client  # noqa: B018 - a consuming channel has its client open
    return connection, holder


@pytest.mark.parametrize("fixed", [True, False])
def test_a_connection_collected_while_the_broker_is_down_closes_cleanly(
    tmp_path: Path, fixed: bool
) -> None:
    port = free_port()
    redis_proc = _redis_server(port, tmp_path / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    transport = Transport if fixed else None
    try:
        connection, holder = _channels_with_an_unacked_message(url, transport)
        _stop(redis_proc)
        # What Celery's consumer does when it loses the broker.
        connection.collect(socket_timeout=1)
        if fixed:
            assert holder.closed
            holder.close()  # a second close (Celery's own steps) is harmless
        else:
            # kombu alone: the channel is left open, and closing it later fails with an
            # error that is not a connection error, which kills a Celery worker.
            assert not holder.closed
            with pytest.raises(AttributeError, match="hostname"):
                holder.close()
    finally:
        redis_proc.kill()


def test_a_late_close_restores_the_unacked_message_once_the_broker_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "redis.log"
    redis_proc = _redis_server(port, log)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        connection, holder = _channels_with_an_unacked_message(url, Transport)
        connection._transport.client = None  # detached, as Connection.collect() leaves it
        holder.close()  # restores through the connection it was opened on
        with Connection(url) as fresh:
            channel = fresh.channel()
            message = channel.basic_get("work", no_ack=True)
            assert message is not None and message.payload == {"run": 1}
    finally:
        redis_proc.kill()


def _rabbitmq_server(home: Path, port: int, dist_port: int) -> subprocess.Popen[bytes]:
    """A RabbitMQ node of the test's own (its own name, ports and data directory, so the
    machine's shared node is never touched); started again on the same directory it keeps
    its durable queues and persistent messages."""
    home.mkdir(exist_ok=True)
    (home / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{port}\n")
    (home / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "HOME": str(home),
        "RABBITMQ_NODENAME": f"clarion-test-{port}@localhost",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": "/dev/null",
    }
    proc = subprocess.Popen(
        [RABBITMQ_SERVER],
        env=env,
        stdout=(home / "server.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def accepts() -> bool:
        try:
            with Connection(f"amqp://guest:guest@127.0.0.1:{port}//", connect_timeout=1) as c:
                c.connect()
            return True
        except OSError:
            return False

    wait_for(accepts, 90, 0.5, "rabbitmq")
    return proc


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the node and everything it started (the Erlang VM, its helpers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def test_workers_survive_a_rabbitmq_restart(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    """The RabbitMQ broker killed (SIGKILL) and started again mid-run: the workers reconnect,
    the unacknowledged tasks come back, and every recipient is sent exactly once."""
    port, dist_port = free_port(), free_port()
    home = tmp_path / "rabbitmq"
    node = _rabbitmq_server(home, port, dist_port)
    phones = us_numbers(12_000)
    campaign_id = _create(pg_url, phones)
    try:
        with _sandbox(latency_ms=150) as sandbox:
            env = scaled_env(
                pg_url,
                redis_prefix,
                sandbox,
                CLARION_BATCH_SIZE="50",
                CLARION_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}//",
                **FAST,
            )
            commands = [WORKER, [*WORKER, "--hostname", "second@%h"], SCHEDULER]
            with processes(env, *commands, log_dir=tmp_path) as procs:
                run_id = _start_sending(env, pg_url, campaign_id)
                for restart in range(2):
                    before = _sent(pg_url, run_id)
                    wait_for(
                        lambda b=before: _sent(pg_url, run_id) > b + 200,
                        120,
                        0.1,
                        f"progress before restart {restart + 1}",
                    )
                    _kill_group(node)
                    time.sleep(1)
                    node = _rabbitmq_server(home, port, dist_port)
                    dead = [p.args for p in procs if p.poll() is not None]
                    assert not dead, f"after restart {restart + 1}, exited: {dead}"
                wait_for(
                    lambda: _status(pg_url, campaign_id) == "completed", 300, what="completion"
                )
                dead = [p.args for p in procs if p.poll() is not None]
                assert not dead, f"exited: {dead}"
            _assert_exactly_once(pg_url, sandbox, campaign_id, phones)
    finally:
        _kill_group(node)

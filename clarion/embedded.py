"""The embedded mode: everything in one process, no services.

SQLite file, Celery on the in-memory broker with an in-process worker, the scheduler
ticking in a thread, and (for the sandbox provider) the sandbox server on loopback. The
code path is the production one; only the URLs differ.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from campaigns.migrate import upgrade
from config.settings import Settings, get_settings, reset_settings

log = logging.getLogger(__name__)


@dataclass
class EmbeddedRuntime:
    settings: Settings
    sandbox_root_url: str | None


def _start_sandbox(stack: ExitStack) -> str:
    from sandbox.server import start_in_thread

    handle = start_in_thread()
    stack.callback(handle.stop)
    os.environ["CLARION_SANDBOX_URL"] = handle.base_url
    os.environ["CLARION_SANDBOX_USERNAME"] = handle.state.config.username
    os.environ["CLARION_SANDBOX_API_KEY"] = handle.state.config.api_key
    return handle.root_url


def _sandbox_listening(base_url: str) -> bool:
    """Whether something accepts connections where the settings say the sandbox is."""
    parts = urlsplit(base_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 0.5):
            return True
    except OSError:
        return False


def _start_configured_sandbox(stack: ExitStack, settings: Settings) -> str:
    """A sandbox where the settings say it is, with the settings' credentials, so the
    client and other `clarion` commands find it; any free port if that one is taken."""
    from sandbox.config import SandboxConfig
    from sandbox.server import start_in_thread

    config = SandboxConfig(
        username=settings.sandbox_username, api_key=settings.sandbox_api_key.get_secret_value()
    )
    parts = urlsplit(settings.sandbox_url)
    try:
        handle = start_in_thread(config, parts.hostname or "127.0.0.1", parts.port or 8765)
    except RuntimeError:
        handle = start_in_thread(config, "127.0.0.1", 0)
        os.environ["CLARION_SANDBOX_URL"] = handle.base_url
    stack.callback(handle.stop)
    return handle.root_url


def _ticker(
    stop: threading.Event, settings: Settings, campaign_id: int | None, polls: bool
) -> None:
    """The scheduler's beat, in a thread: the tick every CLARION_SCHEDULER_TICK_SECONDS and,
    for a long-running process (`clarion serve`), the receipt and inbound polls and the
    housekeeping that `clarion scheduler` sends in the scaled mode."""
    from workers import tasks

    periodic: list[tuple[Any, float, tuple[Any, ...]]] = [
        (tasks.tick, settings.scheduler_tick_seconds, (campaign_id,))
    ]
    if polls:
        periodic += [
            (tasks.poll_inbound, settings.inbound_poll_seconds, ()),
            (tasks.poll_receipts, settings.receipts_poll_seconds, ()),
            (tasks.housekeeping, 30.0, ()),
        ]
    due = [time.monotonic() + every for _, every, _ in periodic]
    while not stop.wait(max(0.05, min(due) - time.monotonic())):
        for i, (task, every, args) in enumerate(periodic):
            if time.monotonic() < due[i]:
                continue
            due[i] = time.monotonic() + every
            try:
                task(*args)  # the task body, run here; it enqueues what follows
            except Exception:  # a failure must not kill the loop; the next round retries
                log.exception("%s failed", task.name)


@contextmanager
def embedded_runtime(
    *,
    start_sandbox: bool = True,
    reuse_sandbox: bool = False,
    campaign_id: int | None = None,
    polls: bool = False,
) -> Iterator[EmbeddedRuntime]:
    """Run workers and the scheduler in this process until the block exits.

    ``reuse_sandbox``: use the sandbox already listening at CLARION_SANDBOX_URL, or start
    one there (`clarion serve`); otherwise a private one on a free port (the demo).
    ``campaign_id``: the scheduler handles only that campaign (a CLI command about it).
    ``polls``: also poll receipts and inbound replies (a long-running process).
    """
    with ExitStack() as stack:
        sandbox_root = None
        if start_sandbox and get_settings().provider == "sandbox":
            if not reuse_sandbox:
                sandbox_root = _start_sandbox(stack)
            elif not _sandbox_listening(get_settings().sandbox_url):
                sandbox_root = _start_configured_sandbox(stack, get_settings())
        os.environ["CLARION_BROKER_URL"] = "memory://"
        reset_settings()
        settings = get_settings()
        upgrade(settings.database_url)

        from workers import context
        from workers.app import app, configure
        from workers.inprocess import inprocess_worker

        configure(settings)
        # The in-process worker's context: built here, as worker_process_init builds it
        # in a prefork child.
        context.start(settings)
        stack.callback(context.stop)
        # One line per task would drown the progress bar; warnings still show.
        logging.getLogger("celery").setLevel(logging.WARNING)
        logging.getLogger("kombu").setLevel(logging.ERROR)  # "no hostname" for memory://
        stack.enter_context(inprocess_worker(app))
        stop = threading.Event()
        thread = threading.Thread(
            target=_ticker, args=(stop, settings, campaign_id, polls), daemon=True
        )
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(stop.set)
        yield EmbeddedRuntime(settings=settings, sandbox_root_url=sandbox_root)

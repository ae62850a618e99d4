"""Processes for the system tests and the benchmarks: a process group stopped in full, a
free port, the sandbox provider in a process of its own (`clarion sandbox`).

Standard library and httpx only, so the benchmarks use these helpers too; the tests import
nothing of the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CLARION = [sys.executable, "-m", "clarion"]


def stop_groups(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM each process group still running; SIGKILL what is left after ``grace`` s."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    root_url: str
    base_url: str
    api_key: str
    pid: int

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.root_url}/_sandbox/stats", timeout=30).json())

    def ledger(self, custom_string: str) -> dict[str, Any]:
        return dict(
            httpx.get(
                f"{self.root_url}/_sandbox/ledger",
                params={"custom_string": custom_string},
                timeout=120,
            ).json()
        )

    def configure(self, **values: Any) -> None:
        httpx.post(f"{self.root_url}/_sandbox/config", json=values, timeout=30).raise_for_status()


@contextmanager
def sandbox_process(log_dir: Path) -> Iterator[Sandbox]:
    port = free_port()
    key = f"sandbox-{uuid.uuid4().hex[:8]}"
    log = (log_dir / "sandbox.log").open("wb")
    proc = subprocess.Popen(
        [*CLARION, "sandbox", "--port", str(port), "--api-key", key],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sandbox = Sandbox(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v3", key, proc.pid)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sandbox.stats()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield sandbox
    finally:
        stop_groups([proc], grace=10)  # it may be busy answering a large ledger

"""`clarion sandbox` and the client agree on credentials out of the box."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.procs import CLARION, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sandbox_and_client_defaults_agree(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env["CLARION_DATABASE_URL"] = f"sqlite:///{tmp_path}/c.db"
    sandbox = subprocess.Popen(
        [*CLARION, "sandbox", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 30, what="the sandbox")
        env["CLARION_SANDBOX_URL"] = f"http://127.0.0.1:{port}/v3"
        r = subprocess.run(
            [*CLARION, "account"], env=env, capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "balance" in r.stdout
    finally:
        sandbox.terminate()
        sandbox.wait(10)

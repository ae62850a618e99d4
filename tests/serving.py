"""`clarion serve` as a subprocess over a seeded database, with the sandbox provider in a
process of its own (so the test reads its ledger), for the browser and live-metrics tests."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from campaigns.db import session_scope
from campaigns.migrate import upgrade
from campaigns.runs import create_campaign
from tests.processes import Sandbox, free_port, sandbox_process, stop_groups
from tests.procs import CLARION
from tests.seed import definition, seed_list, us_numbers

TOKEN = "dashboard-token-0123456789"


@dataclass
class Served:
    url: str
    sandbox: Sandbox
    campaign_id: int
    phones: list[str]
    log: Path

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)


@contextmanager
def served_campaign(
    db_url: str,
    tmp_path: Path,
    *,
    recipients: int,
    messages_per_second: float,
    **env_extra: str,
) -> Iterator[Served]:
    """A draft SMS campaign to ``recipients`` numbers, and `clarion serve` sending under a
    rate limit of ``messages_per_second``."""
    upgrade(db_url)
    phones = us_numbers(recipients)
    seed_list(db_url, "customers", phones)
    with session_scope(db_url) as session:
        campaign_id = create_campaign(session, definition(["customers"], name="spring-sale")).id
    with sandbox_process(tmp_path) as sandbox:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
        env.update(
            CLARION_DATABASE_URL=db_url,
            CLARION_PROVIDER="sandbox",
            CLARION_SANDBOX_URL=sandbox.base_url,
            CLARION_SANDBOX_API_KEY=sandbox.api_key,
            CLARION_API_TOKENS=TOKEN,
            CLARION_RATE_LIMIT_MESSAGES_PER_SECOND=str(messages_per_second),
            CLARION_LOG_LEVEL="WARNING",
        )
        env.update(env_extra)
        log = tmp_path / "serve.log"
        proc = subprocess.Popen(
            [*CLARION, "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        served = Served(f"http://127.0.0.1:{port}", sandbox, campaign_id, phones, log)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{served.url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"clarion serve did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield served
        finally:
            stop_groups([proc], grace=20)

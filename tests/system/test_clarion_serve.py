"""`clarion serve` as a subprocess: a send_at campaign created through the API goes out
on time, and a run paused and resumed through the API reaches every recipient once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns.db import session_scope
from campaigns.models import Message, Run
from tests.serving import served_campaign


def _wait(predicate: object, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_send_at_campaign_goes_out_on_time(sqlite_url: str, tmp_path: Path) -> None:
    with served_campaign(sqlite_url, tmp_path, recipients=20, messages_per_second=0) as served:
        at = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
        definition = {
            "name": "on-time",
            "channel": "sms",
            "audience": {"lists": ["customers"]},
            "message": {"body": "Hi {first_name}", "from": "Clarion"},
            "schedule": {"send_at": at.isoformat()},
        }
        made = served.api("POST", "/api/v1/campaigns", json=definition)
        assert made.status_code == 201, made.text
        campaign_id = made.json()["id"]
        started = served.api("POST", f"/api/v1/campaigns/{campaign_id}/start")
        assert started.status_code == 200, started.text
        assert started.json()["action"] == "scheduled"

        def all_sent() -> int:
            stats = served.api("GET", f"/api/v1/campaigns/{campaign_id}/stats").json()
            return bool(stats.get("counts")) and stats["counts"]["sent"] == 20  # type: ignore[return-value]

        _wait(all_sent, 60, "the run to be sent")
        with session_scope(sqlite_url) as session:
            run = session.scalars(select(Run).where(Run.campaign_id == campaign_id)).one()
            last = session.scalar(select(func.max(Message.sent_at)).where(Message.run_id == run.id))
        assert last is not None
        late = (last - at).total_seconds()
        assert 0 <= late <= 2.0, f"sent {late:.2f} s after its time"
        ledger = served.sandbox.ledger(run.key)
        assert ledger["accepted_total"] == 20 and ledger["duplicates"] == []


@pytest.mark.slow
def test_pause_and_resume_through_the_api_reach_everyone_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    with served_campaign(
        sqlite_url, tmp_path, recipients=300, messages_per_second=60, CLARION_BATCH_SIZE="20"
    ) as served:
        cid = served.campaign_id
        started = served.api("POST", f"/api/v1/campaigns/{cid}/start")
        assert started.status_code == 200, started.text

        def sent() -> int:
            stats = served.api("GET", f"/api/v1/campaigns/{cid}/stats").json()
            return int((stats.get("counts") or {}).get("sent", 0))

        _wait(lambda: sent() >= 60, 60, "the first messages")
        paused = served.api("POST", f"/api/v1/campaigns/{cid}/pause")
        assert paused.status_code == 200, paused.text
        assert "paused" in paused.json()["message"]
        at_pause = sent()
        assert at_pause < 300
        time.sleep(2)
        assert sent() == at_pause, "nothing is sent while paused"
        resumed = served.api("POST", f"/api/v1/campaigns/{cid}/resume")
        assert resumed.status_code == 200, resumed.text
        _wait(lambda: sent() == 300, 60, "the rest after resume")
        stats = served.api("GET", f"/api/v1/campaigns/{cid}/stats").json()
        _wait(
            lambda: (
                served.api("GET", f"/api/v1/campaigns/{cid}/stats").json()["status"] == "completed"
            ),
            30,
            "the run to complete",
        )
        ledger = served.sandbox.ledger(stats["key"])
        assert ledger["accepted_total"] == 300
        assert ledger["duplicates"] == []
        assert sorted(ledger["by_recipient"]) == sorted(served.phones)
        again = served.api("POST", f"/api/v1/campaigns/{cid}/pause")
        assert again.status_code == 409 and "finished" in again.json()["error"]


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_a_restart_picks_up(sqlite_url: str, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess

    import httpx

    from campaigns.db import session_scope as scope
    from campaigns.migrate import upgrade
    from campaigns.runs import create_campaign
    from tests.processes import free_port, sandbox_process
    from tests.procs import CLARION
    from tests.seed import definition, seed_list, us_numbers

    upgrade(sqlite_url)
    phones = us_numbers(200)
    seed_list(sqlite_url, "customers", phones)
    with scope(sqlite_url) as session:
        cid = create_campaign(session, definition(["customers"], name="restart")).id
    token = "restart-token-0123456789"
    with sandbox_process(tmp_path) as sandbox:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
        env.update(
            CLARION_DATABASE_URL=sqlite_url,
            CLARION_SANDBOX_URL=sandbox.base_url,
            CLARION_SANDBOX_API_KEY=sandbox.api_key,
            CLARION_API_TOKENS=token,
            CLARION_RATE_LIMIT_MESSAGES_PER_SECOND="40",
            CLARION_BATCH_SIZE="10",
            CLARION_LOG_LEVEL="WARNING",
        )
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}

        def serve() -> subprocess.Popen[str]:
            proc = subprocess.Popen(
                [*CLARION, "serve", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/health", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            _wait(up, 60, "clarion serve")
            return proc

        def sent() -> int:
            stats = httpx.get(f"{url}/api/v1/campaigns/{cid}/stats", headers=headers).json()
            return int((stats.get("counts") or {}).get("sent", 0))

        first = serve()
        try:
            started = httpx.post(f"{url}/api/v1/campaigns/{cid}/start", headers=headers)
            assert started.status_code == 200, started.text
            _wait(lambda: sent() >= 40, 60, "the first messages")
        finally:
            first.send_signal(signal.SIGINT)
            out, _ = first.communicate(timeout=60)
        assert first.returncode == 0, out
        assert "stopped" in out and "Traceback" not in out
        with scope(sqlite_url) as session:
            claimed = session.scalar(select(func.count()).where(Message.status == "claimed"))
            done = session.scalar(select(func.count()).where(Message.status == "sent"))
        assert claimed == 0, "the batch on the wire settled before the process ended"
        assert done is not None and 40 <= done < 200, done
        second = serve()
        try:
            _wait(lambda: sent() == 200, 60, "the rest after the restart")
        finally:
            second.send_signal(signal.SIGINT)
            second.communicate(timeout=60)
        with scope(sqlite_url) as session:
            key = session.scalars(select(Run.key).where(Run.campaign_id == cid)).one()
        ledger = sandbox.ledger(key)
        assert ledger["accepted_total"] == 200 and ledger["duplicates"] == []

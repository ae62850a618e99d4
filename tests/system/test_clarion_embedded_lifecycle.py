"""The embedded CLI says what it does: a scheduled start says when it fires, resume sends
like start, no command sends other campaigns' overdue runs behind the user's back, and the
lifecycle commands refuse what cannot be done."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from campaigns.db import session_scope
from campaigns.models import Campaign, Message, Run
from campaigns.runs import create_run, pause_campaign, start_campaign
from tests.system.test_clarion_embedded import _clarion

SPEC = (
    "name: {name}\nchannel: sms\naudience: {{lists: [l]}}\nmessage: {{body: 'Hi', from: Clarion}}\n"
)


def _setup(tmp_path: Path, *specs: tuple[str, str]) -> str:
    contacts = tmp_path / "c.csv"
    contacts.write_text("phone_number\n+12015550123\n+12015550124\n+12015550125\n")
    r = _clarion(tmp_path, "lists", "import", str(contacts), "--list", "l")
    assert r.returncode == 0, r.stderr
    for name, extra in specs:
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(SPEC.format(name=name) + extra)
        r = _clarion(tmp_path, "campaign", "create", str(spec))
        assert r.returncode == 0, r.stdout + r.stderr
    return f"sqlite:///{tmp_path}/embedded.db"


def _sent(url: str, campaign_id: int) -> int:
    with session_scope(url) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Message)
                .join(Run, Run.id == Message.run_id)
                .where(Run.campaign_id == campaign_id, Message.status == "sent")
            )
            or 0
        )


def test_scheduled_start_says_when_it_fires_and_that_serve_must_run(tmp_path: Path) -> None:
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    _setup(tmp_path, ("later", f"schedule: {{send_at: '{at.isoformat()}'}}\n"))
    r = _clarion(tmp_path, "campaign", "start", "1")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "clarion serve" in out
    assert at.strftime("%Y-%m-%d %H:%M") in out
    data = json.loads(_clarion(tmp_path, "campaign", "status", "1", "--json").stdout)
    assert data["campaign"]["status"] == "active"
    assert data["campaign"]["next_occurrence"].startswith(at.strftime("%Y-%m-%dT%H:%M"))


def test_resume_sends_like_start(tmp_path: Path) -> None:
    url = _setup(tmp_path, ("paused", ""))
    with session_scope(url) as session:
        run = start_campaign(session, 1)
        assert run is not None
        pause_campaign(session, 1)
    r = _clarion(tmp_path, "campaign", "resume", "1", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == "completed"
    assert _sent(url, 1) == 3
    with session_scope(url) as session:
        assert session.get(Campaign, 1).status == "finished"  # type: ignore[union-attr]


def test_start_does_not_send_other_campaigns_overdue_runs(tmp_path: Path) -> None:
    url = _setup(tmp_path, ("overdue", ""), ("now", ""))
    with session_scope(url) as session:
        # Campaign 1 was started and its run is due, but nothing has run it (no `serve`).
        campaign = session.get(Campaign, 1)
        assert campaign is not None
        start_campaign(session, 1)
        create_run(session, campaign, datetime.now(UTC) - timedelta(minutes=10))
    r = _clarion(tmp_path, "campaign", "start", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _sent(url, 2) == 3
    assert _sent(url, 1) == 0
    out = " ".join(r.stderr.split())
    assert "1 other campaign" in out and "clarion serve" in out


def test_lifecycle_refusals(tmp_path: Path) -> None:
    url = _setup(tmp_path, ("once", ""))
    spec = tmp_path / "once.yaml"
    again = _clarion(tmp_path, "campaign", "create", str(spec))
    assert again.returncode == 1 and "already" in again.stderr and "--replace" in again.stderr
    r = _clarion(tmp_path, "campaign", "start", "1")
    assert r.returncode == 0, r.stderr
    with session_scope(url) as session:
        assert session.get(Campaign, 1).status == "finished"  # type: ignore[union-attr]
    for action in ("pause", "resume", "cancel"):
        r = _clarion(tmp_path, "campaign", action, "1")
        assert r.returncode == 1, (action, r.stdout)
        assert "finished" in r.stderr and "Traceback" not in r.stderr


def test_a_second_cancel_says_it_was_cancelled_already(tmp_path: Path) -> None:
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    _setup(tmp_path, ("later", f"schedule: {{send_at: '{at.isoformat()}'}}\n"))
    assert _clarion(tmp_path, "campaign", "start", "1").returncode == 0
    first = _clarion(tmp_path, "campaign", "cancel", "1")
    assert first.returncode == 0 and "cancelled" in first.stdout
    assert "{" not in first.stdout and "[" not in first.stdout  # a sentence, not a repr
    second = _clarion(tmp_path, "campaign", "cancel", "1")
    assert second.returncode == 1 and "already cancelled" in second.stderr

"""A STOP pushed to the webhook while a run is sending stops the rest of that run for
the number: the real dispatcher against the sandbox over loopback, the webhook through
the served API."""

from __future__ import annotations

import time

from sqlalchemy import select

from campaigns.db import session_scope
from campaigns.expand import expand_run
from campaigns.models import Message, Run, Suppression
from config.settings import Settings
from sandbox.server import start_in_thread
from tests.apiclient import WEBHOOK_SECRET, api_client
from tests.seed import seed_campaign, seed_list, us_numbers
from workers.context import build_context


def test_stop_through_the_webhook_stops_the_rest_of_a_running_run(db_url: str) -> None:
    phones = us_numbers(30)
    seed_list(db_url, "customers", phones)
    _, run_id = seed_campaign(db_url, ["customers"])
    with session_scope(db_url) as session:
        expand_run(session, run_id)
    sandbox = start_in_thread()
    try:
        settings = Settings(database_url=db_url, sandbox_url=sandbox.base_url, batch_size=10)
        dispatcher = build_context(settings).dispatcher
        assert dispatcher.dispatch_once(run_id).action == "again"  # the first 10 are out
        late = phones[25]  # its batch is still to come
        with api_client(db_url, auth=False) as client:
            answer = client.post(
                f"/webhooks/{WEBHOOK_SECRET}/inbound",
                data={"from": late, "body": "STOP", "message_id": "R1", "timestamp": "1"},
            )
            assert answer.status_code == 200
            deadline = time.monotonic() + 10
            while True:
                with session_scope(db_url) as session:
                    if session.scalar(select(Suppression.id).where(Suppression.phone == late)):
                        break
                assert time.monotonic() < deadline, "the STOP was not applied"
                time.sleep(0.05)
        for _ in range(20):
            if dispatcher.dispatch_once(run_id).action in ("done", "stopped"):
                break
        with session_scope(db_url) as session:
            statuses = dict(session.execute(select(Message.phone, Message.status)).all())
            run = session.get(Run, run_id)
            assert run is not None and run.status == "completed"
        assert statuses[late] == "suppressed"
        assert sorted(p for p, s in statuses.items() if s == "sent") == sorted(
            p for p in phones if p != late
        )
        ledger = sandbox.state.ledger()
        assert late not in ledger["by_recipient"]
        assert ledger["duplicates"] == [] and ledger["accepted_total"] == 29
    finally:
        sandbox.stop()

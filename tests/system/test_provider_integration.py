"""Campaigns using the account's own ClickSend lists and templates, against the sandbox."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from campaigns.db import session_scope
from campaigns.models import Contact, ContactList, Message
from campaigns.runs import create_campaign, start_campaign
from campaigns.sync import sync_list
from clarion.cli import app
from clicksend.client import ClickSendClient
from config.settings import get_settings, reset_settings
from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread
from workers import context, runner


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[SandboxHandle]:
    handle = start_in_thread(
        SandboxConfig(api_key="integration-key", skillboss_api_key="integration-hub-key")
    )
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SKILLBOSS_BASE_URL", handle.root_url)
    monkeypatch.setenv("SKILLBOSS_API_KEY", "integration-hub-key")
    monkeypatch.setenv("CLARION_SANDBOX_URL", handle.base_url)
    monkeypatch.setenv("CLARION_SANDBOX_API_KEY", "integration-key")
    reset_settings()
    context.start()  # this process plays a worker: its context, as worker_process_init builds
    yield handle
    context.stop()
    handle.stop()


def _client(handle: SandboxHandle) -> ClickSendClient:
    return ClickSendClient(handle.base_url, "sandbox", "integration-key", timeout=10)


def test_list_sync_normalises_dedupes_and_is_incremental(
    sandbox: SandboxHandle, sqlite_url: str
) -> None:
    with _client(sandbox) as client:
        remote = client.create_list("vip")
        assert remote.list_id is not None
        for phone, name in [
            ("+12015550123", "Ann"),
            ("(201) 555-0124", "Bob"),
            ("+12015550123", "Dup"),
        ]:
            client.create_contact(remote.list_id, {"phone_number": phone, "first_name": name})
        time.sleep(1.1)  # ClickSend's update times are whole seconds
        with session_scope(sqlite_url) as session:
            first = sync_list(session, client, remote.list_id, default_region="US")
        assert (first.imported, first.duplicates) == (2, 1)
        bob = next(c.contact_id for c in client.contacts(remote.list_id) if c.first_name == "Bob")
        assert bob is not None
        time.sleep(1.1)
        client.update_contact(remote.list_id, bob, {"first_name": "Robert"})
        with session_scope(sqlite_url) as session:
            second = sync_list(
                session, client, remote.list_id, default_region="US", overlap_seconds=0
            )
    assert (second.rows, second.updated) == (1, 1)  # only what changed since the last sync
    with session_scope(sqlite_url) as session:
        lst = session.scalars(
            select(ContactList).where(ContactList.clicksend_list_id == remote.list_id)
        ).one()
        assert lst.name == "vip" and lst.source == "clicksend" and lst.synced_at is not None
        names = {c.phone: c.fields.get("first_name") for c in session.scalars(select(Contact))}
    assert names == {"+12015550123": "Ann", "+12015550124": "Robert"}


def _local_phones(url: str, clicksend_list_id: int) -> set[str]:
    with session_scope(url) as session:
        return set(
            session.scalars(
                select(Contact.phone)
                .join(ContactList, ContactList.id == Contact.list_id)
                .where(ContactList.clicksend_list_id == clicksend_list_id)
            )
        )


def _remote_list(client: ClickSendClient, contacts: list[tuple[str, str]]) -> dict[str, int]:
    """A ClickSend list of these (phone, first name) contacts; returns each name's id."""
    remote = client.create_list(f"list-{uuid.uuid4().hex[:6]}")
    assert remote.list_id is not None
    ids = {}
    for phone, name in contacts:
        made = client.create_contact(remote.list_id, {"phone_number": phone, "first_name": name})
        assert made.contact_id is not None
        ids[name] = made.contact_id
    ids["list"] = remote.list_id
    return ids


def test_a_full_sync_drops_the_contacts_deleted_at_clicksend(
    sandbox: SandboxHandle, db_url: str
) -> None:
    with _client(sandbox) as client:
        ids = _remote_list(
            client, [("+12015550123", "Ann"), ("+12015550124", "Bob"), ("+12015550125", "Cy")]
        )
        with session_scope(db_url) as session:
            sync_list(session, client, ids["list"], default_region="US")
        client.delete_contact(ids["list"], ids["Bob"])
        with session_scope(db_url) as session:
            sync_list(session, client, ids["list"], default_region="US", full=True)
    assert _local_phones(db_url, ids["list"]) == {"+12015550123", "+12015550125"}


@pytest.mark.parametrize(
    "others",
    [
        [],
        # A duplicate and a bad number at ClickSend: the local copy holds fewer contacts
        # than the list counts, which must not hide the deletion.
        [("+12015550123", "Dup"), ("12345", "Bad")],
    ],
)
def test_each_run_leaves_out_the_contacts_deleted_at_clicksend(
    sandbox: SandboxHandle, db_url: str, others: list[tuple[str, str]]
) -> None:
    """Before each run its ClickSend lists are synced incrementally, which cannot see a
    deletion; a list that counts fewer contacts than the local copy accounts for is read
    whole, and the contacts it no longer holds leave the local copy."""
    with _client(sandbox) as client:
        ids = _remote_list(client, [("+12015550123", "Ann"), ("+12015550124", "Bob"), *others])
        with session_scope(db_url) as session:
            runner.sync_audience(session, client, [ids["list"]], get_settings())
        assert _local_phones(db_url, ids["list"]) == {"+12015550123", "+12015550124"}
        client.delete_contact(ids["list"], ids["Bob"])
        with session_scope(db_url) as session:
            runner.sync_audience(session, client, [ids["list"]], get_settings())
    assert _local_phones(db_url, ids["list"]) == {"+12015550123"}


def test_campaign_with_a_clicksend_template_and_list(
    sandbox: SandboxHandle, sqlite_url: str
) -> None:
    with _client(sandbox) as client:
        template = client.create_sms_template("welcome", "Welcome {first_name}!")
        remote = client.create_list("members")
        assert remote.list_id is not None and template.template_id is not None
        client.create_contact(remote.list_id, {"phone_number": "+12015550123", "first_name": "Ann"})
    with session_scope(sqlite_url) as session:
        session.add(ContactList(name="local-empty"))
    definition = {
        "name": "tpl",
        "channel": "sms",
        "audience": {"lists": ["local-empty"], "clicksend_lists": [remote.list_id]},
        "message": {"template_id": template.template_id, "from": "Clarion"},
    }
    with session_scope(sqlite_url) as session:
        campaign = create_campaign(session, definition)
        run = start_campaign(session, campaign.id)
        assert run is not None
        report = runner.expand(session, run.id, get_settings(), context.current().lookups)
    assert report.messages == 1
    with session_scope(sqlite_url) as session:
        message = session.scalars(select(Message)).one()
    assert (message.phone, message.body) == ("+12015550123", "Welcome Ann!")


def test_account_and_templates_commands(sandbox: SandboxHandle) -> None:
    with _client(sandbox) as client:
        client.create_sms_template("t1", "Hello {first_name}")
    result = CliRunner().invoke(app, ["account", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["currency"] == "USD" and float(data["balance"]) > 0
    assert "integration-key" not in result.output
    result = CliRunner().invoke(app, ["templates", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert [t["body"] for t in json.loads(result.stdout)] == ["Hello {first_name}"]


def test_stop_replies_become_suppressions(sandbox: SandboxHandle, sqlite_url: str) -> None:
    from campaigns.models import Suppression
    from workers.inbound import poll_inbound

    for sender, body in [
        ("+12015550123", "STOP"),
        ("+12015550124", "thanks!"),
        ("+12015550125", "stop all"),
    ]:
        response = httpx.post(
            f"{sandbox.root_url}/_sandbox/inbound", json={"from": sender, "body": body}, timeout=10
        )
        response.raise_for_status()
    with _client(sandbox) as client, session_scope(sqlite_url) as session:
        report = poll_inbound(session, client, "US")
        again = poll_inbound(session, client, "US")
    assert (report.read, report.opted_out) == (3, 2)
    assert again.read == 0  # marked read
    with session_scope(sqlite_url) as session:
        assert set(session.scalars(select(Suppression.phone))) == {"+12015550123", "+12015550125"}


def test_receipts_record_delivery(sandbox: SandboxHandle, sqlite_url: str) -> None:
    from tests.seed import seed_campaign, seed_list
    from workers.receipts import poll_receipts

    phones = ["+12015550123", "+12015550124"]
    seed_list(sqlite_url, "a", phones)
    _, run_id = seed_campaign(sqlite_url, ["a"])
    with session_scope(sqlite_url) as session:
        runner.expand(session, run_id, get_settings(), context.current().lookups)
    context.current().dispatcher.dispatch_once(run_id)
    httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 5}, timeout=10)
    with _client(sandbox) as client, session_scope(sqlite_url) as session:
        report = poll_receipts(session, client)
        again = poll_receipts(session, client)
    assert (report.read, report.matched) == (2, 2)
    # Their second may still be receiving receipts: read again (recorded the same).
    assert again.read == 2
    with session_scope(sqlite_url) as session:
        assert set(session.scalars(select(Message.delivery_status))) == {"delivered"}


def test_schedule_list_shows_the_next_mondays_in_london(
    sandbox: SandboxHandle, sqlite_url: str
) -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "config" / "examples" / "weekly-newsletter.yaml"
    with session_scope(sqlite_url) as session:
        session.add(ContactList(name="customers"))
    runner_ = CliRunner()
    created = runner_.invoke(app, ["campaign", "create", str(example), "--json"])
    assert created.exit_code == 0, created.output
    result = runner_.invoke(app, ["schedule", "list", "--json", "--count", "3"])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert item["timezone"] == "Europe/London" and item["kind"] == "cron"
    assert len(item["next"]) == 3
    for at in item["next"]:
        assert at.endswith(("+00:00", "+01:00")) and "T09:00:00" in at


def test_skillboss_notify_campaign_sends_rendered_variables(
    sandbox: SandboxHandle, sqlite_url: str
) -> None:
    from tests.seed import seed_list

    phones = ["+12015550123", "+15555550100", "+12015550124"]  # the middle one is refused
    seed_list(sqlite_url, "a", phones)
    definition = {
        "name": "otp-reminder",
        "channel": "sms",
        "provider": "skillboss",
        "audience": {"lists": ["a"]},
        "message": {"template_id": "tmpl_reminder", "variables": {"name": "{first_name}"}},
    }
    with session_scope(sqlite_url) as session:
        campaign = create_campaign(session, definition)
        run = start_campaign(session, campaign.id)
        assert run is not None
        run_id, key = run.id, run.key
        runner.expand(session, run_id, get_settings(), context.current().lookups)
    dispatcher = context.current().dispatcher
    while dispatcher.dispatch_once(run_id).action not in ("done", "stopped"):
        pass
    with session_scope(sqlite_url) as session:
        rows = {m.phone: m for m in session.scalars(select(Message))}
    assert json.loads(rows[phones[0]].body) == {"name": "N0"}
    assert rows[phones[0]].status == "sent" and rows[phones[0]].provider_message_id
    assert rows[phones[1]].status == "failed" and "refused" in (rows[phones[1]].error or "")
    assert rows[phones[2]].status == "sent"
    ledger = httpx.get(
        f"{sandbox.root_url}/_sandbox/ledger", params={"custom_string": key}, timeout=10
    ).json()
    assert ledger["by_recipient"] == {phones[0]: 1, phones[2]: 1}


def test_receipts_are_read_in_bounded_slices(
    sandbox: SandboxHandle, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.seed import seed_campaign, seed_list
    from workers.receipts import poll_receipts

    monkeypatch.setenv("CLARION_BATCH_SIZE", "10")
    reset_settings()
    context.start()
    phones = [f"+1201555{i:04d}" for i in range(100, 130)]
    seed_list(sqlite_url, "a", phones)
    _, run_id = seed_campaign(sqlite_url, ["a"])
    with session_scope(sqlite_url) as session:
        runner.expand(session, run_id, get_settings(), context.current().lookups)
    for _ in range(3):  # three batches of 10, their receipts in three different seconds
        context.current().dispatcher.dispatch_once(run_id)
        httpx.post(f"{sandbox.root_url}/_sandbox/advance", json={"seconds": 2}, timeout=10)
    with _client(sandbox) as client, session_scope(sqlite_url) as session:
        reads = [poll_receipts(session, client, max_receipts=12).read for _ in range(3)]
    # 12 reached inside the second batch's second: that second is finished, then it stops;
    # the last second, read to the end of the list, may still be receiving: read again.
    assert reads == [20, 10, 10]
    with session_scope(sqlite_url) as session:
        statuses = list(session.scalars(select(Message.delivery_status)))
    assert statuses == ["delivered"] * 30


def test_a_receipt_arriving_in_the_second_a_poll_read_is_not_lost(
    sandbox: SandboxHandle, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receipts are marked read by whole seconds. A poll that read to the end of the list
    marked its newest second read, and a receipt the provider wrote later in that same
    second was marked read unseen: its message never got its delivery status."""
    from tests.seed import seed_campaign, seed_list
    from workers.receipts import poll_receipts

    monkeypatch.setenv("CLARION_BATCH_SIZE", "1")
    reset_settings()
    context.start()
    seed_list(sqlite_url, "a", ["+12015550123", "+12015550124"])
    _, run_id = seed_campaign(sqlite_url, ["a"])
    with session_scope(sqlite_url) as session:
        runner.expand(session, run_id, get_settings(), context.current().lookups)
    root = sandbox.root_url
    httpx.post(f"{root}/_sandbox/config", json={"receipt_delay_seconds": 0}, timeout=10)
    # Start at the beginning of a second of the provider's clock (its offset is 0 here).
    httpx.post(f"{root}/_sandbox/advance", json={"seconds": 1.02 - time.time() % 1}, timeout=10)
    dispatcher = context.current().dispatcher
    dispatcher.dispatch_once(run_id)  # the first message; its receipt is due at once
    httpx.post(f"{root}/_sandbox/advance", json={"seconds": 0}, timeout=10)

    class SecondReceiptFirst:
        """Marks read as the client does, once the provider wrote another receipt."""

        def __init__(self, client: ClickSendClient) -> None:
            self.client = client

        def mark_sms_receipts_read(self, date_before: int | None = None) -> None:
            dispatcher.dispatch_once(run_id)  # the second message, still in that second
            httpx.post(f"{root}/_sandbox/advance", json={"seconds": 0}, timeout=10)
            self.client.mark_sms_receipts_read(date_before=date_before)

    with _client(sandbox) as client:
        with session_scope(sqlite_url) as session:
            first = poll_receipts(session, client, marker=SecondReceiptFirst(client))  # type: ignore[arg-type]
        with session_scope(sqlite_url) as session:
            poll_receipts(session, client)
    assert first.read == 1
    with session_scope(sqlite_url) as session:
        statuses = list(session.scalars(select(Message.delivery_status)))
    assert statuses == ["delivered", "delivered"]

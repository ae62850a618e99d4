"""`clarion demo`: the whole product in one process, on the example data.

Imports the 10,000-row example list, records a few STOP replies as opt-outs, creates the
spring-sale campaign and sends it through real Celery tasks to the sandbox provider,
then checks the sandbox's ledger: every recipient exactly once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from rich.console import Console

import config
from campaigns.db import session_scope
from config.settings import get_settings, reset_settings

EXAMPLES = Path(config.__file__).parent / "examples"
DEMO_DIR = Path(".clarion")


def _fresh_database() -> str:
    DEMO_DIR.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (DEMO_DIR / f"demo.db{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{(DEMO_DIR / 'demo.db').resolve()}"


def run_demo(
    console: Console, *, contacts: Path | None = None, definition: Path | None = None
) -> None:
    from campaigns.definition import definition_to_json, load_definition
    from campaigns.runs import create_campaign, start_campaign
    from clarion.embedded import embedded_runtime
    from clarion.importing import run_import
    from clarion.watch import watch_run

    contacts = contacts or EXAMPLES / "customers.csv"
    definition = definition or EXAMPLES / "spring-sale.yaml"
    os.environ["CLARION_DATABASE_URL"] = _fresh_database()
    os.environ["CLARION_PROVIDER"] = "sandbox"
    reset_settings()
    began = time.monotonic()
    with embedded_runtime() as runtime:
        url = runtime.settings.database_url
        console.rule(
            "[bold]Clarion demo[/bold]: embedded mode (SQLite, in-process Celery, sandbox)"
        )
        imported = run_import(url, contacts, "customers", get_settings().default_region, console)
        opted_out = _record_opt_outs(runtime.sandbox_root_url, contacts)
        if opted_out:
            console.print(f"{opted_out} contacts replied STOP earlier: they are suppressed")
        defn = load_definition(definition)
        with session_scope(url) as session:
            campaign = create_campaign(session, definition_to_json(defn))
            run = start_campaign(session, campaign.id)
            assert run is not None
            run_id, run_key = run.id, run.key
        console.print(f"campaign {campaign.id} ({defn.name}) started: run {run_id}")
        watch_run(console, url, run_id, import_duplicates=int(imported["duplicates"]))
        if runtime.sandbox_root_url:
            _show_ledger(console, runtime.sandbox_root_url, run_key)
    console.print(
        f"demo finished in {time.monotonic() - began:.1f} s (database: {DEMO_DIR / 'demo.db'})"
    )
    # The demo keeps its own database, so the default one stays the user's.
    console.print(
        "look at it again with: "
        f"CLARION_DATABASE_URL=sqlite:///{DEMO_DIR}/demo.db clarion campaign status {campaign.id}",
        soft_wrap=True,
    )


def _record_opt_outs(sandbox_root: str | None, contacts: Path) -> int:
    """Inject STOP replies from a few contacts at the sandbox, then read them back the way
    a deployment does (poll inbound, suppress)."""
    if sandbox_root is None:
        return 0
    from workers import context
    from workers.inbound import poll_inbound

    numbers = _first_numbers(contacts, 5)
    for number in numbers:
        httpx.post(
            f"{sandbox_root}/_sandbox/inbound", json={"from": number, "body": "STOP"}, timeout=10
        )
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        # The embedded runtime's worker context: its client, under the same limit.
        lookups = context.current().lookups
        return poll_inbound(session, lookups, settings.default_region).opted_out


def _first_numbers(contacts: Path, count: int) -> list[str]:
    import csv

    numbers = []
    with contacts.open(newline="", encoding="utf-8", errors="replace") as fh:
        for row in csv.DictReader(fh):
            number = (row.get("phone_number") or "").strip()
            if number.startswith("+"):
                numbers.append(number)
            if len(numbers) == count:
                break
    return numbers


def _show_ledger(console: Console, sandbox_root: str, run_key: str) -> None:
    ledger = httpx.get(
        f"{sandbox_root}/_sandbox/ledger", params={"custom_string": run_key}, timeout=10
    ).json()
    dupes = ledger.get("duplicates", [])
    console.print(
        f"sandbox ledger for this run: {ledger.get('accepted_total', 0):,} messages accepted, "
        f"{len(dupes)} recipients received more than one"
    )

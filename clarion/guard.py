"""The command line's side of the checks before sending: run the preflight with the
configured provider, and print its findings, preview and cost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from campaigns.definition import CampaignDefinition
from campaigns.preflight import Preflight, preflight
from campaigns.pricing import load_price_table
from clicksend.errors import ClickSendError
from config.settings import Settings


class GuardError(ValueError):
    """A preflight that cannot run (bad price table, template not found): one line."""


@contextmanager
def provider_client(settings: Settings) -> Iterator[Any]:
    from workers.context import gated_client

    client = gated_client(settings)
    try:
        yield client
    finally:
        client.close()


def template_body(client: Any, defn: CampaignDefinition) -> str | None:
    """The provider template's text when the campaign sends one (ClickSend ids only)."""
    if defn.message.body is not None or not isinstance(defn.message.template_id, int):
        return None
    try:
        return str(client.sms_template(defn.message.template_id).body)
    except ClickSendError as exc:
        raise GuardError(f"message.template_id: {defn.message.template_id}: {exc}") from None


def run_preflight(
    session: Session,
    defn: CampaignDefinition,
    settings: Settings,
    *,
    sample: int = 0,
    provider_price: bool = False,
    balance: bool = False,
) -> Preflight:
    try:
        prices = load_price_table(settings.price_table)
    except ValueError as exc:
        raise GuardError(str(exc)) from None
    with provider_client(settings) as client:
        body = template_body(client, defn)
        try:
            return preflight(
                session,
                defn,
                prices,
                client=client,
                configured_levels=settings.checks,
                template_body=body,
                sample=sample,
                ask_provider_price=provider_price,
                check_balance=balance,
                voice_lang_ttl=settings.voice_lang_cache_seconds,
                http_timeout=settings.http_timeout_seconds,
            )
        except ClickSendError as exc:
            what = "balance" if balance else "price"
            raise GuardError(f"the provider's {what} could not be read: {exc}") from None


def print_findings(console: Console, result: Preflight) -> None:
    for finding in result.errors:
        console.print(f"[red]error:[/red] {finding.line()}", highlight=False)
    for finding in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {finding.line()}", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


def print_preview(console: Console, result: Preflight) -> None:
    shown = result.preview
    if shown.messages:
        table = Table(title="First messages, as they will go out")
        for column in ("to", "status", "encoding", "chars", "parts", "forced UCS-2", "body"):
            table.add_column(column)
        for m in shown.messages:
            forced = f"{m.ucs2_char!r} U+{ord(m.ucs2_char):04X}" if m.ucs2_char else ""
            table.add_row(
                m.to,
                m.status,
                m.encoding,
                str(m.characters),
                str(m.parts),
                forced,
                m.body or (m.error or ""),
            )
        console.print(table)
    t = shown.totals
    totals = Table(title=f"Whole audience ({shown.channel})")
    totals.add_column("")
    totals.add_column("", justify="right")
    for label, value in (
        ("contacts read", t.contacts),
        ("recipients (distinct numbers)", t.recipients),
        ("duplicates across lists", t.duplicates),
        ("suppressed (opted out)", t.suppressed),
        ("invalid numbers", t.invalid),
        ("failing (missing field)", t.failed),
        ("messages to send", t.messages),
        ("parts", t.parts),
        ("UCS-2 messages", t.ucs2),
        ("cut (over the part limit)", t.truncated),
    ):
        totals.add_row(label, f"{value:,}")
    totals.add_row("estimated cost", str(t.estimate))
    if result.provider is not None:
        totals.add_row(
            "provider's price",
            f"{result.provider.total} ({result.provider.requests} requests, "
            f"{result.provider.refused} refused)",
        )
    if result.balance is not None:
        totals.add_row("balance", f"{result.balance} {result.currency or ''}".strip())
    console.print(totals)
    if t.by_country:
        countries = Table(title="By country")
        for column in ("country", "recipients", "parts", "estimated cost"):
            countries.add_column(column, justify="right" if column != "country" else "left")
        for code, c in sorted(t.by_country.items(), key=lambda kv: -kv[1].recipients):
            countries.add_row(code, f"{c.recipients:,}", f"{c.parts:,}", str(c.cost))
        console.print(countries)

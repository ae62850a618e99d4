"""Printing the checks before sending: findings, the preview and the cost."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from campaigns.preflight import Preflight


def print_findings(console: Console, result: Preflight) -> None:
    for finding in result.errors:
        console.print(f"[red]error:[/red] {escape(finding.line())}", highlight=False)
    for finding in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(finding.line())}", highlight=False)
    for note in result.notes:
        console.print(f"note: {escape(note)}", highlight=False)


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

"""Rich rendering of run statistics and import reports."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from campaigns.stats import RunStats


def stats_table(
    stats: RunStats, title: str | None = None, import_duplicates: int | None = None
) -> Table:
    table = Table(
        title=title or f"Run {stats.run_id} (campaign {stats.campaign_id}): {stats.status}"
    )
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    c = stats.counts
    table.add_row("recipients", f"{stats.total:,}")
    table.add_row("sent", f"[green]{c['sent']:,}[/green]")
    if stats.delivered or stats.undelivered:
        table.add_row("  delivered (receipts)", f"{stats.delivered:,}")
        table.add_row("  undelivered (receipts)", f"{stats.undelivered:,}")
    table.add_row("failed", f"[red]{c['failed']:,}[/red]")
    table.add_row("suppressed (opted out)", f"{c['suppressed']:,}")
    if import_duplicates is not None:
        table.add_row("duplicates removed at import", f"{import_duplicates:,}")
    table.add_row("duplicates removed (across lists)", f"{stats.duplicates_removed:,}")
    for status in ("skipped", "expired", "cancelled", "pending", "claimed", "unknown"):
        if c.get(status):
            table.add_row(status, f"{c[status]:,}")
    if stats.waiting:
        until = stats.next_due.isoformat(timespec="seconds") if stats.next_due else "?"
        table.add_row("waiting (not before)", f"{stats.waiting:,} (next {until})")
    table.add_row("provider price", f"{stats.price:.4f} ({stats.parts:,} parts)")
    table.add_row("rate-limited answers (429)", f"{stats.rate_limited:,}")
    table.add_row("time", f"{stats.elapsed_seconds:.1f} s")
    table.add_row("rate", f"{stats.sent_per_second:,.0f} msg/s")
    if stats.eta_seconds is not None:
        table.add_row("time left (at this rate)", f"{stats.eta_seconds:,.0f} s")
    if stats.status_reason:
        table.add_row("reason", stats.status_reason)
    return table


def reasons_table(stats: RunStats, limit: int = 10) -> Table | None:
    if not stats.failure_reasons:
        return None
    table = Table(title="Not sent, by reason")
    table.add_column("reason")
    table.add_column("messages", justify="right")
    for reason, count in list(stats.failure_reasons.items())[:limit]:
        table.add_row(reason, f"{count:,}")
    return table


def print_stats(console: Console, stats: RunStats, import_duplicates: int | None = None) -> None:
    console.print(stats_table(stats, import_duplicates=import_duplicates))
    reasons = reasons_table(stats)
    if reasons is not None:
        console.print(reasons)

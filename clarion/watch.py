"""A live progress bar for a run, ending with its summary table."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from campaigns.db import session_scope
from campaigns.stats import RunStats, run_stats
from clarion.display import print_stats

ACTIVE = ("scheduled", "expanding", "sending")


def watch_run(
    console: Console,
    db_url: str,
    run_id: int,
    *,
    quiet: bool = False,
    interval: float = 0.25,
    import_duplicates: int | None = None,
) -> RunStats:
    """Poll the run's counts until it is no longer active; print the summary."""
    with Progress(
        TextColumn("[bold]run {task.fields[run]}[/bold] {task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} msg/s"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as progress:
        task = progress.add_task("send", total=None, run=run_id, state="", rate="0")
        while True:
            with session_scope(db_url) as session:
                stats = run_stats(session, run_id)
            progress.update(
                task,
                total=stats.total or None,
                completed=stats.done,
                state=stats.status,
                rate=f"{stats.sent_per_second:,.0f}",
            )
            if stats.status not in ACTIVE:
                break
            time.sleep(interval)
    if not quiet:
        print_stats(console, stats, import_duplicates=import_duplicates)
    return stats

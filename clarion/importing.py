"""`clarion lists import`: a CSV import with a progress bar and an error summary."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from campaigns.contacts_csv import import_csv
from campaigns.contacts_import import ImportReport

SHOW_ERRORS = 20


def _count_lines(path: Path) -> int:
    """The file's lines after the header, for the progress bar: line breaks counted in
    large pieces (a million-line file is not split into a million objects)."""
    breaks, last = 0, b""
    with path.open("rb") as fh:
        while piece := fh.read(1 << 20):
            breaks, last = breaks + piece.count(b"\n"), piece[-1:]
    lines = breaks + (1 if last not in (b"", b"\n") else 0)
    return max(0, lines - 1)


def run_import(
    db_url: str, path: Path, list_name: str, region: str, console: Console, *, quiet: bool = False
) -> dict[str, Any]:
    with Progress(
        TextColumn(f"importing [bold]{path.name}[/bold] into {list_name!r}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as progress:
        task = progress.add_task("import", total=_count_lines(path))
        report = import_csv(
            db_url,
            path,
            list_name,
            default_region=region,
            progress=lambda n: progress.update(task, completed=n),
        )
        progress.update(task, completed=report.rows)
    if not quiet:
        print_report(console, report)
    data = asdict(report)
    data["errors"] = [asdict(e) for e in report.errors]
    return data


def print_report(console: Console, report: ImportReport) -> None:
    console.print(
        f"{report.imported:,} imported, {report.updated:,} updated, "
        f"{report.duplicates:,} duplicates, {len(report.errors):,} rows rejected "
        f"(of {report.rows:,} rows; import {report.import_id})"
        + (f"; {report.removed:,} removed (deleted at ClickSend)" if report.removed else "")
    )
    if not report.errors:
        return
    table = Table(
        title="Rejected rows"
        + (f" (first {SHOW_ERRORS})" if len(report.errors) > SHOW_ERRORS else "")
    )
    table.add_column("row", justify="right")
    table.add_column("field")
    table.add_column("problem")
    for error in report.errors[:SHOW_ERRORS]:
        table.add_row(str(error.row), error.field, error.message)
    console.print(table)

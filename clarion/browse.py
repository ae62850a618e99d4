"""Commands that look things up: campaign list and show, lists list, show, export and
delete, opt-outs, and the export of a run's messages. Registered on the CLI's command
groups (``clarion.apps``) when ``clarion.cli`` imports this module; each imports the
database layer only when it runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from clarion.apps import (
    JsonOpt,
    app,
    campaign_app,
    console,
    db_url,
    fail,
    get_settings,
    lists_app,
    messages_app,
    session_scope,
)

optouts_app = typer.Typer(help="Opt-outs (the suppression list).", no_args_is_help=True)
app.add_typer(optouts_app, name="optouts")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def _write(chunks: Any, out: Path | None) -> None:
    """CSV chunks to a file (or standard output), as they come."""
    if out is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return
    with out.open("w", encoding="utf-8", newline="") as fh:
        for chunk in chunks:
            fh.write(chunk)


# -- campaigns ---------------------------------------------------------------------------


@campaign_app.command("list")
def campaign_list(
    status: Annotated[str | None, typer.Option(help="Only campaigns in this status.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Every campaign: id, name, channel, status and its latest run."""
    from sqlalchemy import select

    from campaigns.models import Campaign
    from campaigns.runs import latest_run

    with session_scope(db_url()) as session:
        query = select(Campaign).order_by(Campaign.id)
        if status:
            query = query.where(Campaign.status == status)
        rows = []
        for c in session.scalars(query):
            run = latest_run(session, c.id)
            rows.append(
                {
                    "id": c.id,
                    "name": c.name,
                    "channel": c.channel,
                    "status": c.status,
                    "status_reason": c.status_reason,
                    "latest_run": run.id if run else None,
                    "latest_run_status": run.status if run else None,
                }
            )
    if json_out:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print("no campaigns" + (f" in status {status}" if status else ""))
        return
    _table(
        "Campaigns",
        ["id", "name", "channel", "status", "latest run"],
        [
            [
                r["id"],
                r["name"],
                r["channel"],
                r["status"],
                f"{r['latest_run']} {r['latest_run_status']}" if r["latest_run"] else "-",
            ]
            for r in rows
        ],
    )


@campaign_app.command("show")
def campaign_show(campaign_id: int, json_out: JsonOpt = False) -> None:
    """A campaign's definition, its runs and the counts of its latest run."""
    import yaml
    from sqlalchemy import select

    from campaigns.models import Run
    from campaigns.runs import CampaignError, get_campaign
    from campaigns.stats import run_stats
    from clarion.display import print_stats

    try:
        with session_scope(db_url()) as session:
            campaign = get_campaign(session, campaign_id)
            runs = list(session.scalars(select(Run).where(Run.campaign_id == campaign_id)))
            data: dict[str, Any] = {
                "id": campaign.id,
                "name": campaign.name,
                "status": campaign.status,
                "status_reason": campaign.status_reason,
                "definition": campaign.definition,
                "runs": [
                    {
                        "id": r.id,
                        "occurrence": r.occurrence.isoformat(),
                        "status": r.status,
                        "status_reason": r.status_reason,
                    }
                    for r in runs
                ],
            }
            latest = run_stats(session, runs[-1].id) if runs else None
    except CampaignError as exc:
        raise fail(str(exc)) from None
    if json_out:
        data["latest_run"] = latest.to_json() if latest else None
        console.print_json(json.dumps(data))
        return
    reason = f" ({data['status_reason']})" if data["status_reason"] else ""
    console.print(f"campaign {campaign_id}: {data['name']}, {data['status']}{reason}")
    console.print(yaml.safe_dump(data["definition"], sort_keys=False).rstrip())
    if data["runs"]:
        _table(
            "Runs",
            ["run", "occurrence", "status", "reason"],
            [[r["id"], r["occurrence"], r["status"], r["status_reason"]] for r in data["runs"]],
        )
    else:
        console.print("no run yet")
    if latest:
        print_stats(console, latest)


# -- messages ----------------------------------------------------------------------------


@messages_app.command("export")
def messages_export(
    run_id: int,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status (e.g. failed), or delivered / undelivered."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
) -> None:
    """A run's messages as CSV (streamed: any size in constant memory)."""
    from campaigns.exports import FilterError, messages_csv
    from campaigns.models import Run

    url = db_url()
    with session_scope(url) as session:
        if session.get(Run, run_id) is None:
            raise fail(f"run {run_id}: no such run")
    try:
        _write(messages_csv(url, run_id, status), out)
    except FilterError as exc:
        raise fail(str(exc)) from None
    if out is not None:
        console.print(f"run {run_id}: messages written to {out}")


# -- lists -------------------------------------------------------------------------------


def _find_list(session: Any, ref: str) -> Any:
    from sqlalchemy import select

    from campaigns.models import ContactList

    query = select(ContactList).where(
        ContactList.id == int(ref) if ref.isdigit() else ContactList.name == ref
    )
    found = session.scalars(query).first()
    if found is None:
        raise fail(f"list {ref}: no such list")
    return found


@lists_app.command("list")
def lists_list(json_out: JsonOpt = False) -> None:
    """Every contact list with its number of contacts."""
    from sqlalchemy import func, select

    from campaigns.models import Contact, ContactList

    with session_scope(db_url()) as session:
        counts = dict(
            session.execute(select(Contact.list_id, func.count()).group_by(Contact.list_id)).all()
        )
        rows = [
            {
                "id": lst.id,
                "name": lst.name,
                "source": lst.source,
                "contacts": counts.get(lst.id, 0),
            }
            for lst in session.scalars(select(ContactList).order_by(ContactList.id))
        ]
    if json_out:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print("no lists yet: `clarion lists import FILE --list NAME` makes one")
        return
    _table(
        "Lists",
        ["id", "name", "source", "contacts"],
        [[r["id"], r["name"], r["source"], f"{r['contacts']:,}"] for r in rows],
    )


@lists_app.command("show")
def lists_show(
    ref: Annotated[str, typer.Argument(help="The list's id or name.")],
    count: Annotated[int, typer.Option("-n", help="Contacts to show.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """A list: its size and its first contacts."""
    from sqlalchemy import func, select

    from campaigns.models import Contact

    with session_scope(db_url()) as session:
        lst = _find_list(session, ref)
        total = session.scalar(select(func.count()).where(Contact.list_id == lst.id)) or 0
        first = [
            {"phone": c.phone, "fields": c.fields, "timezone": c.timezone}
            for c in session.scalars(
                select(Contact).where(Contact.list_id == lst.id).order_by(Contact.id).limit(count)
            )
        ]
        data = {
            "id": lst.id,
            "name": lst.name,
            "source": lst.source,
            "contacts": int(total),
            "first": first,
        }
    if json_out:
        console.print_json(json.dumps(data))
        return
    console.print(f"list {data['id']} {data['name']}: {data['contacts']:,} contacts")
    if first:
        _table(
            f"First {len(first)}",
            ["phone", "fields", "timezone"],
            [[c["phone"], json.dumps(c["fields"]), c["timezone"]] for c in first],
        )


@lists_app.command("export")
def lists_export(
    ref: Annotated[str, typer.Argument(help="The list's id or name.")],
    out: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
) -> None:
    """A list as CSV, in the import's format."""
    from campaigns.exports import contacts_csv

    url = db_url()
    with session_scope(url) as session:
        list_id = _find_list(session, ref).id
    _write(contacts_csv(url, list_id), out)
    if out is not None:
        console.print(f"list {ref}: written to {out}")


@lists_app.command("delete")
def lists_delete(
    ref: Annotated[str, typer.Argument(help="The list's id or name.")],
    json_out: JsonOpt = False,
) -> None:
    """Delete a list and its contacts (refused while a campaign not yet over uses it)."""
    from sqlalchemy import delete, select

    from campaigns.models import Campaign, Contact

    with session_scope(db_url()) as session:
        lst = _find_list(session, ref)
        for campaign in session.scalars(
            select(Campaign).where(Campaign.status.in_(("draft", "active", "paused")))
        ):
            if lst.name in (campaign.definition.get("audience", {}).get("lists") or []):
                raise fail(
                    f"list {lst.name}: campaign {campaign.id} ({campaign.name}) uses it; "
                    "cancel or delete that campaign first"
                )
        result = session.execute(delete(Contact).where(Contact.list_id == lst.id))
        gone = int(result.rowcount)  # type: ignore[attr-defined]
        name = lst.name
        session.delete(lst)
    if json_out:
        console.print_json(json.dumps({"deleted": name, "contacts": gone}))
    else:
        console.print(f"list {name} deleted with its {gone:,} contacts")


# -- opt-outs ----------------------------------------------------------------------------


@optouts_app.command("list")
def optouts_list(
    phone: Annotated[str | None, typer.Option(help="Digits the number contains.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Suppressed numbers, newest first."""
    from sqlalchemy import select

    from campaigns.models import Suppression

    with session_scope(db_url()) as session:
        query = select(Suppression).order_by(Suppression.id.desc())
        if phone:
            digits = "".join(c for c in phone if c.isdigit())
            query = query.where(Suppression.phone.contains(digits, autoescape=True))
        rows = [
            {"phone": s.phone, "reason": s.reason, "created_at": s.created_at.isoformat()}
            for s in session.scalars(query)
        ]
    if json_out:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print("no opted-out numbers")
        return
    _table("Opt-outs", ["phone", "reason", "since"], [list(r.values()) for r in rows])


@optouts_app.command("add")
def optouts_add(
    phone: str,
    reason: Annotated[str, typer.Option(help="Why.")] = "added by hand",
) -> None:
    """Suppress a number: no later message goes to it (a running run skips it too)."""
    from campaigns.optout import add_suppression
    from campaigns.phones import InvalidPhone

    try:
        with session_scope(db_url()) as session:
            number, added = add_suppression(session, phone, get_settings().default_region, reason)
    except InvalidPhone as exc:
        raise fail(f"phone: {exc}") from None
    console.print(f"{number} {'is now suppressed' if added else 'was suppressed already'}")


@optouts_app.command("remove")
def optouts_remove(phone: str) -> None:
    """Lift a suppression."""
    from campaigns.optout import remove_suppression
    from campaigns.phones import InvalidPhone

    try:
        with session_scope(db_url()) as session:
            number = remove_suppression(session, phone, get_settings().default_region)
    except InvalidPhone as exc:
        raise fail(f"phone: {exc}") from None
    if number is None:
        raise fail(f"{phone} is not suppressed")
    console.print(f"{number} is no longer suppressed")


@optouts_app.command("import")
def optouts_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    json_out: JsonOpt = False,
) -> None:
    """Suppress the numbers of a CSV file (a phone_number column, optionally reason)."""
    from campaigns.optout import import_suppressions

    try:
        with (
            file.open(encoding="utf-8-sig", newline="") as fh,
            session_scope(db_url()) as session,
        ):
            report = import_suppressions(session, fh, get_settings().default_region)
    except ValueError as exc:
        raise fail(f"{file}: {exc}") from None
    if json_out:
        console.print_json(json.dumps(report.to_json()))
        return
    console.print(
        f"{report.rows:,} rows: {report.added:,} numbers suppressed, "
        f"{report.already:,} were already, {len(report.errors):,} rejected"
    )
    for row, field, message in report.errors[:20]:
        console.print(f"  row {row}: {field}: {message}")

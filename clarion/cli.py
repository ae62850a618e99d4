"""The `clarion` command line (typer + rich)."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from clarion.apps import (
    JsonOpt,
    app,
    campaign_app,
    console,
    db_app,
    db_url,
    err_console,
    fail,
    get_settings,
    lists_app,
    messages_app,
    session_scope,
)


def _embedded() -> bool:
    return get_settings().broker_url.startswith("memory://")


def _version(value: bool) -> None:
    if value:
        from config.version import __version__

        console.print(f"clarion {__version__}")
        raise typer.Exit()


@app.callback()
def _setup(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
) -> None:
    from config.logging import configure_logging

    configure_logging(get_settings().log_level)


# -- db ------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from campaigns.migrate import upgrade

    upgrade(get_settings().database_url)
    console.print("database is up to date")


# -- lists ---------------------------------------------------------------------------


@lists_app.command("import")
def lists_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    list_name: Annotated[str, typer.Option("--list", help="The list to add the contacts to.")],
    region: Annotated[str | None, typer.Option(help="Region for numbers without +country.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Import contacts from a CSV file (ClickSend contact field names)."""
    from campaigns.contacts_import import CsvFormatError
    from clarion.importing import run_import

    try:
        report = run_import(
            db_url(),
            file,
            list_name,
            region or get_settings().default_region,
            console,
            quiet=json_out,
        )
    except (CsvFormatError, ValueError) as exc:
        # A file-level problem (no phone_number column, unreadable header, bad region):
        # nothing was imported. Row-level problems never get here; they are in the report.
        raise fail(str(exc)) from None
    if json_out:
        console.print_json(json.dumps(report))


@lists_app.command("sync")
def lists_sync(
    clicksend_list_id: Annotated[int, typer.Argument(help="The ClickSend list id.")],
    name: Annotated[str | None, typer.Option(help="Local name (default: ClickSend's).")] = None,
    full: Annotated[
        bool, typer.Option(help="Read every contact; drop those deleted at ClickSend.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Copy a ClickSend contact list into the local store (incremental after the first)."""
    from dataclasses import asdict

    from campaigns.sync import sync_list
    from clarion.importing import print_report

    with _client() as client, session_scope(db_url()) as session:
        report = sync_list(
            session,
            client,
            clicksend_list_id,
            default_region=get_settings().default_region,
            name=name,
            full=full,
        )
    if json_out:
        data = asdict(report)
        console.print_json(json.dumps(data))
    else:
        print_report(console, report)


# -- the provider account ------------------------------------------------------------


def _client() -> Any:
    """The provider client, under the account's shared rate limit like the workers'."""
    from workers.context import gated_client

    return gated_client(get_settings())


@app.command()
def account(json_out: JsonOpt = False) -> None:
    """The provider account's balance and currency."""
    from clicksend.errors import ClickSendError

    try:
        with _client() as client:
            acct = client.account()
    except ClickSendError as exc:
        raise fail(str(exc)) from None
    data = {"username": acct.username, "balance": str(acct.balance), "currency": acct.currency}
    if json_out:
        console.print_json(json.dumps(data))
    else:
        console.print(f"{acct.username}: balance {acct.balance} {acct.currency}")


templates_app = typer.Typer(help="The account's SMS templates.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")


@templates_app.command("list")
def templates_list(json_out: JsonOpt = False) -> None:
    """SMS templates stored at the provider (usable as message.template_id)."""
    from rich.table import Table

    with _client() as client:
        templates = list(client.sms_templates())
    if json_out:
        console.print_json(
            json.dumps(
                [{"template_id": t.template_id, "name": t.name, "body": t.body} for t in templates]
            )
        )
        return
    table = Table(title="SMS templates")
    for column in ("id", "name", "body"):
        table.add_column(column)
    for t in templates:
        table.add_row(str(t.template_id), t.name, t.body)
    console.print(table)


# -- campaigns -----------------------------------------------------------------------


@campaign_app.command("create")
def campaign_create(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the draft of the same name.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Validate a campaign definition (YAML or JSON), check it against its audience and
    the provider, and store it as a draft. Check errors refuse it; warnings are shown."""
    from campaigns.definition import DefinitionError, definition_to_json, load_definition
    from campaigns.runs import CampaignError, create_campaign
    from clarion.guard import print_findings
    from workers.preflight import GuardError, run_preflight

    try:
        defn = load_definition(file)
        with session_scope(db_url()) as session:
            campaign = create_campaign(
                session, definition_to_json(defn), unique_name=True, replace=replace
            )
            campaign_id = campaign.id
            checked = run_preflight(session, defn, get_settings())
            print_findings(err_console, checked)
            if checked.errors:
                session.rollback()
                raise fail(f"{file}: not created: {len(checked.errors)} check(s) failed")
    except DefinitionError as exc:
        raise fail(f"{file}: invalid definition\n  " + "\n  ".join(exc.errors)) from None
    except (CampaignError, GuardError) as exc:
        raise fail(f"{file}: {exc}") from None
    if json_out:
        console.print_json(
            json.dumps(
                {
                    "campaign_id": campaign_id,
                    "status": "draft",
                    "warnings": [f.to_json() for f in checked.warnings],
                }
            )
        )
    else:
        console.print(
            f"campaign [bold]{campaign_id}[/bold] {'replaced' if replace else 'created'} "
            f"({defn.name}); start it with `clarion campaign start {campaign_id}`"
        )


@campaign_app.command("preview")
def campaign_preview(
    campaign_id: int,
    count: Annotated[int, typer.Option("-n", "--count", help="Messages to show.", min=0)] = 10,
    provider_price: Annotated[
        bool, typer.Option("--provider-price", help="Ask the provider's price (1 call/1000).")
    ] = False,
    balance: Annotated[bool, typer.Option(help="Compare with the account's balance.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """The first messages exactly as they will go out (encoding, parts, the character
    that forced UCS-2), totals for the whole audience, the cost and the checks."""
    from campaigns.definition import load_definition
    from campaigns.runs import CampaignError, get_campaign
    from clarion.guard import print_findings, print_preview
    from workers.preflight import GuardError, run_preflight

    try:
        with session_scope(db_url()) as session:
            defn = load_definition(get_campaign(session, campaign_id).definition)
            result = run_preflight(
                session,
                defn,
                get_settings(),
                sample=count,
                provider_price=provider_price,
                balance=balance,
            )
    except (CampaignError, GuardError) as exc:
        raise fail(str(exc)) from None
    if json_out:
        console.print_json(json.dumps({"campaign_id": campaign_id, **result.to_json()}))
        return
    print_preview(console, result)
    print_findings(console, result)


def _is_scheduled(campaign_id: int) -> bool:
    from campaigns.runs import get_campaign, recurring

    with session_scope(db_url()) as session:
        return recurring(get_campaign(session, campaign_id).definition)


def _say_others_due(campaign_id: int) -> None:
    """A command about one campaign sends only that one; it says what else is waiting."""
    from scheduler.tick import others_due

    with session_scope(db_url()) as session:
        others = others_due(session, campaign_id)
    if others:
        err_console.print(
            f"note: {others} other campaign{'s' if others > 1 else ''} "
            f"{'have' if others > 1 else 'has'} runs due; this command sends only campaign "
            f"{campaign_id}. Keep `clarion serve` running to send scheduled campaigns."
        )


def _run_embedded(campaign_id: int, action: Any, *, wait: bool, json_out: bool) -> None:
    """Start or resume a campaign in the embedded mode: the worker and a scheduler scoped
    to this campaign run in this command until its run ends."""
    from campaigns.runs import CampaignError, latest_run
    from clarion.embedded import embedded_runtime

    with embedded_runtime(campaign_id=campaign_id):
        settings = get_settings()
        try:
            outcome = action(settings, campaign_id)
        except CampaignError as exc:
            raise fail(str(exc)) from None
        if not json_out:
            console.print(outcome.message)
        run_ids = list(outcome.run_ids)
        # A run that is due now (an overdue send_at) is sent here like an immediate one.
        if not run_ids and (wait or outcome.due_now):
            if not json_out:
                console.print("waiting for it to fire (Ctrl-C stops waiting; it stays scheduled)")

            def fired() -> int | None:
                with session_scope(settings.database_url) as session:
                    run = latest_run(session, campaign_id)
                    return run.id if run else None

            while (run_id := fired()) is None:
                time.sleep(0.5)
            run_ids = [run_id]
        for run_id in run_ids:
            _watch(run_id, quiet=json_out)
    if json_out:
        if run_ids:
            _print_status_json(run_ids[-1])
        else:
            console.print_json(json.dumps(outcome.to_json()))
    elif not run_ids:
        console.print(
            "It fires only while `clarion serve` runs (or `clarion campaign start "
            f"{campaign_id} --wait` waits for it here)."
        )
    _say_others_due(campaign_id)


@contextmanager
def _loading() -> Iterator[None]:
    """Import a command's modules with the cyclic collector off, then freeze them: each
    full collection while the heap of module objects grows walks all of it again (about
    0.08 CPU-s of the 0.7 s `campaign start` spends importing), and those objects live
    until the process ends, so later collections leave them out too."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


@campaign_app.command("start")
def campaign_start(
    campaign_id: int,
    watch: Annotated[bool, typer.Option(help="Follow progress until the run ends.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Start even if the balance does not cover it.")
    ] = False,
    provider_price: Annotated[
        bool, typer.Option("--provider-price", help="Compare the provider's price, not ours.")
    ] = False,
    wait: Annotated[
        bool, typer.Option(help="Embedded mode: wait here for a scheduled campaign to fire.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Start a campaign after its checks pass and the balance covers it. Embedded mode
    (memory broker) sends it here and now; a scheduled one is sent by `clarion serve`
    (or here with --wait)."""
    with _loading():
        from campaigns.runs import CampaignError
        from workers import control
        from workers.preflight import StartRefused

    def checked_start(settings: Any, cid: int) -> Any:
        try:
            outcome = control.start(settings, cid, force=force, provider_price=provider_price)
        except StartRefused as exc:
            _print_refusal(exc)
        _print_start_notes(outcome.extra)
        return outcome

    if _embedded():
        _run_embedded(campaign_id, checked_start, wait=wait, json_out=json_out)
        return
    try:
        outcome = checked_start(get_settings(), campaign_id)
    except CampaignError as exc:
        raise fail(str(exc)) from None
    if json_out:
        console.print_json(json.dumps(outcome.to_json()))
    else:
        console.print(outcome.message)
    if watch and outcome.run_ids:
        _watch(outcome.run_ids[0], quiet=False)


def _print_refusal(exc: Any) -> NoReturn:
    """A start the checks or the balance refused: the findings, then one line."""
    from clarion.guard import print_findings

    print_findings(err_console, exc.result)
    if exc.result.errors:
        count = len(exc.result.errors)
        raise fail(str(exc).split(":", 2)[0] + f": not started: {count} check(s) failed")
    raise fail(str(exc))


def _print_start_notes(extra: dict[str, Any]) -> None:
    from rich.markup import escape

    for w in extra.get("warnings", []):
        line = f"{w['field']}: {w['message']} [{w['check']}]"
        err_console.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False)
    if extra.get("forced"):
        err_console.print(
            f"[yellow]warning:[/yellow] forced: {escape(extra['forced'])}", highlight=False
        )


@campaign_app.command("test")
def campaign_test(
    campaign_id: int,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="A number to send the test to (repeat).")
    ] = None,
    seed_list: Annotated[
        str | None, typer.Option("--seed-list", help="A contact list: each gets their own.")
    ] = None,
    contact: Annotated[
        str | None, typer.Option(help="Render for this audience contact (default: the first).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Send the rendered message now to a few numbers, without touching any run."""
    from campaigns.runs import CampaignError
    from campaigns.testsend import TrialSendError
    from workers.preflight import GuardError, send_test

    try:
        with session_scope(db_url()) as session:
            results = send_test(
                session,
                campaign_id,
                get_settings(),
                to=to or [],
                seed_list=seed_list,
                contact=contact,
            )
    except (CampaignError, TrialSendError, GuardError) as exc:
        raise fail(str(exc)) from None
    if json_out:
        console.print_json(json.dumps([r.to_json() for r in results]))
    else:
        for r in results:
            console.print(
                f"{r.to}: {r.status}"
                + (f" ({r.parts} parts, {r.price})" if r.message_id else "")
                + f"\n  {r.body}",
                highlight=False,
            )
    if any(r.status != "SUCCESS" for r in results):
        raise typer.Exit(code=1)


@campaign_app.command("budget")
def campaign_budget(
    campaign_id: int,
    campaign_cap: Annotated[
        str | None, typer.Option("--campaign", help="Cap for all the campaign's runs.")
    ] = None,
    run_cap: Annotated[str | None, typer.Option("--run", help="Cap for each run.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Set the campaign's budget caps (then `resume` a run its cap paused)."""
    from decimal import Decimal, InvalidOperation

    from campaigns.budget import set_budget
    from campaigns.definition import DefinitionError
    from campaigns.runs import CampaignError

    try:
        caps = {
            name: Decimal(value)
            for name, value in (("campaign", campaign_cap), ("run", run_cap))
            if value is not None
        }
        with session_scope(db_url()) as session:
            budget = set_budget(session, campaign_id, **caps)
    except InvalidOperation:
        raise fail("budget: --campaign and --run take an amount, e.g. 25.00") from None
    except DefinitionError as exc:
        raise fail("; ".join(exc.errors)) from None
    except CampaignError as exc:
        raise fail(str(exc)) from None
    data = {
        "campaign_id": campaign_id,
        "campaign": str(budget.campaign) if budget.campaign is not None else None,
        "run": str(budget.run) if budget.run is not None else None,
    }
    if json_out:
        console.print_json(json.dumps(data))
        return
    shown = [
        f"{k} {v}" for k, v in (("campaign", data["campaign"]), ("each run", data["run"])) if v
    ]
    console.print(
        f"campaign {campaign_id} budget: " + (", ".join(shown) if shown else "no cap") + "."
    )


def _latest_run_id(campaign_id: int) -> int | None:
    from campaigns.runs import get_campaign, latest_run

    with session_scope(db_url()) as session:
        get_campaign(session, campaign_id)
        run = latest_run(session, campaign_id)
        return run.id if run else None


def _limiter_stats() -> dict[str, float] | None:
    """The shared limiter's state (adaptive factor, block, 429s) when Redis holds it; an
    in-process limiter lives in the workers and cannot be read from here."""
    settings = get_settings()
    if not settings.redis_url:
        return None
    from workers.context import account_limiter

    return account_limiter(settings).stats()


def _print_status_json(run_id: int) -> None:
    from campaigns.models import Run
    from campaigns.stats import run_stats

    with session_scope(db_url()) as session:
        data = run_stats(session, run_id).to_json()
        run = session.get(Run, run_id)
        assert run is not None
        campaign_id = run.campaign_id
    data["rate_limit"] = _limiter_stats()
    data["campaign"] = _campaign_state(campaign_id)["campaign"]
    console.print_json(json.dumps(data))


def _campaign_state(campaign_id: int) -> dict[str, Any]:
    """The campaign's own state: why it is paused, and the scheduler's last error with it."""
    from campaigns.runs import get_campaign

    with session_scope(db_url()) as session:
        campaign = get_campaign(session, campaign_id)
        status, reason, error = campaign.status, campaign.status_reason, campaign.error
    from workers.control import next_occurrence

    at, zone = next_occurrence(get_settings(), campaign_id)
    return {
        "campaign": {
            "status": status,
            "status_reason": reason,
            "error": error,
            "next_occurrence": at.isoformat() if at else None,
            "zone": zone,
        }
    }


def _print_campaign_state(state: dict[str, Any]) -> None:
    from rich.markup import escape

    campaign = {k: escape(v) if isinstance(v, str) else v for k, v in state["campaign"].items()}
    if campaign["status_reason"] and campaign["status"] != "active":
        console.print(f"campaign is {campaign['status']}: {campaign['status_reason']}")
    elif campaign["status"] != "active":
        console.print(f"campaign is {campaign['status']}")
    if campaign["error"]:
        console.print(f"[red]scheduler error:[/red] {campaign['error']}")
    if campaign.get("next_occurrence") and campaign["status"] in ("active", "paused"):
        console.print(f"next run: {campaign['next_occurrence']} ({campaign['zone']})")


@campaign_app.command("status")
def campaign_status(
    campaign_id: int,
    watch: Annotated[bool, typer.Option(help="Live progress until the run ends.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Counts by message status and the state of the campaign's latest run."""
    from campaigns.runs import CampaignError
    from campaigns.stats import run_stats
    from clarion.display import print_stats

    try:
        run_id = _latest_run_id(campaign_id)
    except CampaignError as exc:
        raise fail(str(exc)) from None
    state = _campaign_state(campaign_id)
    if run_id is None:
        if json_out:
            console.print_json(json.dumps({"campaign_id": campaign_id, "run": None, **state}))
        else:
            console.print(f"campaign {campaign_id} has no run yet")
            _print_campaign_state(state)
        return
    if watch:
        _watch(run_id, quiet=json_out)
    if json_out:
        _print_status_json(run_id)
        return
    with session_scope(db_url()) as session:
        print_stats(console, run_stats(session, run_id))
    _print_campaign_state(state)
    limiter = _limiter_stats()
    if limiter:
        console.print(
            f"rate limit: factor {limiter['factor']:.2f} of the configured rate "
            f"({limiter['requests_per_second']:g} requests/s, {limiter['messages_per_second']:g} "
            f"messages/s), {limiter['rate_limited']:g} 429s seen, blocked for "
            f"{limiter['blocked_for']:.1f} s; after a 429 the rate drops and climbs back by "
            f"{limiter['recovery_per_second']:.3f} per second"
        )


def _outcome(json_out: bool, outcome: Any) -> None:
    if json_out:
        console.print_json(json.dumps(outcome.to_json()))
    else:
        console.print(outcome.message)


@campaign_app.command("pause")
def campaign_pause(campaign_id: int, json_out: JsonOpt = False) -> None:
    """Pause: nothing new is claimed; the batch already on the wire completes."""
    from campaigns.runs import CampaignError
    from workers import control

    try:
        outcome = control.pause(get_settings(), campaign_id)
    except CampaignError as exc:
        raise fail(str(exc)) from None
    _outcome(json_out, outcome)


@campaign_app.command("resume")
def campaign_resume(campaign_id: int, json_out: JsonOpt = False) -> None:
    """Resume a paused campaign where it stopped (embedded mode: sends it here, like start)."""
    from campaigns.runs import CampaignError
    from workers import control

    if _embedded():
        _run_embedded(campaign_id, control.resume, wait=False, json_out=json_out)
        return
    try:
        outcome = control.resume(get_settings(), campaign_id)
    except CampaignError as exc:
        raise fail(str(exc)) from None
    _outcome(json_out, outcome)


@campaign_app.command("cancel")
def campaign_cancel(campaign_id: int, json_out: JsonOpt = False) -> None:
    """Cancel: pending messages are never sent; messages handed to the provider with a
    future schedule are cancelled there too."""
    from campaigns.runs import CampaignError
    from workers import control

    try:
        outcome = control.cancel(get_settings(), campaign_id)
    except CampaignError as exc:
        raise fail(str(exc)) from None
    _outcome(json_out, outcome)


def _watch(run_id: int, *, quiet: bool) -> None:
    from clarion.watch import watch_run

    watch_run(console, db_url(), run_id, quiet=quiet)


schedule_app = typer.Typer(help="Scheduled and recurring campaigns.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("list")
def schedule_list(
    campaign_id: Annotated[int | None, typer.Option("--campaign")] = None,
    count: Annotated[int, typer.Option(help="Occurrences to show per campaign.")] = 5,
    json_out: JsonOpt = False,
) -> None:
    """Next occurrences of each scheduled campaign, in the campaign's time zone."""
    from rich.table import Table

    from scheduler.listing import upcoming

    with session_scope(db_url()) as session:
        items = upcoming(session, count=count, campaign_id=campaign_id)
    if json_out:
        console.print_json(json.dumps([item.to_json() for item in items]))
        return
    table = Table(title="Schedule")
    for column in ("campaign", "status", "schedule", "zone", "next occurrences"):
        table.add_column(column)
    for item in items:
        nexts = "\n".join(at.strftime("%a %Y-%m-%d %H:%M %Z") for at in item.next)
        table.add_row(
            f"{item.campaign_id} {item.name}",
            item.status,
            f"{item.kind} {item.schedule}",
            item.zone,
            nexts or item.error or "-",
        )
    console.print(table)


@messages_app.command("purge")
def messages_purge(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Runs finished longer ago than this (90d, 12w).")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Delete the message rows of runs that finished long ago; run totals stay."""
    from campaigns.definition import parse_duration
    from campaigns.retention import purge_messages

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise fail(f"--older-than: {exc}") from None
    if age.total_seconds() <= 0:
        raise fail(f"--older-than: a positive duration is needed, got {older_than!r}")
    with session_scope(db_url()) as session:
        report = purge_messages(session, age)
    if json_out:
        console.print_json(json.dumps({"runs": report.runs, "messages": report.messages}))
        return
    console.print(f"{report.messages:,} message rows of {report.runs:,} finished runs deleted")


# -- processes -----------------------------------------------------------------------


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c")] = 2,
    loglevel: Annotated[str, typer.Option()] = "INFO",
    hostname: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Run a Celery worker (scaled mode: Redis broker, PostgreSQL)."""
    from workers.app import app as celery_app

    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery_app.worker_main(argv)


@app.command()
def scheduler(loglevel: Annotated[str, typer.Option()] = "INFO") -> None:
    """Run the beat scheduler: the periodic tick that fires due runs and recovers stuck ones."""
    from workers.beat import run_beat

    run_beat(loglevel)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8765,
    username: Annotated[str | None, typer.Option()] = None,
    api_key: Annotated[str | None, typer.Option("--api-key")] = None,
) -> None:
    """Serve the ClickSend-compatible sandbox provider."""
    from sandbox.config import SandboxConfig
    from sandbox.server import serve_forever

    # Defaults: the credentials the client uses by default (CLARION_SANDBOX_USERNAME and
    # _API_KEY), so `clarion sandbox` and the other commands agree out of the box.
    settings = get_settings()
    config = SandboxConfig(
        username=username or settings.sandbox_username,
        api_key=api_key or settings.sandbox_api_key.get_secret_value(),
    )
    console.print(
        f"sandbox on http://{host}:{port}/v3  username={config.username}  "
        "(api key: --api-key, else CLARION_SANDBOX_API_KEY's)"
    )
    serve_forever(config, host, port)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8080,
) -> None:
    """The embedded mode as one long-running process: worker, scheduler and HTTP API
    (and the sandbox provider when it is configured and not running)."""
    from clarion.serve import run_serve

    db_url()
    run_serve(console, host, port)


@app.command("api")
def api_command(
    host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Scaled mode: serve the HTTP API only (stateless; run any number of replicas)."""
    from clarion.serve import run_api

    run_api(console, host, port, workers)


@app.command()
def demo(
    rows: Annotated[
        Path | None, typer.Option(help="Contacts CSV (default: the 10,000-row example).")
    ] = None,
    definition: Annotated[Path | None, typer.Option(help="Campaign definition.")] = None,
) -> None:
    """Import the example list and send the example campaign, all in this process."""
    from clarion.demo import run_demo

    run_demo(console, contacts=rows, definition=definition)


# Commands that look things up live in their own module; it registers them on the apps above.
from clarion import browse  # noqa: E402,F401


def main() -> None:
    """Run the CLI; a mistake in the configuration or an unreachable service ends in one
    line naming the variable (`--debug` shows the traceback)."""
    import sys

    debug = "--debug" in sys.argv[1:]
    try:
        app(standalone_mode=True)
    except Exception as exc:
        from clarion.errors import user_error

        line = user_error(exc)
        if line is None:
            raise
        err_console.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
        if debug:
            raise
        raise SystemExit(1) from None

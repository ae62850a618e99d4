"""The command line's command groups and what every command shares: the consoles, the
settings, the database session and the way a command fails. ``clarion.cli`` and
``clarion.browse`` register their commands on these groups."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from config.settings import Settings

app = typer.Typer(help="Bulk SMS, MMS and voice campaigns through ClickSend.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
lists_app = typer.Typer(help="Contact lists.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns and their runs.", no_args_is_help=True)
messages_app = typer.Typer(help="Messages of runs: export, purge.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(lists_app, name="lists")
app.add_typer(campaign_app, name="campaign")
app.add_typer(messages_app, name="messages")

console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


# The database layer (SQLAlchemy), the settings (pydantic) and Celery are imported where a
# command needs them, not at start-up, so `clarion --help` answers at once.
def get_settings() -> Settings:
    from config.settings import get_settings as settings

    return settings()


def session_scope(url: str) -> AbstractContextManager[Session]:
    from campaigns.db import session_scope as scope

    return scope(url)


def fail(message: str) -> typer.Exit:
    # soft_wrap: one line however narrow the terminal, for people and for scripts.
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code=1)


def db_url() -> str:
    """The database URL; an embedded SQLite file is migrated on first use."""
    url = get_settings().database_url
    if url.startswith("sqlite"):
        from campaigns.migrate import upgrade

        upgrade(url)
    return url

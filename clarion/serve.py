"""`clarion serve` (embedded: worker, scheduler tick and API in one process) and
`clarion api` (scaled: the API alone, stateless)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from rich.console import Console

from config.settings import get_settings, reset_settings

log = logging.getLogger(__name__)

TOKEN_FILE = Path(".clarion") / "api-token"


def ensure_api_token(console: Console) -> None:
    """Without CLARION_API_TOKENS, `serve` makes one token and keeps it in a file only its
    owner can read, so the API is never open and the token never lands in a log."""
    if get_settings().api_token_list():
        return
    if not TOKEN_FILE.exists():
        TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    os.environ["CLARION_API_TOKENS"] = TOKEN_FILE.read_text().strip()
    reset_settings()
    console.print(
        f"API token: in {TOKEN_FILE} (set CLARION_API_TOKENS to choose your own); "
        f"send it as Authorization: Bearer <token>"
    )


class _Server(uvicorn.Server):
    """Stops serving on SIGINT or SIGTERM and returns, so the caller can let the worker
    settle. uvicorn's own handling re-raises the signal once it has shut down, and a
    re-raised SIGTERM would end the process before the batch on the wire settled."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def run_serve(console: Console, host: str, port: int) -> None:
    from api.app import create_app
    from clarion.embedded import embedded_runtime

    ensure_api_token(console)
    with embedded_runtime(reuse_sandbox=True, polls=True) as runtime:
        app = create_app(get_settings())
        server = _Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        )
        sandbox = (
            f"; sandbox provider on {runtime.sandbox_root_url}" if runtime.sandbox_root_url else ""
        )
        console.print(
            f"clarion serve: API on http://{host}:{port} (OpenAPI at /openapi.json), "
            f"worker and scheduler running{sandbox}. Ctrl-C stops."
        )
        server.run()
        console.print("stopping: letting the batch on the wire settle")
    console.print("stopped")


def run_api(console: Console, host: str, port: int, workers: int) -> None:
    settings = get_settings()
    if not settings.api_token_list():
        console.print("[yellow]warning:[/yellow] CLARION_API_TOKENS is empty: every call gets 401")
    if settings.broker_url.startswith("memory://"):
        # The scaled API hands work to workers through the broker; an in-process broker
        # here reaches none (the embedded mode is `clarion serve`).
        console.print(
            "[yellow]warning:[/yellow] CLARION_BROKER_URL is memory://: no worker would get "
            "the runs this API starts; set the broker the workers use, or run `clarion serve`"
        )
    console.print(f"clarion api on http://{host}:{port} (OpenAPI at /openapi.json)")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )

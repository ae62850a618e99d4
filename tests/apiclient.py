"""The real API app over a test database, served by uvicorn on loopback and reached
through httpx over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from config.settings import Settings

TOKEN = "test-token-0123456789"
WEBHOOK_SECRET = "hook-secret-abcdef"


def api_settings(db_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "api_tokens": f"other-token,{TOKEN}",
        "webhook_secret": WEBHOOK_SECRET,
    }
    values.update(extra)
    return Settings(**values)


@contextmanager
def serve_app(settings: Settings) -> Iterator[str]:
    """uvicorn in a thread on a free port; yields the base URL."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def api_client(db_url: str, *, auth: bool = True, **extra: Any) -> Iterator[httpx.Client]:
    """An httpx client on the served app; with the bearer token unless ``auth=False``."""
    headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
    with (
        serve_app(api_settings(db_url, **extra)) as base,
        httpx.Client(base_url=base, headers=headers, timeout=60) as client,
    ):
        yield client

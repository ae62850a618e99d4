"""A sandbox provider on loopback with the CLI's environment pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from config.settings import reset_settings
from sandbox.config import SandboxConfig
from sandbox.server import SandboxHandle, start_in_thread
from workers import context


@contextmanager
def sandbox_env(
    monkeypatch: pytest.MonkeyPatch, db_url: str, **config: Any
) -> Iterator[SandboxHandle]:
    handle = start_in_thread(SandboxConfig(api_key="guard-key", **config))
    monkeypatch.setenv("CLARION_DATABASE_URL", db_url)
    # As a ClickSend account (not "sandbox"): the embedded mode then talks to this server
    # instead of starting a fresh one of its own.
    monkeypatch.setenv("CLARION_PROVIDER", "clicksend")
    monkeypatch.setenv("CLARION_CLICKSEND_BASE_URL", handle.base_url)
    monkeypatch.setenv("CLARION_CLICKSEND_USERNAME", handle.state.config.username)
    monkeypatch.setenv("CLARION_CLICKSEND_API_KEY", "guard-key")
    reset_settings()
    context.stop()
    try:
        yield handle
    finally:
        context.stop()
        handle.stop()

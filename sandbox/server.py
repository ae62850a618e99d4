"""Running the sandbox: in a background thread (tests, the embedded mode) or in the
foreground (`clarion sandbox`)."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.app import build_app
from sandbox.config import SandboxConfig
from sandbox.state import SandboxState

log = logging.getLogger(__name__)


@dataclass
class SandboxHandle:
    """A sandbox server running in a background thread."""

    base_url: str  # "http://127.0.0.1:PORT/v3"
    root_url: str  # "http://127.0.0.1:PORT"
    state: SandboxState
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _stopped: asyncio.Event = field(repr=False)

    def stop(self) -> None:
        """Stop the server and wait for its thread to end (idempotent)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=30)


async def _start(state: SandboxState, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server = site._server  # the bound port when 0 was asked for
    sockets = getattr(server, "sockets", None) or []
    return runner, int(sockets[0].getsockname()[1]) if sockets else port


def start_in_thread(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> SandboxHandle:
    """Start a sandbox on ``host:port`` (0 = any free port) and return once it listens."""
    state = SandboxState(config)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    result: dict[str, object] = {}

    async def main() -> None:
        stopped = asyncio.Event()
        try:
            runner, bound = await _start(state, host, port)
        except OSError as exc:
            result["error"] = exc
            ready.set()
            return
        result.update(port=bound, stopped=stopped)
        ready.set()
        await stopped.wait()
        await runner.cleanup()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(main(),), name="sandbox", daemon=True
    )
    thread.start()
    ready.wait(timeout=30)
    if "error" in result or "port" not in result:
        thread.join(timeout=5)
        raise RuntimeError(f"sandbox could not listen on {host}:{port}: {result.get('error')}")
    root = f"http://{host}:{result['port']}"
    stopped = result["stopped"]
    assert isinstance(stopped, asyncio.Event)
    return SandboxHandle(f"{root}/v3", root, state, loop, thread, stopped)


def serve_forever(config: SandboxConfig, host: str, port: int) -> None:
    """Serve in the foreground until interrupted."""
    web.run_app(build_app(SandboxState(config)), host=host, port=port, access_log=None, print=None)

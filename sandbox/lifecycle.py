"""The background loop: sends scheduled messages when due, settles receipts after the
configured delay, and pushes receipts to the receipt URL (form-encoded, retried on non-200)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from sandbox import render
from sandbox.messaging import STATE_KEY
from sandbox.records import Receipt
from sandbox.state import SandboxState

log = logging.getLogger(__name__)
TICK_SECONDS = 0.05
PUSH_CONCURRENCY = 16


def _due_pushes(state: SandboxState) -> list[tuple[int, Receipt]]:
    """Take the pushes whose time has come off the queue."""
    now = time.monotonic()
    due: list[tuple[int, Receipt]] = []
    with state.lock:
        waiting = []
        while state.push_queue:
            when, attempts, receipt = state.push_queue.popleft()
            (
                due.append((attempts, receipt))
                if when <= now
                else waiting.append((when, attempts, receipt))
            )
        state.push_queue.extend(waiting)
    return due


async def _push(session: aiohttp.ClientSession, url: str, receipt: Receipt) -> bool:
    try:
        async with session.post(url, data=render.receipt_form(receipt)) as answer:
            return answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def push_receipts(state: SandboxState, session: aiohttp.ClientSession) -> None:
    """Push due receipts; failed ones wait receipt_retry_seconds, up to receipt_max_attempts."""
    url = state.config.receipt_url
    due = _due_pushes(state)
    if not url or not due:
        return
    limit = asyncio.Semaphore(PUSH_CONCURRENCY)

    async def one(attempts: int, receipt: Receipt) -> None:
        async with limit:
            delivered = await _push(session, url, receipt)
        with state.lock:
            if delivered:
                receipt.pushed = True
            elif attempts + 1 < state.config.receipt_max_attempts:
                retry_at = time.monotonic() + state.config.receipt_retry_seconds
                state.push_queue.append((retry_at, attempts + 1, receipt))

    await asyncio.gather(*(one(a, r) for a, r in due))


async def run_loop(state: SandboxState) -> None:
    """Tick until cancelled."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            try:
                state.process_due()
                await push_receipts(state, session)
            except Exception:  # the loop must outlive one bad tick
                log.exception("sandbox background tick failed")
            await asyncio.sleep(TICK_SECONDS)


async def background(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context running the loop for the app's lifetime."""
    task = asyncio.create_task(run_loop(app[STATE_KEY]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

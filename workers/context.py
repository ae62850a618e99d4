"""The worker context: what a worker process builds once at start-up and its tasks use.

One ``WorkerContext`` per worker process holds the session factory, the provider clients
(each request under the account's rate limit) and the limiter, and the dispatcher built on
them. Celery tasks take it from ``current()`` and pass its parts to plain functions, which
are tested without Celery. It is built at start-up: in each prefork child by Celery's
``worker_process_init`` (``workers.app``), after the fork, because an HTTP connection pool
or a Redis connection must not be shared across one; by the embedded runtime for its
in-process worker. The rest of this module builds the same things from the settings for
callers outside a worker (the CLI, the API, cancels).
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy.orm import Session, sessionmaker

from campaigns.cancel import CancelReport, cancel_at_provider
from campaigns.db import session_factory, session_scope
from clicksend.client import ClickSendClient
from clicksend.skillboss import SkillBossClient
from config.settings import Settings, get_settings
from workers.dispatch import Dispatcher
from workers.gates import LimiterGate
from workers.metrics import MeteredLimiter
from workers.ratelimit import RateLimiter, limiter_from_settings

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """One worker process's long-lived objects."""

    settings: Settings
    sessions: sessionmaker[Session]
    limiter: RateLimiter
    # Every request other than a send takes its turn under the account's limit (sends
    # wait on the limiter themselves, in the dispatcher, to give a batch back when the
    # wait is long).
    lookups: ClickSendClient
    # Receipt polls use only capacity no send is waiting for.
    spare: ClickSendClient
    dispatcher: Dispatcher
    hub: SkillBossClient | None = None  # prelude/notify-send through the SkillBoss hub
    pid: int = field(default_factory=os.getpid)

    def session(self) -> AbstractContextManager[Session]:
        """A session that commits on success and rolls back on error."""
        return session_scope(self.settings.database_url)

    def close(self) -> None:
        self.dispatcher.client.close()  # the gated clients share its connection pool
        if self.hub is not None:
            self.hub.close()


def build_context(settings: Settings) -> WorkerContext:
    client = provider_client(settings)
    limiter = MeteredLimiter(account_limiter(settings))
    hub = None
    if settings.skillboss_api_key.get_secret_value():
        hub = SkillBossClient(
            settings.skillboss_base_url,
            settings.skillboss_api_key.get_secret_value(),
            timeout=settings.http_timeout_seconds,
        )
    sessions = session_factory(settings.database_url)
    lookups = client.gated(LimiterGate(limiter))
    dispatcher = Dispatcher(
        settings=settings,
        client=client,
        limiter=limiter,
        hub=hub,
        history_client=lookups,
        sessions=sessions,
    )
    return WorkerContext(
        settings=settings,
        sessions=sessions,
        limiter=limiter,
        lookups=lookups,
        spare=client.gated(LimiterGate(limiter, spare=True)),
        dispatcher=dispatcher,
        hub=hub,
    )


_process: WorkerContext | None = None


def start(settings: Settings | None = None) -> WorkerContext:
    """Build this process's context (replacing an earlier one built in this process)."""
    global _process
    stop()
    _process = build_context(settings or get_settings())
    return _process


def stop() -> None:
    """Close this process's context. One inherited across a fork is dropped unclosed:
    its connections belong to the parent."""
    global _process
    if _process is not None and _process.pid == os.getpid():
        _process.close()
    _process = None


def current() -> WorkerContext:
    """This process's context, for the Celery tasks. A worker started some other way
    (e.g. ``celery worker --pool solo``) builds it at its first task."""
    if _process is None or _process.pid != os.getpid():
        log.debug("worker context built at the first task")
        return start()
    return _process


def account_name(settings: Settings) -> str:
    """The rate-limit account: provider and username, never the key."""
    _, username, _ = settings.provider_credentials()
    return f"{settings.provider}:{username or 'hub'}"


def provider_client(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> ClickSendClient:
    """The client for ``settings.provider``: clicksend or sandbox (Basic auth), skillboss.
    The client itself takes plain arguments; this is where the settings are read."""
    timeout = settings.http_timeout_seconds
    if settings.provider == "skillboss":
        key = settings.skillboss_api_key.get_secret_value()
        return ClickSendClient.skillboss(
            settings.skillboss_base_url, key, timeout=timeout, transport=transport
        )
    base_url, username, api_key = settings.provider_credentials()
    return ClickSendClient(base_url, username, api_key, timeout=timeout, transport=transport)


def account_limiter(settings: Settings) -> RateLimiter:
    """The rate limit of the configured provider account (shared through Redis if set)."""
    return limiter_from_settings(settings, account_name(settings))


def gated_client(settings: Settings) -> ClickSendClient:
    """The configured provider client with every request under the account's limit, for
    callers outside a worker (the CLI, cancels)."""
    return provider_client(settings).gated(LimiterGate(account_limiter(settings)))


def cancel_campaign_at_provider(
    settings: Settings, campaign_id: int, *, now: datetime | None = None, one_by_one: bool = False
) -> CancelReport:
    """``cancel_at_provider`` with the configured provider client (under the account's
    shared rate limit) and database."""
    with gated_client(settings) as client, session_scope(settings.database_url) as session:
        return cancel_at_provider(session, client, campaign_id, now=now, one_by_one=one_by_one)


def limiter_stats(settings: Settings) -> dict[str, float] | None:
    """The account limiter's state (adaptive factor, block, 429s): from Redis when it is
    shared, else from this process's worker (the embedded mode); None when neither."""
    if settings.redis_url:
        return account_limiter(settings).stats()
    ctx = _process if _process is not None and _process.pid == os.getpid() else None
    return ctx.limiter.stats() if ctx is not None else None

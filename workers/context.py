"""Per-process objects a worker reuses across tasks: the provider client, the limiter.

Built lazily and keyed by pid, because prefork workers fork after import and an HTTP
connection pool or Redis connection must not be shared across a fork.
"""

from __future__ import annotations

import os
from datetime import datetime

import httpx

from campaigns.cancel import CancelReport, cancel_at_provider
from campaigns.db import session_scope
from clicksend.client import ClickSendClient
from clicksend.skillboss import SkillBossClient
from config.settings import Settings, get_settings
from workers.dispatch import Dispatcher
from workers.gates import LimiterGate
from workers.metrics import MeteredLimiter
from workers.ratelimit import RateLimiter, limiter_from_settings

_cache: dict[int, Dispatcher] = {}


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


def build_dispatcher(settings: Settings) -> Dispatcher:
    client = provider_client(settings)
    limiter = MeteredLimiter(account_limiter(settings))
    hub = None
    if settings.skillboss_api_key.get_secret_value():
        hub = SkillBossClient(
            settings.skillboss_base_url,
            settings.skillboss_api_key.get_secret_value(),
            timeout=settings.http_timeout_seconds,
        )
    return Dispatcher(settings=settings, client=client, limiter=limiter, hub=hub)


def get_dispatcher() -> Dispatcher:
    pid = os.getpid()
    if pid not in _cache:
        _cache.clear()
        _cache[pid] = build_dispatcher(get_settings())
    return _cache[pid]


def reset() -> None:
    """Forget cached objects (after the settings changed)."""
    for dispatcher in _cache.values():
        dispatcher.client.close()
        if dispatcher.hub is not None:
            dispatcher.hub.close()
    _cache.clear()


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
    dispatcher = _cache.get(os.getpid())
    return dispatcher.limiter.stats() if dispatcher is not None else None

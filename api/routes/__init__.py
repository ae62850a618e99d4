"""The API's routers, mounted under /api/v1 behind the bearer token."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import campaigns, guard, lists, messages, misc, suppressions

ROUTERS: list[APIRouter] = [
    campaigns.router,
    guard.router,
    lists.router,
    suppressions.router,
    messages.router,
    misc.router,
]

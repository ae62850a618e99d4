"""Bearer-token authentication for every endpoint but /health and the webhooks."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.settings import Settings

# auto_error=False: a missing header is our 401 (with our JSON error), not Starlette's 403.
_bearer = HTTPBearer(auto_error=False, description="A token from CLARION_API_TOKENS")


def token_matches(given: str, tokens: list[str]) -> bool:
    """Compare against every configured token in constant time, and compare them all,
    so the answer's timing tells nothing about which token (or prefix) came close."""
    given_b = given.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given_b, token.encode())
    return matched


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def require_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
) -> None:
    tokens = settings_of(request).api_token_list()
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status_code=401,
            detail="missing token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not tokens:
        raise HTTPException(
            status_code=401,
            detail="no API token is configured: set CLARION_API_TOKENS",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token_matches(credentials.credentials, tokens):
        raise HTTPException(
            status_code=401, detail="invalid token", headers={"WWW-Authenticate": "Bearer"}
        )

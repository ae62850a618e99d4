"""The dashboard's login: the same tokens as the API (``CLARION_API_TOKENS``), typed once
into a form; the browser then carries a cookie.

The cookie holds an HMAC of the token, not the token: a leaked cookie does not give the
bearer token for the API, and rotating the token out ends the sessions made with it.
"""

from __future__ import annotations

import hashlib
import hmac

COOKIE = "clarion_session"
_PURPOSE = b"clarion dashboard session v1"


def session_value(token: str) -> str:
    return hmac.new(token.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def session_ok(cookie: str | None, tokens: list[str]) -> bool:
    if not cookie:
        return False
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(cookie.encode(), session_value(token).encode())
    return matched

"""The exceptions the client raises, one class per thing a caller does differently.

A caller decides between "retry", "look up before retrying", "pause" and "give up":

- ``ConnectionFailedError``: nothing left this machine; safe to retry.
- ``OutcomeUnknownError`` (the category: ``ServerError`` for a 5xx, ``NoAnswerError`` for a
  timeout after sending, a dropped connection or an unreadable answer): the request may have
  been acted on; look the messages up (by ``custom_string``) before sending them again.
- ``RateLimitedError``: wait ``retry_after`` seconds, then retry.
- ``AuthenticationError`` / ``ForbiddenError``: the account cannot do this; stop.
- ``BadRequestError`` / ``NotFoundError``: this request is wrong; do not repeat it.
- ``HeldBackError``: the client's request gate (the caller's rate limit) did not let the
  request go; nothing was sent.

Messages name the method and path, the HTTP status and ClickSend's own ``response_code``
and ``response_msg``; never credentials.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

# An x-ratelimit-reset above this is an epoch time, below it a number of seconds.
_EPOCH_THRESHOLD = 1_000_000_000


class ClickSendError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        response_code: str | None = None,
        response_msg: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response_code = response_code
        self.response_msg = response_msg


class AuthenticationError(ClickSendError):
    """401: the username or API key is wrong."""


class ForbiddenError(ClickSendError):
    """403: the account may not do this (or the resource is not the account's)."""


class NotFoundError(ClickSendError):
    """404: no such resource."""


class BadRequestError(ClickSendError):
    """400 and every other 4xx without a class of its own: the request itself is wrong."""


class RateLimitedError(ClickSendError):
    """429: too many requests; ``retry_after`` is how long to wait, in seconds, if known."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        response_code: str | None = None,
        response_msg: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            response_code=response_code,
            response_msg=response_msg,
        )
        self.retry_after = retry_after


class OutcomeUnknownError(ClickSendError):
    """The request may have been acted on: callers catch this category and look the
    messages up before sending again, whichever way the answer was lost."""


class ServerError(OutcomeUnknownError):
    """5xx: the service failed; for a send the outcome is unknown."""


class NoAnswerError(OutcomeUnknownError):
    """The request left but no usable answer came back (read timeout, connection lost,
    a success status with a body that is not JSON)."""


class ConnectionFailedError(ClickSendError):
    """No connection was made, so nothing was sent: safe to retry. (Not named like
    httpx's ``ConnectError``, which this wraps, so the two are never confused.)"""


class HeldBackError(ClickSendError):
    """The request gate held the request back (no turn under the caller's rate limit, or
    the limit could not be asked): nothing was sent; try again later."""


def class_for_status(status: int) -> type[ClickSendError]:
    """The exception class for a non-2xx HTTP status."""
    special: dict[int, type[ClickSendError]] = {
        401: AuthenticationError,
        403: ForbiddenError,
        404: NotFoundError,
        429: RateLimitedError,
    }
    if status in special:
        return special[status]
    if status >= 500:
        return ServerError
    return BadRequestError


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After``, else ``ratelimit-reset``, else ``x-ratelimit-reset``.

    ``Retry-After`` may be seconds or an HTTP date; ``ratelimit-reset`` is seconds;
    ``x-ratelimit-reset`` is seconds or, when it looks like one, an epoch time.
    """
    now = time.time() if now is None else now
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after", "ratelimit-reset", "x-ratelimit-reset"):
        raw = lowered.get(name)
        if raw is None:
            continue
        seconds = _seconds_from(raw.strip(), now)
        if seconds is not None:
            return seconds
    return None


def _seconds_from(raw: str, now: float) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - now)
        except (TypeError, ValueError):
            return None
    if value != value or value < 0:  # NaN or negative: unusable
        return None
    if value > _EPOCH_THRESHOLD:
        return max(0.0, value - now)
    return value

"""A user's mistake in one line: a bad CLARION_* value, a database that is missing or out
of reach, a provider that refuses or cannot be reached. No traceback unless --debug."""

from __future__ import annotations

from typing import Any

from config.logging import redact

# The services the settings point at, by the exception that says one is out of reach.
_UNREACHABLE = {
    "redis.exceptions": ("CLARION_REDIS_URL", "cannot reach Redis"),
    "kombu.exceptions": ("CLARION_BROKER_URL", "cannot reach the broker"),
}


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    # psycopg: 'connection failed: connection to server at ... failed: FATAL:  database "x"
    # does not exist' - the part after the last "failed:" / "FATAL:" says it best.
    for marker in ("FATAL:", "failed:"):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return redact(" ".join(text.split()))


def _setting_errors(exc: Any) -> str:
    parts = []
    for error in exc.errors():
        if not error.get("loc"):
            # A rule across several variables (config.settings) names them itself.
            parts.append(str(error.get("msg", "invalid")).removeprefix("Value error, "))
            continue
        name = "CLARION_" + "_".join(str(p) for p in error.get("loc", ())).upper()
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
        parts.append(f"{name}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(parts)


def user_error(exc: BaseException) -> str | None:
    """The one line for an exception caused by configuration or the services, or None for
    a defect (which keeps its traceback)."""
    from pydantic import ValidationError
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return _setting_errors(exc)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return f"CLARION_DATABASE_URL: cannot use the database: {_first_line(exc)}"
    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError):
        return f"CLARION_DATABASE_URL: not a usable database URL: {_first_line(exc)}"
    try:
        from clicksend.errors import ClickSendError
    except ImportError:  # pragma: no cover - the package is always there
        ClickSendError = ()  # type: ignore[assignment,misc]
    if isinstance(exc, ClickSendError):
        return f"provider: {redact(str(exc))}"
    for module, (variable, what) in _UNREACHABLE.items():
        if type(exc).__module__.startswith(module):
            return f"{variable}: {what}: {_first_line(exc)}"
    return None

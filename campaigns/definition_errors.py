"""Definition errors: one line per problem, each starting with the field's path
(``message.bdy: unknown key``), formatted from pydantic's validation errors."""

from __future__ import annotations

from pydantic import ValidationError


class DefinitionError(ValueError):
    """An invalid definition. ``errors`` holds one line per problem, each naming the
    field path ("audience.lists: field required")."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid campaign definition: " + "; ".join(errors))
        self.errors = errors


class Problems(ValueError):
    """Raised by cross-field validators: (path below the model, problem) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {text}" for path, text in problems))
        self.problems = problems


def raise_if(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise Problems(problems)


def _path(loc: tuple[int | str, ...], below: str = "") -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic marks a bad dict key; the key itself names it
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if below:
        text = f"{text}.{below}" if text else below
    return text or "(top level)"


def error_lines(exc: ValidationError) -> list[str]:
    """One line per problem of a failed validation, the field's path first."""
    lines: list[str] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            lines.extend(f"{_path(loc, below)}: {text}" for below, text in cause.problems)
            continue
        if err["type"] == "missing":
            text = "field required"
        elif err["type"] == "extra_forbidden":
            text = "unknown key"
        else:
            text = str(cause) if isinstance(cause, Exception) else err["msg"]
            text = text[0].lower() + text[1:]
            value = err.get("input")
            if isinstance(value, str | int | float) and err["type"] != "value_error":
                text += f" (got {value!r:.60})"
        lines.append(f"{_path(loc)}: {text}")
    return lines

"""Message templates with ClickSend-style placeholders: ``Hi {first_name}``.

A placeholder is ``{name}`` where the name is an identifier (ASCII letters, digits and
underscores, not starting with a digit). Everything else is literal text: ``{0}``,
``{a[0]}``, ``{0.__class__}``, a lone ``{`` or ``}`` and ``{{`` are sent as written.
Templates are never handed to ``str.format``, so a contact's data or a template cannot
reach Python attributes.

A template is compiled once (into literal text and field names) and the compiled form
renders each recipient with a join, since it runs once per recipient.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

Renderer = Callable[[Mapping[str, Any], Mapping[str, str]], str]


class MissingField(KeyError):
    """A placeholder whose field is missing or empty for this recipient and has no default."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field

    def __str__(self) -> str:
        return f"missing field {self.field}"


def placeholders(body: str) -> set[str]:
    """The field names a template uses."""
    return set(PLACEHOLDER.findall(body))


def _value(name: str, fields: Mapping[str, Any], defaults: Mapping[str, str]) -> str:
    value = fields.get(name)
    text = "" if value is None else str(value)
    if text.strip():
        return text
    if name in defaults:
        return defaults[name]
    raise MissingField(name)


class _Compiled:
    """A template split into literal text and field names, rendered by a join."""

    __slots__ = ("literals", "names")

    def __init__(self, body: str) -> None:
        # re.split with one group alternates: literal, name, literal, ..., literal.
        pieces = PLACEHOLDER.split(body)
        self.literals: tuple[str, ...] = tuple(pieces[0::2])
        self.names: tuple[str, ...] = tuple(pieces[1::2])

    def __call__(self, fields: Mapping[str, Any], defaults: Mapping[str, str] | None = None) -> str:
        defaults = defaults or {}
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            out.append(_value(name, fields, defaults))
            out.append(literal)
        return "".join(out)


@lru_cache(maxsize=256)
def compile_template(body: str) -> Renderer:
    """A renderer ``(fields, defaults) -> text`` for ``body``; raises MissingField."""
    return _Compiled(body)


def template_parts(renderer: object) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """A compiled template's literal texts and field names (``literals[i]`` precedes
    ``names[i]``; one more literal than names), for rendering elsewhere (in SQL); None for
    a renderer that is not a compiled template."""
    if isinstance(renderer, _Compiled):
        return renderer.literals, renderer.names
    return None


def render(body: str, fields: Mapping[str, Any], defaults: Mapping[str, str] | None = None) -> str:
    """``body`` with each ``{field}`` replaced by the recipient's value, or the declared
    default when the value is missing or blank; MissingField when there is neither."""
    return compile_template(body)(fields, defaults or {})


def is_identifier(name: str) -> bool:
    """Whether ``name`` can be used as a placeholder (``{name}``)."""
    return IDENTIFIER.match(name) is not None

"""Reading a definition's source: YAML or JSON text, a file, or a mapping.

YAML is read with YAML 1.2 scalars: ``20:00`` stays a string (YAML 1.1 would read it as
the number 1200), only true/false are booleans, and a key given twice is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from campaigns.definition_errors import DefinitionError


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_12_scalars() -> None:
    bool_tag, int_tag, float_tag = (f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float"))
    _Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (bool_tag, int_tag, float_tag)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _Loader.add_implicit_resolver(
        bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    _Loader.add_implicit_resolver(
        int_tag, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
    )
    _Loader.add_implicit_resolver(
        float_tag,
        re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
        list("-+0123456789."),
    )


_yaml_12_scalars()


def _parse_text(text: str, origin: str) -> Any:
    try:
        if text.lstrip().startswith("{"):
            return json.loads(text)
        return yaml.load(text, Loader=_Loader)  # _Loader derives from SafeLoader
    except json.JSONDecodeError as exc:
        raise DefinitionError([f"{origin}: invalid JSON at line {exc.lineno}: {exc.msg}"]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError([f"{origin}: invalid YAML{line}: {problem}"]) from None


def _is_file(text: str) -> bool:
    if "\n" in text or text.lstrip().startswith("{"):
        return False
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # too long for a file name, or a NUL in it
        return False


def read_source(source: str | Path | Mapping[str, Any]) -> Any:
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, Path) or _is_file(source):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionError([f"{path}: cannot read: {exc}"]) from None
        return _parse_text(text, str(path))
    return _parse_text(source, "definition")

"""Layers import one way (docs/architecture.md, "Layers"): a module may import only the
packages below its own. The check reads every module's imports, including those inside
functions and under ``TYPE_CHECKING``, so a shortcut upwards fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each package and the project packages it may import, lowest layer first. The sandbox is
# an independent instrument: it imports none of the product and the product names it only
# where the CLI and the embedded runtime start it (SANDBOX_STARTERS).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "config": frozenset(),
    "clicksend": frozenset(),
    "sandbox": frozenset(),
    "campaigns": frozenset({"clicksend"}),
    "scheduler": frozenset({"campaigns", "clicksend", "config"}),
    "workers": frozenset({"scheduler", "campaigns", "clicksend", "config"}),
    "api": frozenset({"workers", "scheduler", "campaigns", "clicksend", "config"}),
    "clarion": frozenset(
        {"api", "workers", "scheduler", "campaigns", "clicksend", "config", "sandbox"}
    ),
}
SANDBOX_STARTERS = {"clarion/cli.py", "clarion/embedded.py"}
PROJECT = set(MAY_IMPORT) | {"bench", "tests"}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(project package, line) of every absolute import in the module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT:
                found.add((top, node.lineno))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_package_imports_only_lower_layers(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in modules(package)
        for top, line in sorted(imported_packages(path))
        if top not in allowed
    ]
    assert wrong == []


def test_only_the_cli_and_the_embedded_runtime_name_the_sandbox() -> None:
    naming = {
        str(path.relative_to(ROOT))
        for package in MAY_IMPORT
        if package != "sandbox"
        for path in modules(package)
        if any(top == "sandbox" for top, _ in imported_packages(path))
    }
    assert naming <= SANDBOX_STARTERS


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from workers.context import get_settings\n")
    assert imported_packages(module) == {("workers", 2)}


def test_tests_import_no_benchmark_code() -> None:
    # Benchmarks change for measurement's sake; the tests' helpers must not move with them.
    importing = [
        str(path.relative_to(ROOT))
        for path in modules("tests")
        if any(top == "bench" for top, _ in imported_packages(path))
    ]
    assert importing == []

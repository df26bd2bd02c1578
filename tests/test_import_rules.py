"""The house rules of DESIGN.md, checked on the source: the legacy core knows no plugins,
the engine does not import its surfaces (admin, API, CLI), and plugins import only the SDK."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import BUNDLED, ROOT

SURFACES = ("stonks_plugins.admin", "stonks_plugins.api", "stonks_plugins.management")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module or ""]).rstrip(".")
            else:
                yield node.lineno, node.module or ""


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{f.relative_to(ROOT)}:{line} imports {name}"
        for f in files
        for line, name in _imports(f)
        if name.startswith(forbidden)
    ]


def test_core_imports_nothing_from_the_plugin_system() -> None:
    files = sorted((ROOT / "stonks_overwatch" / "core").rglob("*.py"))
    assert files
    assert _violations(files, ("stonks_plugins",)) == []


def test_engine_does_not_import_its_surfaces() -> None:
    pkg = ROOT / "stonks_plugins"
    files = [
        f
        for f in sorted(pkg.rglob("*.py"))
        if f.relative_to(pkg).parts[0] not in ("admin.py", "api", "management", "migrations")
    ]
    assert _violations(files, SURFACES) == []


def test_bundled_plugins_import_only_the_sdk_from_the_project() -> None:
    files = sorted(BUNDLED.rglob("*.py"))
    assert files
    bad = [
        v
        for v in _violations(files, ("stonks_plugins", "stonks_overwatch"))
        if not v.endswith("imports stonks_plugins.sdk")
    ]
    assert bad == []

"""Tests of the bundled broker plugins' own code (export parsing, totals, health) and of their
distribution as wheels.

Plugin packages are imported from their folders under a private module name, the way the
host mounts a folder plugin, so their relative imports work and nothing of the repository
lands on ``sys.path``; no bytecode is written into ``plugins/``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

from tests.conftest import BUNDLED


def load_plugin(folder: str, package: str) -> SimpleNamespace:
    """Every module of ``plugins/<folder>/<package>`` as attributes of one namespace
    (``load_plugin("degiro-broker", "degiro").services``)."""
    name = f"_stonks_plugin_under_test_{package}"
    root = BUNDLED / folder / package
    modules: dict[str, ModuleType] = {}
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                name, root / "__init__.py", submodule_search_locations=[str(root)]
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        for path in sorted(root.glob("*.py")):
            if path.stem != "__init__":
                modules[path.stem] = importlib.import_module(f"{name}.{path.stem}")
    finally:
        sys.dont_write_bytecode = previous
    return SimpleNamespace(root=root.parent, **modules)


def manifest_of(folder: str):  # type: ignore[no-untyped-def]
    from stonks_plugins.manifest.validation import load_manifest_file

    return load_manifest_file(BUNDLED / folder / "plugin_manifest.json")


def write(path: Path, lines: list[str], *, encoding: str = "utf-8", bom: bool = False) -> Path:
    """A CSV file from its lines, exactly as given (line N of the file is ``lines[N-1]``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "\n".join(lines) + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode(encoding))
    return path


def line_of(lines: list[str], fragment: str) -> int:
    """The 1-based line number of the one line containing ``fragment``."""
    found = [i + 1 for i, line in enumerate(lines) if fragment in line]
    assert len(found) == 1, (fragment, found)
    return found[0]

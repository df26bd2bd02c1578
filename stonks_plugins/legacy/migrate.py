"""``plugins migrate-legacy NAME --out DIR``: turn a legacy broker into a plugin folder.

The source files of the modules that define the broker's config and service classes are
copied into a package of the folder; imports of the legacy core are rewritten to
``stonks_plugins.sdk`` when every imported name exists there, and imports between the
copied modules become relative (a directory plugin is mounted as its own package). The
manifest is the adapter's generated one, renamed and pointing at the copies.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import sdk
from ..errors import StonksPluginsError
from ..manifest.validation import MANIFEST_FILENAME
from .broker_adapter import LegacyBrokerAdapter, LegacyRegistration
from .serving import legacy_serving

PACKAGE = "broker"
CORE_PREFIX = "stonks_overwatch.core"


class MigrationError(StonksPluginsError):
    """Why a folder could not be written (unknown broker, folder exists...)."""


@dataclass
class MigrationResult:
    name: str
    legacy_name: str
    path: Path
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "legacy_name": self.legacy_name,
            "path": str(self.path),
            "files": self.files,
            "warnings": self.warnings,
        }


def _registration(name: str) -> LegacyRegistration:
    saved = legacy_serving.saved_now()
    if name not in saved:
        known = ", ".join(sorted(saved)) or "none"
        raise MigrationError(f"no legacy broker named '{name}' (legacy brokers: {known})")
    return saved[name]


def _rewrite(source: str, local: dict[str, str], warnings: list[str], module: str) -> str:
    """Rewrite ``from X import a, b`` lines: copied modules become relative, the legacy
    core becomes ``stonks_plugins.sdk`` when it exports every name."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in sorted(
        (n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)),
        key=lambda n: n.lineno,
        reverse=True,
    ):
        mod = node.module or ""
        if node.level or not mod:
            continue
        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
        if mod in local:
            new = f"from .{local[mod]} import {names}\n"
        elif mod.startswith(CORE_PREFIX):
            if all(hasattr(sdk, a.name) for a in node.names):
                new = f"from stonks_plugins.sdk import {names}\n"
            else:
                warnings.append(
                    f"{module}: 'from {mod} import ...' kept: not every name is in "
                    "stonks_plugins.sdk (a plugin should import only the sdk)"
                )
                continue
        else:
            continue
        indent = re.match(r"\s*", lines[node.lineno - 1]).group(0)  # type: ignore[union-attr]
        end = node.end_lineno or node.lineno
        lines[node.lineno - 1 : end] = [indent + new]
    return "".join(lines)


def migrate_legacy(name: str, out: Path, new_name: str | None = None) -> MigrationResult:
    reg = _registration(name)
    plugin_name = new_name or f"{name}-plugin"
    if out.exists() and any(out.iterdir()):
        raise MigrationError(f"{out} exists and is not empty")
    adapter = LegacyBrokerAdapter(reg)
    manifest = adapter.create_plugin_manifest()
    classes = [c for c in [reg.config_class, *reg.services.values()] if isinstance(c, type)]
    modules = sorted({c.__module__ for c in classes})
    local = {m: m.rsplit(".", 1)[-1] for m in modules}
    result = MigrationResult(plugin_name, name, out)
    pkg = out / PACKAGE
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(f'"""The legacy broker \'{name}\', as a plugin."""\n')
    result.files.append(f"{PACKAGE}/__init__.py")
    for module in modules:
        source = inspect.getsource(sys.modules[module])
        target = pkg / f"{local[module]}.py"
        target.write_text(_rewrite(source, local, result.warnings, module))
        result.files.append(f"{PACKAGE}/{target.name}")

    def ref(cls: Any) -> str:
        return f"{PACKAGE}.{local[cls.__module__]}.{cls.__qualname__}"

    # The version stays the legacy broker's (the generated manifest's): the same code at the
    # same release, so taking the legacy name over changes no version an operator sees.
    manifest["plugin"].update(
        name=plugin_name,
        display_name=f"{name} (migrated from the legacy registry)",
        description=f"The legacy broker '{name}', converted by 'plugins migrate-legacy'.",
    )
    manifest["services"] = {
        t.value: ref(p) for t, p in sorted(reg.services.items()) if isinstance(p, type)
    }
    if isinstance(reg.config_class, type):
        manifest["configuration"]["config_class"] = ref(reg.config_class)
    (out / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=2) + "\n")
    result.files.insert(0, MANIFEST_FILENAME)
    return result

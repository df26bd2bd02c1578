"""``plugins new``: write a new plugin folder that validates, loads, passes the test kit and
shows up in the host with no change to the core.

The files come from templates shipped as package data (``templates/common`` for every type,
``templates/<type>`` on top); ``__package__`` in a path and ``{{token}}`` in a file are
replaced, and a trailing ``.tmpl`` is dropped (it keeps the templates out of linters and test
collection). The manifest is built here rather than templated, so it always follows the
running core (API range, core version) and is checked against the manifest schema before
anything is written.

The folder is written under a hidden temporary name next to the target and renamed into
place, so a host scanning the plugin directory never sees half a plugin.
"""

from __future__ import annotations

import json
import keyword
import re
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from .. import CORE_API_VERSION
from ..compatibility import CORE_DISTRIBUTION, core_version
from ..discovery.entry_points import GROUPS
from ..errors import StonksPluginsError
from ..manifest.model import PLUGIN_NAME_PATTERN, ecma_pattern
from ..manifest.validation import MANIFEST_FILENAME, validate_manifest

PLUGIN_TYPES = ("broker", "aggregator", "view", "middleware")
ENTRY_POINT_GROUPS = {plugin_type: group for group, plugin_type in GROUPS.items()}
BASE_CLASSES = {
    "broker": "BaseBrokerPlugin",
    "aggregator": "BaseAggregatorPlugin",
    "view": "BaseViewPlugin",
    "middleware": "BaseMiddlewarePlugin",
}
RESERVED_PACKAGES = frozenset({"tests", "test", "docs", "stonks_plugins", "stonks_overwatch"})
"""Package names a plugin must not take: its own tests folder, and the host's packages."""

_NAME_RE = re.compile(ecma_pattern(PLUGIN_NAME_PATTERN))
_TOKEN_RE = re.compile(r"\{\{(\w+)\}\}")
USAGE = 2
"""Exit status for a bad name or type (the CLI's 'bad usage')."""
FAILED = 1
"""Exit status when the command ran and could not write the plugin (the folder exists...)."""


class ScaffoldError(StonksPluginsError):
    """Why no plugin was written; ``exit_code`` is what the CLI exits with."""

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Names:
    """Every name derived from the plugin's name."""

    name: str
    package: str
    class_prefix: str
    display_name: str
    distribution: str

    @classmethod
    def of(cls, name: str) -> Names:
        parts = [p for p in re.split(r"[^0-9a-zA-Z]+", name) if p]
        prefix = "".join(p[:1].upper() + p[1:] for p in parts)
        if prefix[:1].isdigit():
            prefix = "Plugin" + prefix
        return cls(
            name=name,
            package=package_name(name),
            class_prefix=prefix,
            display_name=" ".join(p[:1].upper() + p[1:] for p in parts),
            distribution=f"stonks-{name}",
        )


def package_name(name: str) -> str:
    """The plugin's Python package: the name with ``-`` and ``.`` as ``_``; prefixed when it
    would start with a digit, suffixed with ``_plugin`` when it would be a keyword, a
    standard-library module or a reserved name (installed as a wheel, the package is
    importable by its own name, so it must not shadow anything)."""
    pkg = re.sub(r"[^0-9a-z_]", "_", name.lower())
    if pkg[:1].isdigit():
        pkg = "plugin_" + pkg
    if keyword.iskeyword(pkg) or pkg in sys.stdlib_module_names or pkg in RESERVED_PACKAGES:
        pkg += "_plugin"
    return pkg


def check_name(name: str) -> None:
    if not _NAME_RE.search(name):
        raise ScaffoldError(
            f"invalid plugin name {name!r}: use 1-64 characters, lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (pattern "
            f"{PLUGIN_NAME_PATTERN}), e.g. 'acme-broker'",
            USAGE,
        )


def check_type(plugin_type: str) -> None:
    if plugin_type not in PLUGIN_TYPES:
        raise ScaffoldError(
            f"unknown plugin type {plugin_type!r}: expected one of {', '.join(PLUGIN_TYPES)}",
            USAGE,
        )


@dataclass
class ScaffoldResult:
    name: str
    plugin_type: str
    path: Path
    package: str
    distribution: str
    entry_point_group: str
    files: list[str] = field(default_factory=list)
    """Paths written, relative to ``path``, sorted."""
    warnings: list[str] = field(default_factory=list)

    def next_steps(self) -> list[str]:
        steps = [
            "python manage.py plugins validate " + str(self.path),
            "python manage.py plugins sync",
            f"(cd {self.path} && python -m pytest)",
        ]
        if self.plugin_type == "broker":
            steps.append("open http://127.0.0.1:8000/ to see the sample positions")
        steps.append("read docs/tutorial-new-broker.md to make it read your broker's exports")
        return steps

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.plugin_type,
            "path": str(self.path),
            "package": self.package,
            "distribution": self.distribution,
            "entry_point_group": self.entry_point_group,
            "files": list(self.files),
            "warnings": list(self.warnings),
            "next_steps": self.next_steps(),
        }


# -- the manifest ------------------------------------------------------------------------------


def _next_major(version: str) -> str:
    return f"{int(version.split('.')[0]) + 1}.0.0"


def config_schema(plugin_type: str) -> dict[str, Any]:
    """The generated config's JSON Schema, in the seed's ``settings`` section (the config
    system flattens it for the config class)."""
    settings: dict[str, Any] = {}
    if plugin_type == "broker":
        settings["import_folder"] = {
            "type": "string",
            "default": "",
            "description": "Folder holding your exports; empty uses the sample data shipped "
            "with the plugin",
        }
        settings["default_currency"] = {
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "default": "EUR",
            "description": "Currency of rows whose export leaves the currency empty",
        }
    else:
        settings["label"] = {
            "type": "string",
            "default": "",
            "description": "Free text shown with the plugin's output (an example setting)",
        }
    return {
        "type": "object",
        "properties": {"settings": {"type": "object", "properties": settings}},
    }


def build_manifest(names: Names, plugin_type: str) -> dict[str, Any]:
    core = core_version()
    pkg, prefix = names.package, names.class_prefix
    schema = config_schema(plugin_type)
    manifest: dict[str, Any] = {
        "plugin": {
            "name": names.name,
            "version": "0.1.0",
            "type": plugin_type,
            "display_name": names.display_name,
            "description": f"{names.display_name}: a {plugin_type} plugin for Stonks Overwatch",
            "license": "MIT",
        },
        "api": {
            "min_version": CORE_API_VERSION,
            "max_version": _next_major(CORE_API_VERSION),
            "interfaces": [],
        },
        "dependencies": {
            "python": ">=3.11",
            CORE_DISTRIBUTION: f">={core.major}.{core.minor}.0,<{core.major + 1}.0.0",
        },
        "capabilities": {},
        "configuration": {
            "config_class": f"{pkg}.config.{prefix}Config",
            "optional_settings": list(schema["properties"]["settings"]["properties"]),
            "schema": schema,
        },
        "entry_points": {
            "main": f"{pkg}.plugin:{prefix}Plugin",
            "config": f"{pkg}.config:{prefix}Config",
        },
    }
    if plugin_type == "broker":
        manifest["api"]["interfaces"] = [
            "BrokerServiceInterface",
            "PortfolioServiceInterface",
            "TransactionServiceInterface",
        ]
        manifest["capabilities"] = {
            "services": ["portfolio", "transaction"],
            "features": ["historical_data"],
            "supported_currencies": ["EUR"],
        }
        manifest["services"] = {
            "portfolio": f"{pkg}.services.PortfolioService",
            "transaction": f"{pkg}.services.TransactionService",
        }
        # Keep the keys in the seed's order.
        manifest = {
            k: manifest[k]
            for k in (
                "plugin",
                "api",
                "dependencies",
                "capabilities",
                "configuration",
                "services",
                "entry_points",
            )
        }
    else:
        del manifest["api"]["interfaces"]
        del manifest["capabilities"]
    issues = validate_manifest(manifest)
    if issues:  # a bug in this module, not in the user's input
        raise AssertionError("generated manifest is invalid: " + "; ".join(map(str, issues)))
    return manifest


# -- templates ------------------------------------------------------------------------------------


def _templates() -> Traversable:
    return resources.files("stonks_plugins.scaffold").joinpath("templates")


def _walk(node: Traversable, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Traversable]:
    out: dict[tuple[str, ...], Traversable] = {}
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            out.update(_walk(child, (*prefix, child.name)))
        else:
            out[(*prefix, child.name)] = child
    return out


def _target_path(parts: tuple[str, ...], names: Names) -> str:
    out = []
    for part in parts:
        part = part.replace("__package__", names.package)
        if part.endswith(".tmpl"):
            part = part[: -len(".tmpl")]
        if part == "gitignore":
            part = ".gitignore"
        out.append(part)
    return "/".join(out)


def _render(text: str, tokens: dict[str, str], source: str) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in tokens:
            raise AssertionError(f"template {source}: unknown token {{{{{key}}}}}")
        return tokens[key]

    return _TOKEN_RE.sub(sub, text)


def render_files(names: Names, plugin_type: str) -> dict[str, bytes]:
    """``{relative path: content}`` of every file of the new plugin."""
    check_type(plugin_type)
    root = _templates()
    sources = _walk(root.joinpath("common"))
    specific = root.joinpath(plugin_type)
    if specific.is_dir():
        sources.update(_walk(specific))
    tokens = {
        "name": names.name,
        "package": names.package,
        "class_prefix": names.class_prefix,
        "display_name": names.display_name,
        "distribution": names.distribution,
        "type": plugin_type,
        "base_class": BASE_CLASSES[plugin_type],
        "group": ENTRY_POINT_GROUPS[plugin_type],
        "core_distribution": CORE_DISTRIBUTION,
        # Listed as artifacts so a VCS ignore rule can never drop the samples from the wheel.
        "artifacts": (
            f'artifacts = ["{names.package}/data/*.csv"]' if plugin_type == "broker" else ""
        ),
    }
    files: dict[str, bytes] = {}
    for parts, source in sources.items():
        target = _target_path(parts, names)
        data = source.read_bytes()
        if parts[-1].endswith(".tmpl"):
            data = _render(data.decode("utf-8"), tokens, "/".join(parts)).encode("utf-8")
        files[target] = data
    manifest = build_manifest(names, plugin_type)
    files[MANIFEST_FILENAME] = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    return files


# -- writing -------------------------------------------------------------------------------------


def existing_plugin(name: str, plugin_dirs: list[Path]) -> str | None:
    """Where a plugin of this name is already found (installed or in ``plugin_dirs``)."""
    from ..discovery import discover

    try:
        found = discover(plugin_dirs)
    except Exception:  # a broken environment must not stop the scaffold
        return None
    for cand in found.plugins:
        if cand.declared_name == name:
            return cand.location
    return None


def create_plugin(
    name: str,
    plugin_type: str = "broker",
    directory: Path | str = "plugins",
    *,
    force: bool = False,
    plugin_dirs: list[Path] | None = None,
) -> ScaffoldResult:
    """Write plugin ``name`` of ``plugin_type`` as ``directory/name``.

    An existing ``directory/name`` is refused (exit status 1) unless ``force``: then the
    generated files are written over it and every other file in it is left alone.
    ``plugin_dirs`` (the host's) is searched for a plugin that already has the name, which
    is a warning: the two would be reported as duplicates.
    """
    check_name(name)
    check_type(plugin_type)
    names = Names.of(name)
    base = Path(directory).expanduser()
    target = base / name
    if target.exists() and not target.is_dir():
        raise ScaffoldError(f"{target} exists and is not a folder; choose another --dir")
    if target.exists() and not force:
        raise ScaffoldError(
            f"{target} already exists; choose another name or --dir, or pass --force to "
            "write the generated files over it (other files in it are kept)"
        )
    files = render_files(names, plugin_type)
    result = ScaffoldResult(
        name=name,
        plugin_type=plugin_type,
        path=target.resolve(),
        package=names.package,
        distribution=names.distribution,
        entry_point_group=ENTRY_POINT_GROUPS[plugin_type],
        files=sorted(files),
    )
    if plugin_dirs is not None:
        where = existing_plugin(name, plugin_dirs)
        if where is not None and Path(where).resolve() != target.resolve():
            result.warnings.append(
                f"a plugin named '{name}' is already installed at {where}; the host will keep "
                "one of the two and report the other as a duplicate — rename one of them"
            )
    try:
        base.mkdir(parents=True, exist_ok=True)
        if target.exists():
            _write(target, files)
        else:
            # Hidden (discovery skips dot-folders), created with the usual permissions.
            staging = base / f".{name}-{secrets.token_hex(4)}.tmp"
            staging.mkdir()
            try:
                _write(staging, files)
                staging.rename(target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except OSError as exc:
        raise ScaffoldError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return result


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

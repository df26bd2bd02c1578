"""The app labels a plugin's Django app and the host's apps take, read from their source
without importing it: Django refuses to start when two apps share a label, so a clash must be
found before the app is listed in ``INSTALLED_APPS``."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from collections.abc import Iterable
from typing import Any

from ..plugin_files import read_plugin_file

_APPS_SOURCE_LIMIT = 1 << 20
"""Largest ``apps`` module read for its labels; a larger one is refused."""


def _apps_module_file(package_dir: str) -> str | None:
    """The ``apps`` module Django reads an app's ``AppConfig`` from, if the package has one."""
    for candidate in (
        os.path.join(package_dir, "apps.py"),
        os.path.join(package_dir, "apps", "__init__.py"),
    ):
        if os.path.isfile(candidate):
            return candidate
    return None


def _class_labels(tree: ast.Module) -> tuple[set[str], str]:
    """Labels the classes of an ``apps`` module set, as Django would compute them: a class's
    literal ``label``, else the last part of its literal ``name``. A label that is not a
    literal, or one set from outside a class body, cannot be checked before the app is
    imported: that is the fault returned."""
    labels: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found: dict[str, ast.expr | None] = {}
            for stmt in node.body:
                targets: list[ast.expr] = []
                value: ast.expr | None = None
                if isinstance(stmt, ast.Assign):
                    targets, value = stmt.targets, stmt.value
                elif isinstance(stmt, ast.AnnAssign):
                    targets, value = [stmt.target], stmt.value
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in ("label", "name"):
                        found[target.id] = value
            label = found.get("label")
            if "label" in found:
                if not (isinstance(label, ast.Constant) and isinstance(label.value, str)):
                    return labels, (
                        f"class {node.name} sets 'label' to an expression; only a string "
                        "literal can be checked before the app is imported"
                    )
                labels.add(label.value)
            else:
                name = found.get("name")
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    labels.add(name.value.rpartition(".")[2])
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "label" for t in targets):
                return labels, (
                    "it sets a 'label' attribute outside a class body; only a string literal "
                    "in the AppConfig class can be checked before the app is imported"
                )
    return labels, ""


def app_labels(package_dir: str, package: str) -> tuple[frozenset[str], str]:
    """The app labels a plugin's Django app can take, read from its source without running
    it, and a fault (``""`` when none) saying why they cannot be trusted: the package's name
    (Django's default) unless a class of its ``apps`` module names another. Over-approximates
    (every class counts): a label wrongly thought taken only refuses a plugin, one missed
    would stop the site."""
    source_file = _apps_module_file(package_dir)
    labels: set[str] = set()
    if source_file is not None:
        try:
            tree = ast.parse(read_plugin_file(source_file, _APPS_SOURCE_LIMIT), source_file)
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return frozenset(), f"{source_file} cannot be read: {exc}"
        labels, fault = _class_labels(tree)
        if fault:
            return frozenset(labels), f"{source_file}: {fault}"
    labels = labels or {package}
    bad = sorted(label for label in labels if not label.isidentifier())
    if bad:
        return frozenset(labels), (
            f"app label {bad[0]!r} is not a valid Python identifier, which Django requires"
        )
    return frozenset(labels), ""


def _module_file(dotted: str) -> str | None:
    """The source file of module ``dotted``, found without importing anything but its
    top-level package's spec (settings call this before Django is set up)."""
    top, _, rest = dotted.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return spec.origin if spec.origin and os.path.isfile(spec.origin) else None
    for folder in spec.submodule_search_locations or ():
        base = os.path.join(folder, *rest.split("."))
        for path in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(path):
                return path
    return None


def host_labels(entries: Iterable[Any]) -> dict[str, str]:
    """label -> the ``INSTALLED_APPS`` entry that takes it, for the host's apps. An entry is a
    module (``django.contrib.auth``: its name's last part, or what its ``apps`` module's
    classes say) or an ``AppConfig`` class (``stonks_plugins.apps.StonksPluginsConfig``: its
    literal label or name, else its package's name). Generous: a label counted twice costs
    nothing."""
    taken: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            continue
        module, _, last = entry.rpartition(".")
        if last[:1].isupper() and module:  # an AppConfig class
            package = module.rpartition(".")[0] if module.endswith(".apps") else module
            guesses = {package.rpartition(".")[2]}
            path = _module_file(module)
        else:
            guesses = {last}
            path = _module_file(entry + ".apps")
        if path is not None:
            try:
                tree = ast.parse(read_plugin_file(path, _APPS_SOURCE_LIMIT), path)
                guesses |= _class_labels(tree)[0]
            except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
                pass
        for label in guesses:
            taken.setdefault(label, entry)
    return taken


def settings_apps() -> list[Any]:
    """The host's ``INSTALLED_APPS`` as the settings module has it so far (settings call
    :func:`plugin_apps` after listing every host app, see ``stonks_overwatch/settings.py``)."""
    module = sys.modules.get(os.environ.get("DJANGO_SETTINGS_MODULE", ""))
    apps = getattr(module, "INSTALLED_APPS", None)
    return list(apps) if isinstance(apps, (list, tuple)) else []

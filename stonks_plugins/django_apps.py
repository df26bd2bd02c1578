"""Plugins that are Django apps: their own models and migrations, under their own label.

A manifest may declare ``"x-django-app": "<package>"`` (the plugin's package holding
``apps.py``, ``models.py`` and ``migrations/``). Django's app registry is fixed at start-up, so
such an app is added to ``INSTALLED_APPS`` by settings, through :func:`plugin_apps`:

* installing (or removing) an app plugin needs a **restart**, then ``manage.py migrate``;
* enabling, disabling and configuring it need neither: the app and its tables stay installed
  whatever the plugin's state, only its services come and go.

Sync (:func:`pending_action`) flags an app plugin the running process has not loaded
(``restart``) or whose migrations are not applied (``migrate``); such a plugin is not served
until that is done, and its state says so.

This module is imported by settings: it imports nothing from Django at module level and runs
no plugin code. It reads manifests as JSON and, for a directory plugin, registers the plugin's
synthetic parent package (``_stonks_plugin_pkgs.<slug>``, exactly as ``loader.mount`` does,
without executing the folder's ``__init__.py``) so that Django can import
``_stonks_plugin_pkgs.<slug>.<package>``. The app's label is its package's name (Django's
default; an ``AppConfig`` should keep it), so migrations stay valid whichever folder holds it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import types
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

APP_KEY = "x-django-app"
MANIFEST_FILENAME = "plugin_manifest.json"  # == manifest.validation.MANIFEST_FILENAME
PKG_ROOT = "_stonks_plugin_pkgs"  # == loader.PKG_ROOT
ENTRY_POINT_GROUPS = (  # == discovery.entry_points.GROUPS
    "stonks_overwatch.brokers",
    "stonks_overwatch.aggregators",
    "stonks_overwatch.views",
    "stonks_overwatch.middleware",
)
_PACKAGE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

RESTART = "restart"
MIGRATE = "migrate"


def declared_app(raw: Any) -> str | None:
    """The package a manifest (as a dict) declares with ``x-django-app``, if it is valid."""
    value = raw.get(APP_KEY) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and _PACKAGE_RE.match(value) else None


def _slug(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "_", name)  # == loader.package_prefix


def _read(path: str) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


def _plugin_name(raw: Any, fallback: str) -> str:
    plugin = raw.get("plugin") if isinstance(raw, dict) else None
    name = plugin.get("name") if isinstance(plugin, dict) else None
    return name if isinstance(name, str) and name else fallback


def _mount_parent(prefix: str, root: str) -> None:
    """``loader.mount`` without running the folder's ``__init__.py``: a package module whose
    ``__path__`` is the plugin folder (``mount`` later sees the same path and keeps it)."""
    if PKG_ROOT not in sys.modules:
        parent = types.ModuleType(PKG_ROOT, "Synthetic parent of directory plugins' packages.")
        parent.__path__ = []
        parent.__spec__ = ModuleSpec(PKG_ROOT, None, is_package=True)
        sys.modules[PKG_ROOT] = parent
    existing = sys.modules.get(prefix)
    if existing is not None:
        if list(getattr(existing, "__path__", [])) != [root]:
            raise ValueError(f"{prefix} is already mounted from another folder")
        return
    module = types.ModuleType(prefix)
    module.__path__ = [root]
    module.__spec__ = ModuleSpec(prefix, None, is_package=True)
    module.__spec__.submodule_search_locations = [root]
    sys.modules[prefix] = module


def _directory_apps(plugin_dirs: Iterable[Any], seen: set[str]) -> list[str]:
    apps: list[str] = []
    for base in plugin_dirs:
        base_text = str(base)
        try:
            entries = sorted(os.scandir(base_text), key=lambda e: e.name)
        except OSError:
            continue
        # Spell the folder exactly as discovery does (loader.mount compares the paths).
        prefix = "" if base_text == "." else base_text.rstrip(os.sep) + os.sep
        for e in entries:
            if e.name.startswith((".", "_")):
                continue
            root = prefix + e.name
            manifest = os.path.join(root, MANIFEST_FILENAME)
            if not os.path.isfile(manifest):
                continue
            try:
                raw = _read(manifest)
                package = declared_app(raw)
                name = _plugin_name(raw, e.name)
                if package is None or name in seen:
                    continue
                seen.add(name)  # the first folder holding a name wins, as in discovery
                if not os.path.isfile(os.path.join(root, package, "__init__.py")):
                    logger.warning("plugin %s: %s names no package in %s", name, APP_KEY, root)
                    continue
                pkg_prefix = f"{PKG_ROOT}.{_slug(name)}"
                _mount_parent(pkg_prefix, root)
                apps.append(f"{pkg_prefix}.{package}")
            except Exception as exc:  # a broken manifest is discovery's to report
                logger.warning("plugin folder %s: %s not read: %s", root, APP_KEY, exc)
    return apps


def _entry_point_apps(seen: set[str]) -> list[str]:
    import importlib.util
    from importlib import metadata

    apps: list[str] = []
    try:
        eps = metadata.entry_points()
    except Exception:
        return apps
    for group in ENTRY_POINT_GROUPS:
        for ep in sorted(eps.select(group=group), key=lambda e: e.name):
            try:
                top = ep.value.split(":", 1)[0].split(".", 1)[0]
                spec = importlib.util.find_spec(top)  # finds, does not execute
                if spec is None or not spec.submodule_search_locations:
                    continue
                folder = next(iter(spec.submodule_search_locations))
                raw = _read(os.path.join(folder, MANIFEST_FILENAME))
                package = declared_app(raw)
                name = _plugin_name(raw, ep.name)
                if package is None or name in seen:
                    continue
                seen.add(name)
                # An installed distribution imports under its real names: the declared
                # package is a sub-package of the entry point's top-level package.
                apps.append(package if package == top else f"{top}.{package}")
            except Exception as exc:
                logger.warning("entry point %s: %s not read: %s", ep.name, APP_KEY, exc)
    return apps


def plugin_apps(plugin_dirs: Iterable[Any]) -> list[str]:
    """Dotted module paths of the Django apps that plugins declare, for ``INSTALLED_APPS``.

    Installed distributions first (they win a name clash, as in discovery), then plugin
    folders in ``PLUGIN_DIRS`` order. Two apps with the same label: the first is kept. Never
    raises."""
    try:
        seen: set[str] = set()
        found = _entry_point_apps(seen) + _directory_apps([Path(p) for p in plugin_dirs], seen)
    except Exception:
        logger.exception("plugin Django apps could not be listed; none are installed")
        return []
    labels: set[str] = set()
    result = []
    for path in found:
        label = path.rpartition(".")[2]
        if label in labels:
            logger.warning("plugin app %s skipped: label %r is taken", path, label)
            continue
        labels.add(label)
        result.append(path)
    return result


def _app_path(raw: Any, source: str, location_name: str, entry_point: str | None) -> str | None:
    package = declared_app(raw)
    if package is None:
        return None
    if source == "directory":
        return f"{PKG_ROOT}.{_slug(location_name)}.{package}"
    top = (entry_point or "").split(":", 1)[0].split(".", 1)[0]
    return package if not top or package == top else f"{top}.{package}"


def pending_action(
    name: str, raw: Any, source: str, entry_point: str | None = None
) -> tuple[str, str]:
    """``("", "")`` when the plugin declares no app or its app is ready; else ``(RESTART |
    MIGRATE, message)``: what must be done before the plugin can be served."""
    path = _app_path(raw, source, name, entry_point)
    if path is None:
        return "", ""
    from django.apps import apps

    config = next((c for c in apps.get_app_configs() if c.name == path), None)
    if config is None:
        return RESTART, (
            f"installs Django app '{declared_app(raw)}' with its own tables, which this process "
            "has not loaded: restart Stonks Overwatch, then run 'manage.py migrate'"
        )
    try:
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == config.label]
        if targets and executor.migration_plan(targets):
            return MIGRATE, (
                f"Django app '{config.label}' has unapplied migrations: run 'manage.py migrate'"
            )
    except Exception as exc:  # no database yet, a broken migration: say so, do not serve
        return MIGRATE, f"migrations of Django app '{config.label}' could not be checked: {exc}"
    return "", ""

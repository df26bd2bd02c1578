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

Django refuses to start when two apps share a label ("Application labels aren't unique"),
so a plugin app whose label is a host app's (``auth``, ``admin``, ``stonks_plugins``) or an
earlier plugin app's would take the whole site down. The labels are read from the source,
without importing it (:func:`app_labels`: the package's name, or the literal ``label`` of the
classes in its ``apps`` module), and a plugin whose label is taken, or cannot be read that
way, is left out of ``INSTALLED_APPS``; sync reports it (:func:`label_conflict`).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import os
import re
import sys
import types
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, NamedTuple

from . import module_names
from .plugin_files import MANIFEST_SETTING, read_plugin_file

logger = logging.getLogger(__name__)

APP_KEY = "x-django-app"
MANIFEST_FILENAME = "plugin_manifest.json"  # == manifest.validation.MANIFEST_FILENAME
PKG_ROOT = module_names.PKG_ROOT
_PACKAGE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

RESTART = "restart"
MIGRATE = "migrate"


def declared_app(raw: Any) -> str | None:
    """The package a manifest (as a dict) declares with ``x-django-app``, if it is valid."""
    value = raw.get(APP_KEY) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and _PACKAGE_RE.match(value) else None


_slug = module_names.plugin_slug  # the loader's too: one name, one package

_DEFAULT_MANIFEST_LIMIT = 262144  # == conf.DEFAULTS["MAX_MANIFEST_BYTES"] (settings not set up)
_APPS_SOURCE_LIMIT = 1 << 20
"""Largest ``apps`` module read for its labels; a larger one is refused."""


def _read(path: str, limit: int = _DEFAULT_MANIFEST_LIMIT) -> Any:
    # A FIFO or a huge file as a manifest must not hang or slow start-up.
    return json.loads(read_plugin_file(path, limit, setting=MANIFEST_SETTING))


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


# -- labels, read from the source --------------------------------------------------------------


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


def _host_labels(entries: Iterable[Any]) -> dict[str, str]:
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


def _settings_apps() -> list[Any]:
    """The host's ``INSTALLED_APPS`` as the settings module has it so far (settings call
    :func:`plugin_apps` after listing every host app, see ``stonks_overwatch/settings.py``)."""
    module = sys.modules.get(os.environ.get("DJANGO_SETTINGS_MODULE", ""))
    apps = getattr(module, "INSTALLED_APPS", None)
    return list(apps) if isinstance(apps, (list, tuple)) else []


# -- the apps plugins declare ------------------------------------------------------------------


class _PluginApp(NamedTuple):  # a NamedTuple: settings import this, a dataclass costs more
    name: str
    path: str
    """Dotted path of the app's package, as ``INSTALLED_APPS`` lists it."""
    package_dir: str
    mount: tuple[str, str] | None = None
    """(prefix, folder) of a directory plugin's synthetic parent package."""


def _directory_apps(plugin_dirs: Iterable[Any], seen: set[str], limit: int) -> list[_PluginApp]:
    apps: list[_PluginApp] = []
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
                raw = _read_declaring(manifest, limit)
                package = declared_app(raw)
                name = _plugin_name(raw, e.name)
                if package is None or name in seen:
                    continue
                seen.add(name)  # the first folder holding a name wins, as in discovery
                package_dir = os.path.join(root, package)
                if not os.path.isfile(os.path.join(package_dir, "__init__.py")):
                    logger.warning("plugin %s: %s names no package in %s", name, APP_KEY, root)
                    continue
                pkg_prefix = f"{PKG_ROOT}.{_slug(name)}"
                apps.append(
                    _PluginApp(name, f"{pkg_prefix}.{package}", package_dir, (pkg_prefix, root))
                )
            except Exception as exc:  # a broken manifest is discovery's to report
                logger.warning("plugin folder %s: %s not read: %s", root, APP_KEY, exc)
    return apps


def _entry_point_apps(seen: set[str], limit: int) -> list[_PluginApp]:
    # The process's one scan of the installed distributions: discovery reuses it in ready().
    from .installed import plugin_entry_points

    apps: list[_PluginApp] = []
    try:
        entry_points = plugin_entry_points()
    except Exception:
        logger.exception("installed distributions could not be scanned for plugin apps")
        return apps
    for ep in entry_points:
        try:
            folder = ep.package_dir
            if folder is None:
                continue
            raw = _read_declaring(os.path.join(folder, MANIFEST_FILENAME), limit)
            package = declared_app(raw)
            name = _plugin_name(raw, ep.name)
            if package is None or name in seen:
                continue
            seen.add(name)
            # An installed distribution imports under its real names: the declared
            # package is a sub-package of the entry point's top-level package.
            top = ep.top
            path = package if package == top else f"{top}.{package}"
            package_dir = folder if package == top else os.path.join(folder, package)
            apps.append(_PluginApp(name, path, package_dir))
        except Exception as exc:
            logger.warning("entry point %s: %s not read: %s", ep.name, APP_KEY, exc)
    return apps


def _read_declaring(path: str, limit: int) -> Any:
    """The manifest at ``path`` as JSON when it may declare an app, else None: most do not,
    and looking for the key's bytes costs a fraction of parsing them. Only text that spells
    the key some other way (a ``\\u`` escape) is parsed to be sure."""
    data = read_plugin_file(path, limit, setting=MANIFEST_SETTING)
    if _APP_KEY_BYTES not in data and b"\\u" not in data:
        return None
    return json.loads(data)


_APP_KEY_BYTES = APP_KEY.encode()


def plugin_apps(
    plugin_dirs: Iterable[Any],
    host_apps: Iterable[Any] | None = None,
    manifest_limit: int = _DEFAULT_MANIFEST_LIMIT,
    signature_policy: str | None = None,
    trusted_keys: Iterable[str] | None = None,
) -> list[str]:
    """Dotted module paths of the Django apps that plugins declare, for ``INSTALLED_APPS``.

    Installed distributions first (they win a name clash, as in discovery), then plugin
    folders in ``PLUGIN_DIRS`` order. An app whose label a host app in ``host_apps`` (by
    default the ``INSTALLED_APPS`` of the settings module calling this, as far as it got) or
    an earlier plugin app has, or whose label cannot be read from its source, is left out
    with a warning; sync records why (:func:`label_conflict`). ``manifest_limit`` is
    ``PLUGINS_MAX_MANIFEST_BYTES`` (settings cannot be read yet). Never raises.

    An app is imported by Django as soon as it is listed, so trust is checked here too
    (:func:`_trust_refusal`): a locked plugin whose files fail verification is left out, and
    under the ``enforce`` policy so is one not signed by a trusted key. ``signature_policy``
    and ``trusted_keys`` are the settings of those names (settings pass them: Django's settings
    cannot be read while they are being made)."""
    try:
        seen: set[str] = set()
        found = _entry_point_apps(seen, manifest_limit) + _directory_apps(
            [Path(p) for p in plugin_dirs], seen, manifest_limit
        )
        if not found:
            return []
        taken = _host_labels(_settings_apps() if host_apps is None else host_apps)
    except Exception:
        logger.exception("plugin Django apps could not be listed; none are installed")
        return []
    result = []
    for app in found:
        try:
            labels, fault = app_labels(app.package_dir, app.path.rpartition(".")[2])
            clash = sorted(label for label in labels if label in taken)
            if fault or clash:
                why = fault or (
                    f"its app label {clash[0]!r} is taken by the app {taken[clash[0]]!r}"
                )
                logger.warning(
                    "plugin %s: Django app %s left out of INSTALLED_APPS: %s",
                    app.name,
                    app.path,
                    why,
                )
                continue
            refusal = _trust_refusal(app, signature_policy, trusted_keys)
            if refusal is not None:
                logger.warning(
                    "plugin %s: Django app %s left out of INSTALLED_APPS: %s",
                    app.name,
                    app.path,
                    refusal,
                )
                continue
            if app.mount is not None:
                _mount_parent(*app.mount)
        except Exception as exc:
            logger.warning("plugin %s: Django app %s left out: %s", app.name, app.path, exc)
            continue
        taken.update(dict.fromkeys(labels, app.path))
        result.append(app.path)
    return result


def _trust_refusal(app: _PluginApp, policy: str | None, keys: Iterable[str] | None) -> str | None:
    """Why the app must not be imported (trust, see :mod:`stonks_plugins.trust`), or None."""
    from importlib import metadata

    from .trust.verdicts import assess, canonical_keys, decide, parse_policy

    if app.mount is not None:
        root, distribution = app.mount[1], None
    else:  # an installed package: its top-level folder holds the manifest
        top = app.path.split(".", 1)[0]
        root = app.package_dir if top == app.path else os.path.dirname(app.package_dir)
        names = metadata.packages_distributions().get(top)
        distribution = names[0] if names else None
    raw = _read(os.path.join(root, MANIFEST_FILENAME))
    lock = raw.get("integrity") if isinstance(raw, dict) else None
    expected = lock if isinstance(lock, dict) else {}
    keys = canonical_keys(keys or ())
    found = assess(root, expected, distribution=distribution, trusted_keys=keys)
    return decide(found, parse_policy(policy)).refusal


def label_conflict(
    name: str, raw: Any, source: str, root: Path | None, entry_point: str | None = None
) -> str | None:
    """Why the Django app a plugin declares cannot be installed beside the apps this process
    runs (its label is taken, or cannot be read from its source), or None. Needs Django set
    up: it compares with the app registry, which holds every host app and the plugin apps
    :func:`plugin_apps` let in."""
    package = declared_app(raw)
    path = _app_path(raw, source, name, entry_point)
    if package is None or path is None or root is None:
        return None
    # An installed distribution's root is its top-level package, which may be the app.
    package_dir = (
        str(root) if source != "directory" and path == package else os.path.join(root, package)
    )
    labels, fault = app_labels(package_dir, package)
    if fault:
        return (
            f"its Django app '{package}' was not installed: {fault}. Give its AppConfig a "
            "literal 'label' (or none: the package's name is used)"
        )
    from django.apps import apps

    for label in sorted(labels):
        holder = apps.app_configs.get(label)
        if holder is not None and holder.name != path:
            return (
                f"its Django app '{package}' has the label '{label}', which the installed app "
                f"'{holder.name}' already has; Django needs every app label to be unique, so "
                f"this plugin's app was left out: rename its package '{package}' (or the "
                "'label' of its AppConfig) and restart"
            )
    return None


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

"""The Django apps plugins declare, listed for ``INSTALLED_APPS`` by settings: found in the
installed distributions and the plugin folders, left out when their label is taken or their
files fail the trust check. Runs before Django is set up and runs no plugin code."""

from __future__ import annotations

import json
import logging
import os
import sys
import types
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, NamedTuple

from ..plugin_files import MANIFEST_SETTING, read_manifest_once, read_plugin_file
from .declared import (
    APP_KEY,
    DEFAULT_MANIFEST_LIMIT,
    MANIFEST_FILENAME,
    PKG_ROOT,
    declared_app,
    slug,
)
from .labels import app_labels, host_labels, settings_apps

logger = logging.getLogger("stonks_plugins.django_apps")  # the package's, as operators name it


def _read(path: str, limit: int = DEFAULT_MANIFEST_LIMIT) -> Any:
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
                pkg_prefix = f"{PKG_ROOT}.{slug(name)}"
                apps.append(
                    _PluginApp(name, f"{pkg_prefix}.{package}", package_dir, (pkg_prefix, root))
                )
            except Exception as exc:  # a broken manifest is discovery's to report
                logger.warning("plugin folder %s: %s not read: %s", root, APP_KEY, exc)
    return apps


def _entry_point_apps(seen: set[str], limit: int) -> list[_PluginApp]:
    # The process's one scan of the installed distributions: discovery reuses it in ready().
    from ..installed import plugin_entry_points

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
    the key some other way (a ``\\u`` escape) is parsed to be sure. The bytes are kept for
    discovery in ``ready()``, which would read the same file again."""
    data = read_manifest_once(path, limit, MANIFEST_SETTING)
    if _APP_KEY_BYTES not in data and b"\\u" not in data:
        return None
    return json.loads(data)


_APP_KEY_BYTES = APP_KEY.encode()


def plugin_apps(
    plugin_dirs: Iterable[Any],
    host_apps: Iterable[Any] | None = None,
    manifest_limit: int = DEFAULT_MANIFEST_LIMIT,
    signature_policy: str | None = None,
    trusted_keys: Iterable[str] | None = None,
) -> list[str]:
    """Dotted module paths of the Django apps that plugins declare, for ``INSTALLED_APPS``.

    Installed distributions first (they win a name clash, as in discovery), then plugin
    folders in ``PLUGIN_DIRS`` order. An app whose label a host app in ``host_apps`` (by
    default the ``INSTALLED_APPS`` of the settings module calling this, as far as it got) or
    an earlier plugin app has, or whose label cannot be read from its source, is left out
    with a warning; sync records why (:func:`.status.label_conflict`). ``manifest_limit`` is
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
        taken = host_labels(settings_apps() if host_apps is None else host_apps)
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

    from ..trust.verdicts import assess, canonical_keys, decide, parse_policy

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

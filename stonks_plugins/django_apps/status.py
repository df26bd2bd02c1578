"""Whether a plugin's Django app can be served by this process: installed beside the host's
apps without a label clash, loaded (else a restart is needed) and migrated. Needs Django set
up when called; it is imported inside the calls, as settings import this package."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .declared import app_path, declared_app
from .labels import app_labels

RESTART = "restart"
MIGRATE = "migrate"


def label_conflict(
    name: str, raw: Any, source: str, root: Path | None, entry_point: str | None = None
) -> str | None:
    """Why the Django app a plugin declares cannot be installed beside the apps this process
    runs (its label is taken, or cannot be read from its source), or None. Needs Django set
    up: it compares with the app registry, which holds every host app and the plugin apps
    :func:`plugin_apps` let in."""
    package = declared_app(raw)
    path = app_path(raw, source, name, entry_point)
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


def pending_action(
    name: str, raw: Any, source: str, entry_point: str | None = None
) -> tuple[str, str]:
    """``("", "")`` when the plugin declares no app or its app is ready; else ``(RESTART |
    MIGRATE, message)``: what must be done before the plugin can be served."""
    path = app_path(raw, source, name, entry_point)
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

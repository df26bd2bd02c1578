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

This package is imported by settings: it imports nothing from Django at module level and runs
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

from .declared import (
    APP_KEY,
    DEFAULT_MANIFEST_LIMIT,
    MANIFEST_FILENAME,
    PKG_ROOT,
    declared_app,
    slug,
)
from .labels import app_labels
from .listing import plugin_apps
from .status import MIGRATE, RESTART, label_conflict, pending_action

_slug = slug  # the names the single module before this package had (tests read them)
_DEFAULT_MANIFEST_LIMIT = DEFAULT_MANIFEST_LIMIT

__all__ = [
    "APP_KEY",
    "MANIFEST_FILENAME",
    "MIGRATE",
    "PKG_ROOT",
    "RESTART",
    "app_labels",
    "declared_app",
    "label_conflict",
    "pending_action",
    "plugin_apps",
]

"""What a manifest declares about a plugin's Django app (``x-django-app``), and the dotted
path the app is imported under."""

from __future__ import annotations

import re
from typing import Any

from .. import module_names

APP_KEY = "x-django-app"
MANIFEST_FILENAME = "plugin_manifest.json"  # == manifest.validation.MANIFEST_FILENAME
PKG_ROOT = module_names.PKG_ROOT
DEFAULT_MANIFEST_LIMIT = 262144  # == conf.DEFAULTS["MAX_MANIFEST_BYTES"] (settings not set up)
_PACKAGE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

slug = module_names.plugin_slug  # the loader's too: one name, one package


def declared_app(raw: Any) -> str | None:
    """The package a manifest (as a dict) declares with ``x-django-app``, if it is valid."""
    value = raw.get(APP_KEY) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and _PACKAGE_RE.match(value) else None


def app_path(raw: Any, source: str, location_name: str, entry_point: str | None) -> str | None:
    """The dotted path of the app a plugin declares, as ``INSTALLED_APPS`` lists it: under
    the synthetic parent package of a directory plugin, else under the entry point's
    top-level package."""
    package = declared_app(raw)
    if package is None:
        return None
    if source == "directory":
        return f"{PKG_ROOT}.{slug(location_name)}.{package}"
    top = (entry_point or "").split(":", 1)[0].split(".", 1)[0]
    return package if not top or package == top else f"{top}.{package}"

"""Navigation entries of active view plugins, for the host's base template."""

from __future__ import annotations

import inspect
from typing import Any

from django.http import HttpRequest

from ..base import BaseViewPlugin
from ..runtime.serving import serving


def plugin_navigation(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``plugin_nav`` = [{"label", "url"}], without loading any code
    (labels come from the manifests; a plugin class may refine them once loaded)."""
    from ..registry import plugin_registry

    entries = []
    known = plugin_registry.known()
    loaded = plugin_registry.loaded()
    for name in serving.serving("view"):
        cand = known.get(name)
        if cand is None or cand.manifest is None:
            continue
        instance = loaded[name].instance if name in loaded else None
        label = cand.manifest.display_name
        path = ""
        if isinstance(instance, BaseViewPlugin):
            label = _plain(instance, "nav_label") or label
            path = _plain(instance, "nav_path") or ""
        entries.append({"label": label, "url": f"/plugins/{name}/{path}"})
    return {"plugin_nav": entries}


def _plain(instance: object, name: str) -> str:
    """A plain attribute of the plugin's object; a property would run plugin code on the
    request's thread, outside its budget, so it is not read."""
    value = inspect.getattr_static(instance, name, "")
    return value if isinstance(value, str) else ""

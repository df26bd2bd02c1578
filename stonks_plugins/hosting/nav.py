"""Navigation entries of active view plugins, for the host's base template."""

from __future__ import annotations

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
            label = instance.nav_label or label
            path = instance.nav_path
        entries.append({"label": label, "url": f"/plugins/{name}/{path}"})
    return {"plugin_nav": entries}

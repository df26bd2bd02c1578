"""``/plugins/<name>/...``: view plugins' pages and static files, answered only while the
plugin is served here (404 otherwise: disabled, unknown, not a view plugin)."""

from __future__ import annotations

import mimetypes
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, URLResolver
from django.urls.resolvers import RegexPattern

from ..base import BaseViewPlugin
from ..legacy.bridge import bridge
from ..registry import plugin_registry
from ..sandbox import SandboxError
from .templates import plugin_dir

_resolvers: dict[tuple[str, int], URLResolver] = {}


def _resolver(name: str) -> URLResolver:
    loaded = plugin_registry.load(name)
    key = (name, id(loaded))
    resolver = _resolvers.get(key)
    if resolver is None:
        instance = loaded.instance
        if not isinstance(instance, BaseViewPlugin) or loaded.sandbox is None:
            raise Http404(f"plugin '{name}' provides no pages")
        patterns = loaded.sandbox.run("urlpatterns", instance.get_urlpatterns, timeout=None)
        resolver = URLResolver(RegexPattern(r"^/"), list(patterns))
        _resolvers.clear()  # only the current load of each plugin is worth keeping
        _resolvers[key] = resolver
    return resolver


def dispatch(request: HttpRequest, name: str, rest: str = "") -> Any:
    if name not in bridge.serving("view"):
        raise Http404(f"no view plugin '{name}' is enabled")
    try:
        match = _resolver(name).resolve("/" + rest)
    except Resolver404:
        raise Http404(f"plugin '{name}' has no page at '{rest}'") from None
    except SandboxError as err:
        return HttpResponse(
            f"The plugin '{name}' failed: {err.message}", status=503, content_type="text/plain"
        )
    loaded = plugin_registry.load(name)
    assert loaded.sandbox is not None
    try:
        return loaded.sandbox.run(
            f"view.{match.url_name or match.func.__name__}",
            match.func,
            request,
            *match.args,
            timeout=None,
            **match.kwargs,
        )
    except SandboxError as err:
        return HttpResponse(
            f"The plugin '{name}' failed: {err.message}", status=503, content_type="text/plain"
        )


def static(request: HttpRequest, name: str, path: str) -> FileResponse:
    if name not in bridge.serving("view"):
        raise Http404(f"no view plugin '{name}' is enabled")
    base = plugin_dir(name, "static")
    if base is None:
        raise Http404("this plugin ships no static files")
    target = (base / path).resolve()
    if base.resolve() not in target.parents or not target.is_file():
        raise Http404(path)
    content_type, _ = mimetypes.guess_type(str(target))
    return FileResponse(target.open("rb"), content_type=content_type or "application/octet-stream")

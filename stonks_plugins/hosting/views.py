"""``/plugins/<name>/...``: view plugins' pages and static files, answered only while the
plugin is served here (404 otherwise: disabled, unknown, not a view plugin).

The plugin's URL patterns and its view run on the plugin's lane, within the page budget: a
view that fails or hangs answers 503 with the reason, and the rest of the site is untouched.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, URLResolver
from django.urls.resolvers import RegexPattern

from ..base import BaseViewPlugin
from ..registry import LoadedPlugin
from ..runtime import lanes, loads
from ..runtime.serving import serving
from ..sandbox import SandboxError
from .templates import plugin_dir

_resolvers: dict[tuple[str, int], URLResolver] = {}


def _bounded(loaded: LoadedPlugin, operation: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    assert loaded.sandbox is not None
    return lanes.run(loaded.name, loaded.sandbox, operation, func, *args, timeout=None, **kwargs)


def _resolver(loaded: LoadedPlugin) -> URLResolver:
    key = (loaded.name, id(loaded))
    resolver = _resolvers.get(key)
    if resolver is None:
        instance = loaded.instance
        if not isinstance(instance, BaseViewPlugin) or loaded.sandbox is None:
            raise Http404(f"plugin '{loaded.name}' provides no pages")
        patterns = _bounded(loaded, "urlpatterns", instance.get_urlpatterns)
        resolver = URLResolver(RegexPattern(r"^/"), list(patterns))
        _resolvers.clear()  # only the current load of each plugin is worth keeping
        _resolvers[key] = resolver
    return resolver


def _unavailable(name: str, err: SandboxError) -> HttpResponse:
    return HttpResponse(
        f"The plugin '{name}' failed: {err.message}", status=503, content_type="text/plain"
    )


def dispatch(request: HttpRequest, name: str, rest: str = "") -> Any:
    if name not in serving.serving("view"):
        raise Http404(f"no view plugin '{name}' is enabled")
    # The user is looked up lazily; do it here, where this request's database connection
    # is, not on the plugin's thread.
    getattr(getattr(request, "user", None), "pk", None)
    try:
        loaded = loads.acquire(name)
        match = _resolver(loaded).resolve("/" + rest)
    except Resolver404:
        raise Http404(f"plugin '{name}' has no page at '{rest}'") from None
    except SandboxError as err:
        return _unavailable(name, err)
    try:
        response = _bounded(
            loaded,
            f"view.{match.url_name or match.func.__name__}",
            match.func,
            request,
            *match.args,
            **match.kwargs,
        )
        # A template response renders lazily - in this thread, unbounded: render it there.
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response = _bounded(loaded, "view.render", response.render)
        return response
    except SandboxError as err:
        return _unavailable(name, err)


def static(request: HttpRequest, name: str, path: str) -> FileResponse:
    if name not in serving.serving("view"):
        raise Http404(f"no view plugin '{name}' is enabled")
    base = plugin_dir(name, "static")
    if base is None:
        raise Http404("this plugin ships no static files")
    # A NUL (%00) is in no file name and makes the OS calls raise: not found, as is any
    # path the file system refuses (too long...).
    try:
        target = (base / path).resolve()
        found = "\x00" not in path and base.resolve() in target.parents and target.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise Http404(f"plugin '{name}' has no static file {path!r}")
    content_type, _ = mimetypes.guess_type(str(target))
    return FileResponse(target.open("rb"), content_type=content_type or "application/octet-stream")

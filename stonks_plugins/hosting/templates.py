"""A template loader for view plugins: ``plugins/<name>/<file>`` is ``<file>`` in the
``templates/`` folder of the plugin's package, while the plugin is served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.template import Origin, TemplateDoesNotExist
from django.template.loaders.base import Loader as BaseLoader

from ..plugin_files import describe, read_plugin_file

PREFIX = "plugins/"
_TEMPLATE_LIMIT = 1 << 20
"""Largest template file of a view plugin that is read."""


def plugin_dir(name: str, folder: str) -> Path | None:
    """The ``templates``/``static`` folder next to the plugin's main class."""
    import inspect

    from ..runtime import loads
    from ..runtime.serving import serving
    from ..sandbox import SandboxError

    if name not in serving.serving("view"):
        return None
    try:
        loaded = loads.acquire(name)  # within the caller's budget
    except SandboxError:
        return None
    if loaded.instance is None:
        return None
    path = Path(inspect.getfile(type(loaded.instance))).parent / folder
    return path if path.is_dir() else None


class Loader(BaseLoader):
    def get_template_sources(self, template_name: str) -> Iterator[Origin]:
        if not template_name.startswith(PREFIX):
            return
        name, _, rest = template_name[len(PREFIX) :].partition("/")
        if not name or not rest:
            return
        base = plugin_dir(name, "templates")
        if base is None:
            return
        path = (base / rest).resolve()
        if base.resolve() not in path.parents:
            return
        yield Origin(name=str(path), template_name=template_name, loader=self)

    def get_contents(self, origin: Origin) -> str:
        # A plugin's file: a FIFO would hold the rendering thread for ever (plugin_files).
        try:
            data = read_plugin_file(origin.name, _TEMPLATE_LIMIT)
        except FileNotFoundError:
            raise TemplateDoesNotExist(origin) from None
        except OSError as exc:
            raise TemplateDoesNotExist(f"{origin.name} {describe(exc)}") from None
        return data.decode("utf-8")

    def get_template(self, template_name: str, skip: Any = None) -> Any:
        return super().get_template(template_name, skip)

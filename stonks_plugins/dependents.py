"""Who needs whom, as the stored rows say: what the API, the console and the CLI show of a
plugin's dependencies (``dependencies.plugins`` in its manifest), and the check a disable
makes before it leaves other plugins without a plugin they need.

The rows hold the manifests of the last sync, whose verdicts (which plugin fails for want of
another) the pages show too, so both agree. A plugin's links cost a query or two, however
many plugins are installed: the database finds the rows that name it (a JSON key lookup),
never this module by reading every manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from .errors import StonksPluginsError
from .models import Plugin

_DEPS = "manifest__dependencies__plugins"


@dataclass(frozen=True)
class Link:
    """One end of a dependency: the other plugin, the version specifier the dependent
    declares (``""``: any version), and that plugin's row (``state`` None: no such row)."""

    name: str
    specifier: str
    state: str | None
    enabled: bool
    version: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "specifier": self.specifier,
            "state": self.state,
            "enabled": self.enabled,
            "version": self.version,
        }


class HasDependents(StonksPluginsError):
    """Disabling ``plugin`` would fail the enabled plugins that need it (``dependents``),
    and the caller did not say to go ahead."""

    code = "has_dependents"

    def __init__(self, plugin: str, dependents: list[str]) -> None:
        shown = ", ".join(dependents)
        super().__init__(
            f"plugin '{plugin}' is needed by enabled plugins: {shown}; disabling it puts them "
            "in error (missing_dependency). Disable them first, or disable it anyway (CLI "
            "--force, API force=true, or confirm in the console)."
        )
        self.plugin = plugin
        self.dependents = dependents


def _declared(plugin: Plugin) -> dict[str, str]:
    manifest = plugin.manifest if isinstance(plugin.manifest, dict) else {}
    deps = manifest.get("dependencies")
    found = deps.get("plugins") if isinstance(deps, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(k): v if isinstance(v, str) else "" for k, v in found.items()}


def depends_on(plugin: Plugin) -> list[Link]:
    """The plugins ``plugin`` needs, by name, with their rows' states (one query)."""
    declared = _declared(plugin)
    if not declared:
        return []
    rows = {
        name: (state, enabled, version)
        for name, state, enabled, version in Plugin.objects.filter(
            name__in=sorted(declared)
        ).values_list("name", "state", "enabled", "version")
    }
    return [
        Link(name, spec, *rows.get(name, (None, False, "")))
        for name, spec in sorted(declared.items())
    ]


def dependents(name: str, *, transitive: bool = False) -> list[Link]:
    """The plugins whose manifests name ``name`` (with ``transitive``, also those that need
    one of them, and so on: every plugin a disable of ``name`` would fail), by name. Each
    link's specifier is what that plugin asks of the one it needs. A query per level."""
    found: dict[str, Link] = {}
    frontier = {name}
    while frontier:
        rows = (
            Plugin.objects.filter(_naming(frontier))
            .exclude(name__in=[name, *found])
            .values_list("name", "state", "enabled", "version", _DEPS)
            .order_by()
        )
        level: set[str] = set()
        for other, state, enabled, version, deps in rows:
            needed = deps if isinstance(deps, dict) else {}
            spec = next((needed[n] for n in sorted(frontier) if n in needed), "")
            spec = spec if isinstance(spec, str) else ""
            found[other] = Link(other, spec, state, enabled, version)
            if enabled:  # one switched off fails already: what needs it is not ours to count
                level.add(other)
        frontier = level if transitive else set()
    return [found[n] for n in sorted(found)]


def _naming(names: set[str]) -> Q:
    """Rows whose manifests list one of ``names`` in ``dependencies.plugins``."""
    return Q(**{f"{_DEPS}__has_any_keys": sorted(names)})


def enabled_dependents(name: str) -> list[str]:
    """The enabled plugins a disable of ``name`` would fail, directly or through others."""
    return [link.name for link in dependents(name, transitive=True) if link.enabled]


def check_disable(name: str, force: bool) -> None:
    """Raise :class:`HasDependents` when disabling ``name`` would fail enabled plugins,
    unless ``force``."""
    if force:
        return
    blocking = enabled_dependents(name)
    if blocking:
        raise HasDependents(name, blocking)

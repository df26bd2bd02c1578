"""One plugin entry point of an installed distribution, and where its manifest is."""

from __future__ import annotations

import os
import re
from importlib import metadata
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .metadata_files import DistributionLabel

GROUPS: dict[str, str] = {
    "stonks_overwatch.brokers": "broker",
    "stonks_overwatch.aggregators": "aggregator",
    "stonks_overwatch.views": "view",
    "stonks_overwatch.middleware": "middleware",
}
"""Entry point group -> the plugin type its plugins must declare."""
MANIFEST_FILENAME = "plugin_manifest.json"  # == manifest.validation.MANIFEST_FILENAME

MODULE = re.compile(r"[\w.]+")
"""The module part of an entry point's value, as importlib.metadata reads it."""


class InstalledEntryPoint(NamedTuple):
    """One plugin entry point of an installed distribution, with where its manifest is.
    (A NamedTuple: immutable, small, and quick to define in a module settings import.)"""

    name: str
    group: str
    value: str
    """``package.module:Class``, as written in the distribution's ``entry_points.txt``."""
    label: DistributionLabel | None
    """``NAME==VERSION`` of the distribution that declares it, read when first asked
    (:attr:`distribution`)."""
    package_dir: str | None
    """Folder of the entry point's top-level package, where its manifest ships; found
    without importing it (``find_spec`` of a top-level package does not execute it)."""
    manifest: str | None
    """Where the manifest should be: in ``package_dir`` (not checked: its readers open it,
    see :func:`recorded_manifest` when it is not there), else the distribution's own file
    of that name in that package (a package ``find_spec`` cannot see); None for none."""

    @property
    def distribution(self) -> str | None:
        """``NAME==VERSION`` of the distribution that declares it."""
        return None if self.label is None else str(self.label)

    @property
    def module(self) -> str:
        found = MODULE.match(self.value)
        return found.group() if found else ""

    @property
    def top(self) -> str:
        """The top-level package the entry point's module is in."""
        return self.module.split(".", 1)[0]


def recorded_manifest(ep: InstalledEntryPoint) -> str | None:
    """The manifest the distribution's file list (RECORD) names in the entry point's package,
    for one that is not in ``package_dir`` (an editable install's package may live apart
    from what the distribution recorded)."""
    name = (ep.distribution or "").partition("==")[0]
    try:
        dist = metadata.distribution(name)
    except (metadata.PackageNotFoundError, ValueError):
        return None
    return dist_manifest(dist, ep.top) if ep.top else None


def dist_manifest(dist: metadata.Distribution, top: str) -> str | None:
    """Fallback for packages find_spec cannot see: the distribution's file list."""
    try:
        files = dist.files or ()
    except Exception:  # a RECORD that cannot be read is no manifest either
        return None
    for file in files:
        if file.name == MANIFEST_FILENAME and file.parts[0] == top:
            located = str(dist.locate_file(file))
            return located if os.path.isfile(located) else None
    return None

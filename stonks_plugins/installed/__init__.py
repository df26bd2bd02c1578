"""The plugin entry points of the installed distributions, found once per process.

Settings (``django_apps.plugin_apps``, for ``INSTALLED_APPS``) and ``ready()`` (discovery)
both need them, so one scan serves both: it is kept, and reused while no import path folder
changed (installing or removing a distribution adds or removes its ``.dist-info`` there,
which changes the folder's mtime).

Why not ``importlib.metadata.entry_points()``: it parses every distribution's
``entry_points.txt`` into objects, and each ``EntryPoint.dist.metadata`` read parses
``METADATA`` again with the e-mail parser. The scan reads them as bytes, and only as far as it
needs (:mod:`.metadata_files`); where each package is, is told off the same listings of the
import path (:mod:`.import_path`). Which distributions count, and which copy of one installed
twice, are ``importlib.metadata.distributions()``'s, as for ``entry_points()``.

Standard library only: settings import this before Django is set up.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

from .entry_point import (
    GROUPS,
    MANIFEST_FILENAME,
    MODULE,
    InstalledEntryPoint,
    dist_manifest,
    recorded_manifest,
)
from .import_path import ImportPath
from .metadata_files import (
    DistributionLabel,
    distribution,
    distributions,
    normalize,
    plugin_entries,
    read_metadata,
)

__all__ = [
    "GROUPS",
    "MANIFEST_FILENAME",
    "InstalledEntryPoint",
    "environment_key",
    "forget",
    "plugin_entry_points",
    "recorded_manifest",
]

_MARK = b"stonks_overwatch."
"""Every group's prefix: a distribution whose entry_points.txt lacks it announces no plugin."""
_ORDER = {group: i for i, group in enumerate(GROUPS)}

_last: tuple[tuple[tuple[str, int], ...], tuple[InstalledEntryPoint, ...]] | None = None


def _stamp(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def environment_key() -> tuple[tuple[str, int], ...]:
    """What a scan depends on: the import path's folders, in order, each with its mtime
    (installing or removing a distribution adds or removes its ``.dist-info`` there). Each
    folder counts once, where it first appears, spelled absolute: the same folder put on the
    path again (Celery's Django fix-up inserts the working directory at start-up, between
    settings and ``ready()``) finds nothing new, so the scan stands."""
    seen: dict[str, int] = {}
    for entry in sys.path:
        if isinstance(entry, str):
            folder = os.path.abspath(entry or ".")
            if folder not in seen:
                seen[folder] = _stamp(folder)
    return tuple(seen.items())


def forget() -> None:
    """Scan again next time (a test that installs a distribution in a folder it made)."""
    global _last
    _last = None


def plugin_entry_points(
    key: tuple[tuple[str, int], ...] | None = None,
) -> tuple[InstalledEntryPoint, ...]:
    """Every plugin entry point of the installed distributions, in group order (brokers,
    aggregators, views, middleware), then by name, then in ``sys.path`` order. Scanned on
    the first call in a process, then again only when an import path folder changed.
    ``key`` is :func:`environment_key`'s answer when the caller has just asked for it (one
    ``stat`` of every import path folder is enough)."""
    global _last
    if key is None:
        key = environment_key()
    last = _last
    if last is not None and last[0] == key:
        return last[1]
    found = _scan()
    _last = (key, found)
    return found


def _scan() -> tuple[InstalledEntryPoint, ...]:
    found: list[tuple[tuple[int, str, int], InstalledEntryPoint]] = []
    seen: set[str] = set()
    path = ImportPath()
    for folder, key, dist, index in distributions(path):
        if key is None:
            key = normalize(distribution(folder, dist).metadata["Name"] or "")
        if key in seen:
            continue  # a later copy on sys.path is not the one installed (entry_points() too)
        seen.add(key)
        data = read_metadata(folder, dist, "entry_points.txt")
        if data is None or _MARK not in data:
            continue
        entries = plugin_entries(data.decode("utf-8", "replace"))
        if not entries:
            continue
        label = DistributionLabel(folder, dist)
        for group, ep_name, value in entries:
            ep = _entry_point(folder, dist, index, group, ep_name, value, label, path)
            found.append(((_ORDER[group], ep_name, len(found)), ep))
    found.sort(key=lambda item: item[0])
    return tuple(ep for _, ep in found)


def _entry_point(
    folder: str | None,
    dist: metadata.Distribution | None,
    index: int | None,
    group: str,
    name: str,
    value: str,
    label: DistributionLabel,
    path: ImportPath,
) -> InstalledEntryPoint:
    found = MODULE.match(value)
    top = found.group().split(".", 1)[0] if found else ""
    package_dir = path.package_dir(top, index) if top else None
    if package_dir is not None:  # whoever reads it finds out whether it is there
        manifest: str | None = f"{package_dir}{os.sep}{MANIFEST_FILENAME}"
    else:
        manifest = dist_manifest(distribution(folder, dist), top) if top else None
    return InstalledEntryPoint(name, group, value, label, package_dir, manifest)

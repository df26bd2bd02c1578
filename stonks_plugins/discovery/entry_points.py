"""Plugins installed as distributions, announced by entry points in four groups.

The entry point names the plugin class (``degiro.plugin:DegiroPlugin``); the manifest ships
inside the top-level package (``degiro/plugin_manifest.json``). Which distributions announce
plugins, and where their manifests are, is :mod:`stonks_plugins.installed`'s scan, which
settings already made for ``INSTALLED_APPS`` (one scan per process); this reads and validates
the manifests.
"""

from __future__ import annotations

import os
from typing import Any, cast

from ..errors import ReasonCode
from ..installed import (
    GROUPS,
    InstalledEntryPoint,
    environment_key,
    plugin_entry_points,
    recorded_manifest,
)
from ..installed import forget as forget_installed
from ..manifest.validation import MANIFEST_FILENAME
from ..plugin_files import (
    MANIFEST_SETTING,
    manifest_limit,
    open_regular,
    read_fd,
    take_manifest_read,
)
from .candidate import Candidate, Problem, Source, deferred_path
from .manifest_bytes import candidate_from_bytes

__all__ = ["GROUPS", "forget_entry_points", "scan_entry_points"]


def _read(path: str, limit: int) -> tuple[bytes, int]:
    """Bytes and mtime of a manifest: regular files only, at most the limit (one open gives
    the stamp and the bytes, so the two agree; settings' ``plugin_apps()`` may have read
    it already, stamp and bytes alike)."""
    early = take_manifest_read(path, limit)
    if early is not None:
        return early[1], early[0].st_mtime_ns
    fd, st = open_regular(path)
    try:
        return read_fd(fd, st.st_size, limit, path, MANIFEST_SETTING), st.st_mtime_ns
    finally:
        os.close(fd)


def _location(ep: InstalledEntryPoint) -> str:
    """The candidate's ``location``: the distribution's label, a stand-in that reads its
    METADATA when the location is first read (``Candidate.location``), else the value."""
    return cast(str, ep.label) if ep.label is not None else ep.value


def _missing(ep: InstalledEntryPoint, common: dict[str, Any]) -> Candidate:
    return Candidate(
        name=ep.name,
        manifest=None,
        raw=None,
        fingerprint="",
        **common,
        problem=Problem(
            ReasonCode.MANIFEST_UNREADABLE,
            f"entry point '{ep.name} = {ep.value}' in group {ep.group}: the distribution "
            f"{common['location']} ships no {MANIFEST_FILENAME} inside package '{ep.top}'",
        ),
    )


def _common(ep: InstalledEntryPoint, rank: tuple[Any, ...]) -> dict[str, Any]:
    """The fields every candidate of an entry point has, for the ones built by keyword."""
    return {
        "source": Source.ENTRY_POINT,
        "location": _location(ep),
        "entry_point": ep.value,
        "group": ep.group,
        "rank": rank,
        "root": deferred_path(ep.package_dir) if ep.package_dir is not None else None,
    }


def _candidate(ep: InstalledEntryPoint, index: int, limit: int) -> Candidate:
    rank = (0, index, ep.name)
    group = ep.group
    path = ep.manifest
    if path is None:
        return _missing(ep, _common(ep, rank))
    try:
        data, stamp = _read(path, limit)
    except (FileNotFoundError, NotADirectoryError):
        # Not in the package folder: the distribution's file list may name another place.
        _manifests_read.append((path, -1))
        recorded = recorded_manifest(ep)
        if recorded is None or recorded == path:
            return _missing(ep, _common(ep, rank))
        path = recorded
        try:
            data, stamp = _read(path, limit)
        except OSError as exc:
            return _unreadable(ep, path, exc, rank)
    except OSError as exc:  # including one too large: nothing of it is kept
        return _unreadable(ep, path, exc, rank)
    _manifests_read.append((path, stamp))
    cand = _from_bytes(ep, path, data, rank)
    manifest = cand.manifest
    if manifest is None:
        return cand
    expected_type = GROUPS[group]
    if manifest.type != expected_type:
        return cand.with_problem(
            Problem(
                ReasonCode.MANIFEST_INVALID,
                f"{path}: $.plugin.type is '{manifest.type}' but the entry point is in group "
                f"{group}, which holds '{expected_type}' plugins",
                ({"path": "$.plugin.type", "message": f"expected '{expected_type}'"},),
            ),
            manifest=None,
            raw=cand.raw,
            fingerprint=cand.fingerprint,
        )
    if ep.name != manifest.name:
        return cand.evolve(
            warnings=(
                f"entry point is named '{ep.name}' but the manifest names the plugin "
                f"'{manifest.name}'; the manifest's name is used",
            )
        )
    return cand


def _from_bytes(
    ep: InstalledEntryPoint, path: str, data: bytes | OSError, rank: tuple[Any, ...]
) -> Candidate:
    """The candidate of the manifest's bytes (or of the error reading them), as every source
    makes it, with this entry point's fields."""
    return candidate_from_bytes(
        data,
        path,
        Source.ENTRY_POINT,
        _location(ep),
        deferred_path(ep.package_dir) if ep.package_dir is not None else None,
        rank,
        ep.name,
        entry_point=ep.value,
        group=ep.group,
    )


def _unreadable(
    ep: InstalledEntryPoint, path: str, exc: OSError, rank: tuple[Any, ...]
) -> Candidate:
    _manifests_read.append((path, _stamp(path)))
    return _from_bytes(ep, path, exc, rank)


_manifests_read: list[tuple[str, int]] = []
"""Each manifest the last scan read (or tried to), with its mtime then."""
_last: tuple[tuple[tuple[str, int], ...], list[Candidate]] | None = None


def _stamp(path: str) -> int:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return -1


def _environment_key(paths_key: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """What an entry-point scan depends on: the import path's folders (``paths_key``, see
    ``installed.environment_key``), the manifests read last time (an editable install's
    manifest can change in place), and the size limit."""
    return (
        paths_key
        + tuple((m, _stamp(m)) for m, _ in _manifests_read)
        + ((MANIFEST_SETTING, manifest_limit()),)
    )


def forget_entry_points() -> None:
    global _last
    _last = None
    _manifests_read.clear()
    forget_installed()


def scan_entry_points() -> list[Candidate]:
    """Candidates of the installed distributions. The result is reused while nothing it
    depends on changed (a refresh after a change happens in every process)."""
    global _last
    paths_key = environment_key()
    key = _environment_key(paths_key)
    if _last is not None and _last[0] == key:
        return list(_last[1])
    _manifests_read.clear()
    limit = manifest_limit()
    found = [
        _candidate(ep, index, limit) for index, ep in enumerate(plugin_entry_points(paths_key))
    ]
    # The stamps the manifests had when read: a change since then shows at the next call.
    _last = (paths_key + tuple(_manifests_read) + ((MANIFEST_SETTING, limit),), found)
    return list(found)

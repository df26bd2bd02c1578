"""Plugins installed as distributions, announced by entry points in four groups.

The entry point names the plugin class (``degiro.plugin:DegiroPlugin``); the manifest ships
inside the top-level package (``degiro/plugin_manifest.json``). It is located without
importing anything: ``find_spec`` of a top-level package does not execute it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import ReasonCode
from ..manifest.validation import (
    MANIFEST_FILENAME,
    ManifestError,
    fast_parse_manifest,
    json_from_bytes,
    parse_manifest,
)
from ..plugin_files import MANIFEST_SETTING, describe, manifest_limit, read_plugin_file
from .candidate import RAW_FROM_MANIFEST, Candidate, Problem, Source

GROUPS: dict[str, str] = {
    "stonks_overwatch.brokers": "broker",
    "stonks_overwatch.aggregators": "aggregator",
    "stonks_overwatch.views": "view",
    "stonks_overwatch.middleware": "middleware",
}


def _package_dir(module: str) -> Path | None:
    top = module.split(".", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _dist_manifest(dist: metadata.Distribution | None, module: str) -> Path | None:
    """Fallback for packages find_spec cannot see: the distribution's file list."""
    if dist is None:
        return None
    top = module.split(".", 1)[0]
    for file in dist.files or ():
        if file.name == MANIFEST_FILENAME and file.parts[0] == top:
            return Path(str(dist.locate_file(file)))
    return None


def _candidate(ep: metadata.EntryPoint, group: str, index: int, limit: int) -> Candidate:
    dist = getattr(ep, "dist", None)
    location = f"{dist.metadata['Name']}=={dist.version}" if dist is not None else ep.value
    common: dict[str, Any] = {
        "source": Source.ENTRY_POINT,
        "location": location,
        "entry_point": ep.value,
        "group": group,
        "rank": (0, index, ep.name),
    }
    pkg = _package_dir(ep.module)
    path = pkg / MANIFEST_FILENAME if pkg is not None else None
    if path is None or not path.is_file():
        path = _dist_manifest(dist, ep.module) or path
    if path is None or not path.is_file():  # a FIFO or a device is no manifest either
        return Candidate(
            name=ep.name,
            root=pkg,
            manifest=None,
            raw=None,
            fingerprint="",
            **common,
            problem=Problem(
                ReasonCode.MANIFEST_UNREADABLE,
                f"entry point '{ep.name} = {ep.value}' in group {group}: the distribution "
                f"{location} ships no {MANIFEST_FILENAME} inside package "
                f"'{ep.module.split('.', 1)[0]}'",
            ),
        )
    _manifests_read.append(path)
    try:
        data = read_plugin_file(path, limit, setting=MANIFEST_SETTING)
    except OSError as exc:  # including one too large: nothing of it is kept
        return Candidate(
            name=ep.name,
            root=pkg,
            manifest=None,
            raw=None,
            fingerprint="",
            **common,
            problem=Problem(
                ReasonCode.MANIFEST_UNREADABLE,
                f"{path} {describe(exc)}",
            ),
        )
    fingerprint = hashlib.sha256(data).hexdigest()
    raw: Any = RAW_FROM_MANIFEST
    try:
        fast = fast_parse_manifest(data, str(path))
        if fast is None:  # the slow path decides: parse with json, check with jsonschema
            raw = json_from_bytes(data, str(path))
            manifest = parse_manifest(raw, str(path))
        else:
            manifest = fast
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return Candidate(
            name=ep.name,
            root=pkg,
            manifest=None,
            raw=None,
            fingerprint=fingerprint,
            **common,
            problem=Problem(ReasonCode.MANIFEST_UNREADABLE, f"{path}: invalid JSON: {exc}"),
        )
    except ManifestError as err:
        if err.code is ReasonCode.MANIFEST_UNREADABLE:  # text no database can store
            raw = None
        elif raw is RAW_FROM_MANIFEST:  # the fast path's rule check failed
            raw = json.loads(data.decode("utf-8-sig"))
        return Candidate(
            name=ep.name,
            root=pkg,
            manifest=None,
            raw=raw,
            fingerprint=fingerprint,
            **common,
            problem=Problem(err.code, err.summary, tuple(i.as_dict() for i in err.issues)),
        )
    warnings: tuple[str, ...] = ()
    if ep.name != manifest.name:
        warnings = (
            f"entry point is named '{ep.name}' but the manifest names the plugin "
            f"'{manifest.name}'; the manifest's name is used",
        )
    expected_type = GROUPS[group]
    if manifest.type != expected_type:
        if raw is RAW_FROM_MANIFEST:
            raw = manifest.raw
        return Candidate(
            name=manifest.name,
            root=pkg,
            manifest=None,
            raw=raw,
            fingerprint=fingerprint,
            **common,
            problem=Problem(
                ReasonCode.MANIFEST_INVALID,
                f"{path}: $.plugin.type is '{manifest.type}' but the entry point is in group "
                f"{group}, which holds '{expected_type}' plugins",
                ({"path": "$.plugin.type", "message": f"expected '{expected_type}'"},),
            ),
        )
    return Candidate(
        name=manifest.name,
        root=pkg,
        manifest=manifest,
        raw=raw,
        fingerprint=fingerprint,
        warnings=warnings,
        **common,
    )


_manifests_read: list[Path] = []
_last: tuple[tuple[tuple[str, int], ...], list[Candidate]] | None = None


def _stamp(path: str | Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _environment_key() -> tuple[tuple[str, int], ...]:
    """What an entry-point scan depends on: every import path's folder (installing or
    removing a distribution adds or removes its ``.dist-info`` there) and the manifests read
    last time (an editable install's manifest can change in place)."""
    return (
        tuple((p, _stamp(p)) for p in sys.path if p)
        + tuple((str(m), _stamp(m)) for m in _manifests_read)
        + ((MANIFEST_SETTING, manifest_limit()),)
    )


def forget_entry_points() -> None:
    global _last
    _last = None


def scan_entry_points() -> list[Candidate]:
    """Candidates of the installed distributions. Reading every distribution's metadata
    costs milliseconds and happens on each refresh after a change, in every process, so the
    result is reused while nothing it depends on changed."""
    global _last
    key = _environment_key()
    if _last is not None and _last[0] == key:
        return list(_last[1])
    _manifests_read.clear()
    found: list[Candidate] = []
    all_eps = metadata.entry_points()
    index = 0
    limit = manifest_limit()
    for group in GROUPS:
        for ep in sorted(all_eps.select(group=group), key=lambda e: e.name):
            found.append(_candidate(ep, group, index, limit))
            index += 1
    _last = (_environment_key(), found)
    return list(found)

"""Scan plugin directories: each sub-folder holding a plugin_manifest.json is a plugin.

Results are cached per manifest file on (mtime, size, inode), so a re-scan where nothing
changed costs a directory listing and one stat per plugin, not a read and a parse.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

from ..errors import ReasonCode
from ..manifest.validation import (
    MANIFEST_FILENAME,
    ManifestError,
    fast_parse_manifest,
    parse_manifest,
)
from .candidate import RAW_FROM_MANIFEST, Candidate, Problem, Source, deferred_path

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_cache: dict[str, tuple[tuple[int, int, int], Candidate]] = {}
_cache_lock = threading.Lock()
_SEP_MANIFEST = os.sep + MANIFEST_FILENAME
_BY_NAME = attrgetter("name")
S_ISREG = stat.S_ISREG


def clear_cache() -> None:
    """Forget every scanned manifest, and the memoised checks behind them."""
    from .. import compat
    from ..manifest import validation
    from .catalog import forget_last_scan
    from .entry_points import forget_entry_points

    with _cache_lock:
        _cache.clear()
    forget_last_scan()
    forget_entry_points()
    validation.clear_memos()
    compat.clear_memos()


def _subfolders(base: Path) -> tuple[list[os.DirEntry[str]], str]:
    """The sub-folders of ``base`` that may be plugins, sorted by name (the tie-break rule),
    and the prefix that spells a folder as ``str(base / name)`` would."""
    try:
        entries = sorted(os.scandir(base), key=_BY_NAME)
    except (FileNotFoundError, NotADirectoryError):
        return [], ""
    folders = []
    for e in entries:
        try:
            if not e.name.startswith((".", "_")) and e.is_dir():
                folders.append(e)
        except OSError:  # e.g. a symlink loop: not a plugin, and no reason to stop the scan
            continue
    prefix = str(base)
    prefix = "" if prefix == "." else prefix if prefix.endswith(os.sep) else prefix + os.sep
    return folders, prefix


def _plugin_entries(base: Path) -> Iterator[tuple[str, str, str, tuple[int, int, int]]]:
    """(name, folder, manifest path, stamp) of each sub-folder of ``base`` that holds a
    manifest, sorted by name. The one stat that proves the manifest is a file also gives the
    stamp the cache is keyed on."""
    folders, prefix = _subfolders(base)
    for e in folders:
        manifest_path = e.path + _SEP_MANIFEST
        try:
            st = os.stat(manifest_path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield e.name, prefix + e.name, manifest_path, (st.st_mtime_ns, st.st_size, st.st_ino)


def iter_plugin_folders(base: Path) -> list[Path]:
    """Sub-folders of ``base`` that hold a manifest, sorted by name (the tie-break rule)."""
    return [Path(folder) for _, folder, _, _ in _plugin_entries(base)]


def _name_from_raw(raw: Any, fallback: str) -> str:
    try:
        name = raw["plugin"]["name"]
    except (TypeError, KeyError):
        return fallback
    return name if isinstance(name, str) and _NAME_RE.match(name) else fallback


def scan_directory_plugin(folder: Path, rank: tuple[Any, ...] = ()) -> Candidate:
    """Read and validate one plugin folder (or a manifest file's folder), using the cache."""
    key = str(folder / MANIFEST_FILENAME)
    try:
        st = os.stat(key)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        stamp = (0, 0, 0)
    return _cached(key, stamp, str(folder), folder.name, folder, rank)


def _cached(
    key: str,
    stamp: tuple[int, int, int],
    location: str,
    folder_name: str,
    root: Path,
    rank: tuple[Any, ...],
) -> Candidate:
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp and stamp != (0, 0, 0):
        if hit[1].rank == rank:
            return hit[1]
        cand = hit[1].evolve(rank=rank)  # same file, listed elsewhere now: keep that too
    else:
        cand = _read(key, location, folder_name, root, rank)
    with _cache_lock:
        _cache[key] = (stamp, cand)
    return cand


def _read(
    manifest_path: str, location: str, folder_name: str, root: Path, rank: tuple[Any, ...]
) -> Candidate:
    """The candidate of one manifest file. ``folder_name`` is its name when the manifest
    gives none that can be used."""
    try:
        with open(manifest_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        problem = Problem(
            ReasonCode.MANIFEST_UNREADABLE,
            f"{manifest_path}: cannot read the file: {exc.strerror or exc}",
        )
        return Candidate.quick(
            folder_name, Source.DIRECTORY, location, root, None, None, "", problem, rank=rank
        )
    fingerprint = hashlib.sha256(data).hexdigest()
    try:
        manifest = fast_parse_manifest(data, manifest_path)
    except ManifestError as err:  # matches the schema, breaks a rule
        raw = json.loads(data.decode("utf-8-sig"))
        return _invalid(folder_name, location, root, raw, fingerprint, rank, err)
    if manifest is not None:  # the usual case: valid, and raw left to be parsed on demand
        return Candidate.quick(
            manifest.plugin.name,
            Source.DIRECTORY,
            location,
            root,
            manifest,
            RAW_FROM_MANIFEST,
            fingerprint,
            rank=rank,
        )
    # The slow path decides: parse with json, check with jsonschema.
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            fault = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        elif isinstance(exc, RecursionError):
            fault = "invalid JSON: arrays or objects nested too deeply to parse"
        else:
            fault = f"invalid JSON at not UTF-8: {exc}"
        problem = Problem(ReasonCode.MANIFEST_UNREADABLE, f"{manifest_path}: {fault}")
        return Candidate.quick(
            folder_name,
            Source.DIRECTORY,
            location,
            root,
            None,
            None,
            fingerprint,
            problem,
            rank=rank,
        )
    try:
        manifest = parse_manifest(raw, manifest_path)
    except ManifestError as err:
        return _invalid(folder_name, location, root, raw, fingerprint, rank, err)
    return Candidate.quick(
        manifest.name, Source.DIRECTORY, location, root, manifest, raw, fingerprint, rank=rank
    )


def _invalid(
    folder_name: str,
    location: str,
    root: Path,
    raw: Any,
    fingerprint: str,
    rank: tuple[Any, ...],
    err: ManifestError,
) -> Candidate:
    return Candidate.quick(
        _name_from_raw(raw, folder_name),
        Source.DIRECTORY,
        location,
        root,
        None,
        raw if isinstance(raw, dict) else None,
        fingerprint,
        Problem(err.code, err.summary, tuple(i.as_dict() for i in err.issues)),
        rank=rank,
    )


def scan_directories(dirs: list[Path]) -> list[Candidate]:
    """One candidate per plugin folder. A warm re-scan (nothing changed) is this loop: a
    listing, one stat per plugin and a cache lookup (``_plugin_entries`` and the hit path of
    ``_cached``, inlined)."""
    found: list[Candidate] = []
    get = _cache.get
    for index, base in enumerate(dirs):
        folders, prefix = _subfolders(base)
        for e in folders:
            manifest_path = e.path + _SEP_MANIFEST
            try:
                st = os.stat(manifest_path)
            except OSError:
                continue
            if not S_ISREG(st.st_mode):
                continue
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            rank = (1, index, e.name)
            hit = get(manifest_path)
            if hit is not None and hit[0] == stamp and hit[1].rank == rank:
                found.append(hit[1])
            else:
                folder = prefix + e.name
                root = deferred_path(folder)  # a Path only if somebody asks for it
                found.append(_cached(manifest_path, stamp, folder, e.name, root, rank))
    return found

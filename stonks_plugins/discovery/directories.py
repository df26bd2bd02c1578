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
from pathlib import Path
from typing import Any

from ..errors import ReasonCode
from ..manifest.validation import MANIFEST_FILENAME, ManifestError, parse_manifest
from .candidate import Candidate, Problem, Source

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_cache: dict[str, tuple[tuple[int, int, int], Candidate]] = {}
_cache_lock = threading.Lock()
_SEP_MANIFEST = os.sep + MANIFEST_FILENAME


def clear_cache() -> None:
    """Forget every scanned manifest, and the memoised checks behind them."""
    from .. import compat
    from ..manifest import validation
    from .catalog import forget_last_scan

    with _cache_lock:
        _cache.clear()
    forget_last_scan()
    validation.clear_memos()
    compat.clear_memos()


def _plugin_entries(base: Path) -> Iterator[tuple[str, str, str, tuple[int, int, int]]]:
    """(name, folder, manifest path, stamp) of each sub-folder of ``base`` that holds a
    manifest, sorted by name (the tie-break rule). The one stat that proves the manifest is
    a file also gives the stamp the cache is keyed on, so a warm re-scan costs a listing and
    one stat per plugin."""
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for e in entries:
        try:
            if e.name.startswith((".", "_")) or not e.is_dir():
                continue
        except OSError:  # e.g. a symlink loop: not a plugin, and no reason to stop the scan
            continue
        manifest_path = e.path + _SEP_MANIFEST
        try:
            st = os.stat(manifest_path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield e.name, e.path, manifest_path, (st.st_mtime_ns, st.st_size, st.st_ino)


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
    return _cached(key, stamp, folder, rank)


def _cached(
    key: str, stamp: tuple[int, int, int], folder: Path | str, rank: tuple[Any, ...]
) -> Candidate:
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp and stamp != (0, 0, 0):
        cand = hit[1]
        return cand if cand.rank == rank else _replace_rank(cand, rank)
    cand = _read(Path(folder), key, rank)
    with _cache_lock:
        _cache[key] = (stamp, cand)
    return cand


def _replace_rank(cand: Candidate, rank: tuple[Any, ...]) -> Candidate:
    from dataclasses import replace

    return replace(cand, rank=rank)


def _read(folder: Path, manifest_path: str, rank: tuple[Any, ...]) -> Candidate:
    folder_name = folder.name
    common: dict[str, Any] = {
        "source": Source.DIRECTORY,
        "location": str(folder),
        "root": folder,
        "rank": rank,
    }
    try:
        with open(manifest_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return Candidate(
            name=folder_name,
            manifest=None,
            raw=None,
            fingerprint="",
            **common,
            problem=Problem(
                ReasonCode.MANIFEST_UNREADABLE,
                f"{manifest_path}: cannot read the file: {exc.strerror or exc}",
            ),
        )
    fingerprint = hashlib.sha256(data).hexdigest()
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            fault = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        elif isinstance(exc, RecursionError):
            fault = "invalid JSON: arrays or objects nested too deeply to parse"
        else:
            fault = f"invalid JSON at not UTF-8: {exc}"
        return Candidate(
            name=folder_name,
            manifest=None,
            raw=None,
            fingerprint=fingerprint,
            **common,
            problem=Problem(ReasonCode.MANIFEST_UNREADABLE, f"{manifest_path}: {fault}"),
        )
    try:
        manifest = parse_manifest(raw, manifest_path)
    except ManifestError as err:
        return Candidate(
            name=_name_from_raw(raw, folder_name),
            manifest=None,
            raw=raw if isinstance(raw, dict) else None,
            fingerprint=fingerprint,
            **common,
            problem=Problem(err.code, err.summary, tuple(i.as_dict() for i in err.issues)),
        )
    return Candidate(
        name=manifest.name, manifest=manifest, raw=raw, fingerprint=fingerprint, **common
    )


def scan_directories(dirs: list[Path]) -> list[Candidate]:
    found: list[Candidate] = []
    for index, base in enumerate(dirs):
        for name, folder, manifest_path, stamp in _plugin_entries(base):
            rank = (1, index, name)
            hit = _cache.get(manifest_path)  # the hit path of _cached, inlined: a warm re-scan
            if hit is not None and hit[0] == stamp and hit[1].rank == rank:  # is this loop
                found.append(hit[1])
            else:
                found.append(_cached(manifest_path, stamp, folder, rank))
    return found

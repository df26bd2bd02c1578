"""Scan plugin directories: each sub-folder holding a plugin_manifest.json is a plugin.

Results are cached per manifest file on (mtime, size, inode), so a re-scan where nothing
changed costs a directory listing and one stat per plugin, not a read and a parse.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from ..errors import ReasonCode
from ..manifest.validation import MANIFEST_FILENAME, ManifestError, parse_manifest
from .candidate import Candidate, Problem, Source

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_cache: dict[str, tuple[tuple[int, int, int], Candidate]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def iter_plugin_folders(base: Path) -> list[Path]:
    """Sub-folders of ``base`` that hold a manifest, sorted by name (the tie-break rule)."""
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [
        Path(e.path)
        for e in entries
        if e.is_dir()
        and not e.name.startswith((".", "_"))
        and os.path.isfile(os.path.join(e.path, MANIFEST_FILENAME))
    ]


def _name_from_raw(raw: Any, fallback: str) -> str:
    try:
        name = raw["plugin"]["name"]
    except (TypeError, KeyError):
        return fallback
    return name if isinstance(name, str) and _NAME_RE.match(name) else fallback


def scan_directory_plugin(folder: Path, rank: tuple[Any, ...] = ()) -> Candidate:
    """Read and validate one plugin folder (or a manifest file's folder), using the cache."""
    manifest_path = folder / MANIFEST_FILENAME
    key = str(manifest_path)
    try:
        st = os.stat(manifest_path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        stamp = (0, 0, 0)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp and stamp != (0, 0, 0):
        cand = hit[1]
        return cand if cand.rank == rank else _replace_rank(cand, rank)
    cand = _read(folder, manifest_path, rank)
    with _cache_lock:
        _cache[key] = (stamp, cand)
    return cand


def _replace_rank(cand: Candidate, rank: tuple[Any, ...]) -> Candidate:
    from dataclasses import replace

    return replace(cand, rank=rank)


def _read(folder: Path, manifest_path: Path, rank: tuple[Any, ...]) -> Candidate:
    folder_name = folder.name
    common: dict[str, Any] = {
        "source": Source.DIRECTORY,
        "location": str(folder),
        "root": folder,
        "rank": rank,
    }
    try:
        data = manifest_path.read_bytes()
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
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = (
            f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
            if isinstance(exc, json.JSONDecodeError)
            else f"not UTF-8: {exc}"
        )
        return Candidate(
            name=folder_name,
            manifest=None,
            raw=None,
            fingerprint=fingerprint,
            **common,
            problem=Problem(
                ReasonCode.MANIFEST_UNREADABLE, f"{manifest_path}: invalid JSON at {where}"
            ),
        )
    try:
        manifest = parse_manifest(raw, str(manifest_path))
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
        for folder in iter_plugin_folders(base):
            found.append(scan_directory_plugin(folder, rank=(1, index, folder.name)))
    return found

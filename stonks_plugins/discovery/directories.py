"""Scan plugin directories: each sub-folder holding a plugin_manifest.json is a plugin.

Results are cached per directory on the names it listed and the stamp (mtime, size, inode)
of each manifest, so a re-scan where nothing changed costs a directory listing and one stat
per plugin, not a read and a parse. ``scan_directory_plugin`` (one folder, for ``validate``
and the test kit) keeps its own per-file cache on the same stamps.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import threading
from pathlib import Path
from typing import Any

from .. import compat
from ..errors import ReasonCode
from ..manifest import validation
from ..manifest.validation import (
    MANIFEST_FILENAME,
    ManifestError,
    fast_parse_manifest,
    parse_manifest,
)
from .candidate import (
    DIGEST_FROM_MANIFEST,
    RAW_FROM_MANIFEST,
    Candidate,
    Problem,
    Source,
    deferred_path,
    digest,
)
from .entry_points import forget_entry_points

Stamp = tuple[int, int, int]
"""A manifest file's (mtime_ns, size, inode): a change to any says the file changed."""
_Listing = tuple[list[str], list[Stamp | None], list[Candidate]]
"""A scanned directory: the names listed, the stamp of each one's manifest (None: not a
plugin folder), and the candidates found."""

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_cache: dict[str, tuple[Stamp, Candidate]] = {}
"""Per manifest file read by ``scan_directory_plugin``: its stamp when read, and the
candidate."""
_listings: dict[tuple[int, str], _Listing] = {}
"""Per scanned directory (position in PLUGIN_DIRS, path): what the last scan saw."""
_cache_lock = threading.Lock()
_generation = 0
"""Bumped by ``clear_cache``; see :func:`generation`."""
_SEP_MANIFEST = os.sep + MANIFEST_FILENAME
S_ISREG = stat.S_ISREG
_O_RDONLY = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_O_PROBE = _O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
"""Opening a name before knowing it is a regular file: a FIFO must not block the scan
until a writer comes, nor a terminal become ours (the open file's stat then skips both)."""
_CHUNK = 1 << 16


def clear_cache() -> None:
    """Forget every scanned manifest, and the memoised checks behind them. The catalog's
    verdicts, built on top of these scans, are forgotten too: it compares :func:`generation`
    with the one it built them at (this module sits below the catalog and does not call it)."""
    global _generation
    with _cache_lock:
        _cache.clear()
        _listings.clear()
        _generation += 1
    forget_entry_points()
    validation.clear_memos()
    compat.clear_memos()


def generation() -> int:
    """How many times :func:`clear_cache` ran: a memo built on a scan is stale once this
    moved on."""
    return _generation


def _listing(base: Path) -> tuple[list[str], str]:
    """The names in ``base`` that may be plugin folders, sorted (the tie-break rule), and the
    prefix that spells a folder as ``str(base / name)`` would. Whether a name is a folder is
    left to the manifest's stat: a file has no ``NAME/plugin_manifest.json``."""
    prefix = str(base)
    try:
        names = sorted(os.listdir(prefix))
    except (FileNotFoundError, NotADirectoryError):
        return [], ""
    prefix = "" if prefix == "." else prefix if prefix.endswith(os.sep) else prefix + os.sep
    return [n for n in names if n[0] not in "._"], prefix


def iter_plugin_folders(base: Path) -> list[Path]:
    """Sub-folders of ``base`` that hold a manifest, sorted by name (the tie-break rule)."""
    names, prefix = _listing(base)
    return [Path(prefix + n) for n in names if _stamp_of(prefix + n + _SEP_MANIFEST)]


def read_file(path: str) -> bytes:
    """The bytes of a file, through the os module: a manifest is a few kilobytes, and
    ``open().read()`` spends more time building its buffered file object than reading.
    ``_open_manifest`` is this plus the stat a cache needs; the discovery benchmark's
    floors read with this, so discovery's reads earn it nothing against them."""
    fd = os.open(path, _O_RDONLY)
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def _read_fd(fd: int, size: int = _CHUNK - 1) -> bytes:
    """The rest of an open file; ``size`` is what its stat says it holds, if known (one
    byte more is asked for, to see the end)."""
    want = size + 1
    chunk = os.read(fd, want)
    if len(chunk) < want:
        return chunk  # the usual case: a regular file's read stops short only at its end
    chunks = [chunk]
    while chunk:
        chunk = os.read(fd, _CHUNK)
        chunks.append(chunk)
    return b"".join(chunks)


def _name_from_raw(raw: Any, fallback: str) -> str:
    try:
        name = raw["plugin"]["name"]
    except (TypeError, KeyError):
        return fallback
    return name if isinstance(name, str) and _NAME_RE.match(name) else fallback


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _open_manifest(path: str) -> tuple[Stamp, bytes | OSError] | None:
    """Stamp and bytes of a manifest never seen before, with one open (its stat is of the
    open file, so stamp and bytes agree); None when ``path`` is no manifest file, which is
    how a listed name that is not a plugin folder is told apart. An error reading a
    manifest that exists comes back in place of the bytes: the plugin is listed as
    unreadable."""
    try:
        fd = os.open(path, _O_PROBE)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # e.g. no permission: a manifest, if the file is one
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (_stamp(st), exc) if S_ISREG(st.st_mode) else None
    try:
        st = os.fstat(fd)
        if not S_ISREG(st.st_mode):
            return None
        try:
            return _stamp(st), _read_fd(fd, st.st_size)
        except OSError as exc:
            return _stamp(st), exc
    finally:
        os.close(fd)


def scan_directory_plugin(folder: Path, rank: tuple[Any, ...] = ()) -> Candidate:
    """Read and validate one plugin folder (or a manifest file's folder), using the cache."""
    key = str(folder / MANIFEST_FILENAME)
    stamp = _stamp_of(key)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and stamp is not None and hit[0] == stamp:
        cand = hit[1] if hit[1].rank == rank else hit[1].evolve(rank=rank)
    else:
        # Read as the directory scan reads: one open gives the stamp and the bytes, so the
        # two agree even when the file changes in between.
        opened = _open_manifest(key)
        data: bytes | OSError
        if opened is None:
            data = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        else:
            stamp, data = opened
        cand = _candidate(key, data, str(folder), folder.name, folder, rank)
    if stamp is not None:
        with _cache_lock:
            _cache[key] = (stamp, cand)
    return cand


def _candidate(
    manifest_path: str,
    data: bytes | OSError,
    location: str,
    folder_name: str,
    root: Path,
    rank: tuple[Any, ...],
) -> Candidate:
    """The candidate of one manifest file's bytes (or of the error reading them).
    ``folder_name`` is its name when the manifest gives none that can be used."""
    if isinstance(data, OSError):
        problem = Problem(
            ReasonCode.MANIFEST_UNREADABLE,
            f"{manifest_path}: cannot read the file: {data.strerror or data}",
        )
        return Candidate.quick(
            folder_name, Source.DIRECTORY, location, root, None, None, "", problem, rank
        )
    try:
        manifest = fast_parse_manifest(data, manifest_path)
    except ManifestError as err:  # matches the schema, breaks a rule
        raw = json.loads(data.decode("utf-8-sig"))
        return _invalid(folder_name, location, root, raw, digest(data), rank, err)
    if manifest is not None:  # the usual case: valid; raw and fingerprint made on demand
        return Candidate.quick(
            manifest.plugin.name,
            Source.DIRECTORY,
            location,
            root,
            manifest,
            RAW_FROM_MANIFEST,
            DIGEST_FROM_MANIFEST,
            None,
            rank,
        )
    # The slow path decides: parse with json, check with jsonschema.
    fingerprint = digest(data)
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            fault = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        elif isinstance(exc, RecursionError):
            fault = "invalid JSON: arrays or objects nested too deeply to parse"
        else:
            fault = f"not UTF-8: {exc}"
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
            rank,
        )
    try:
        manifest = parse_manifest(raw, manifest_path)
    except ManifestError as err:
        return _invalid(folder_name, location, root, raw, fingerprint, rank, err)
    return Candidate.quick(
        manifest.name, Source.DIRECTORY, location, root, manifest, raw, fingerprint, None, rank
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
        rank,
    )


def _unchanged(prefix: str, names: list[str], stamps: list[Stamp | None]) -> bool:
    """Whether every listed name still is (or still is not) a plugin with the same
    manifest stamp. Nothing it builds outlives an iteration, so a re-scan of an unchanged
    directory does not wake the garbage collector."""
    return all(
        _stamp_of(prefix + name + _SEP_MANIFEST) == stamp
        for name, stamp in zip(names, stamps, strict=True)
    )


def _scan(index: int, prefix: str, names: list[str], last: _Listing | None) -> _Listing:
    """Every plugin folder of one directory. A manifest the last scan of this directory
    found is stat'ed and its candidate reused when its stamp is the same; any other one is
    read."""
    known: dict[str, tuple[Stamp, Candidate]] = {}
    if last is not None:  # a change in a directory scanned before: reuse what did not change
        found = iter(last[2])  # the candidates, in the order of the names that have a stamp
        known = {n: (s, next(found)) for n, s in zip(last[0], last[1], strict=True) if s}
    stamps: list[Stamp | None] = []
    cands: list[Candidate] = []
    for name in names:
        folder = prefix + name
        path = folder + _SEP_MANIFEST
        hit = known.get(name)
        if hit is not None and _stamp_of(path) == hit[0]:
            stamp, cand = hit
        else:
            opened = _open_manifest(path)
            if opened is None:  # not (or no longer) a plugin folder
                stamps.append(None)
                continue
            stamp, data = opened
            # The root is a Path only if somebody asks for it (deferred_path).
            cand = _candidate(path, data, folder, name, deferred_path(folder), (1, index, name))
        stamps.append(stamp)
        cands.append(cand)
    return names, stamps, cands


def _stamp_of(path: str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _stamp(st) if S_ISREG(st.st_mode) else None


def scan_directories(dirs: list[Path]) -> list[Candidate]:
    """One candidate per plugin folder.

    A re-scan lists each directory and stats each manifest; when every name and stamp in
    a directory is what the last scan saw, its candidates are reused as a whole, otherwise
    only the manifests that changed are read again (``_scan``)."""
    found: list[Candidate] = []
    for index, base in enumerate(dirs):
        names, prefix = _listing(base)
        key = (index, prefix)
        last = _listings.get(key)
        if last is None or last[0] != names or not _unchanged(prefix, names, last[1]):
            last = _scan(index, prefix, names, last)
            with _cache_lock:
                _listings[key] = last
        found += last[2]
    return found

"""Scan plugin directories: each sub-folder holding a plugin_manifest.json is a plugin.

Results are cached per directory on the names it listed and the stamp (mtime, size, inode)
of each manifest, so a re-scan where nothing changed costs a directory listing and one stat
per plugin, not a read and a parse. ``scan_directory_plugin`` (one folder, for ``validate``
and the test kit) keeps its own per-file cache on the same stamps.

What a stranger's folder may hold is read with care (:mod:`stonks_plugins.plugin_files`): a
manifest that is not a regular file (a FIFO, a device) makes no plugin folder and is never
read, one over ``PLUGINS_MAX_MANIFEST_BYTES`` is ``manifest_unreadable`` with nothing of it
kept, and so is a folder whose name is not UTF-8 (it could be neither stored nor shown).
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path
from typing import Any

from .. import compatibility as compat
from ..errors import ReasonCode
from ..manifest import validation
from ..manifest.validation import MANIFEST_FILENAME
from ..plugin_files import (
    MANIFEST_SETTING,
    PluginFileError,
    forget_manifest_reads,
    manifest_limit,
    not_regular,
    open_regular,
    read_fd,
    take_manifest_read,
)
from .candidate import Candidate, Problem, Source, deferred_path
from .entry_points import forget_entry_points
from .manifest_bytes import candidate_from_bytes

Stamp = tuple[int, int, int]
"""A manifest file's (mtime_ns, size, inode): a change to any says the file changed."""
_Listing = tuple[list[str], list[Stamp | None], list[Candidate]]
"""A scanned directory: the names listed, the stamp of each one's manifest (None: not a
plugin folder), and the candidates found."""

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
_CHUNK = 1 << 16
_UNBOUNDED = sys.maxsize
_limit_seen = -1
"""``PLUGINS_MAX_MANIFEST_BYTES`` the caches were filled under (see :func:`_manifest_limit`)."""
_SHOWN_NAME = 150
"""Longest plugin name made of a folder name that is not UTF-8 (``Plugin.name`` holds 200)."""


def _manifest_limit() -> int:
    """The manifest size limit, read once per scan; a cache filled under another limit is
    forgotten (a manifest refused as too large may now be read, or the reverse)."""
    global _limit_seen
    limit = manifest_limit()
    if limit != _limit_seen:
        with _cache_lock:
            _cache.clear()
            _listings.clear()
            _limit_seen = limit
    return limit


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
    forget_manifest_reads()
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
        return read_fd(fd, _CHUNK - 1, _UNBOUNDED)
    finally:
        os.close(fd)


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _open_manifest(path: str, limit: int) -> tuple[Stamp, bytes | OSError] | None:
    """Stamp and bytes of a manifest never seen before, with one open (its stat is of the
    open file, so stamp and bytes agree); None when ``path`` is no manifest file (missing,
    or a FIFO, a device, a folder: never read), which is how a listed name that is not a
    plugin folder is told apart. An error reading a manifest that exists, or one over
    ``limit`` bytes, comes back in place of the bytes: the plugin is listed as unreadable.
    A manifest settings' ``plugin_apps()`` read at start-up is not read again."""
    early = take_manifest_read(path, limit)
    if early is not None:
        return _stamp(early[0]), early[1]
    try:
        fd, st = open_regular(path)
    except (FileNotFoundError, NotADirectoryError, PluginFileError):
        return None
    except OSError as exc:  # e.g. no permission: a manifest, if the file is one
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (_stamp(st), exc) if S_ISREG(st.st_mode) else None
    try:
        return _stamp(st), read_fd(fd, st.st_size, limit, path, MANIFEST_SETTING)
    except OSError as exc:  # including one too large (PluginFileError)
        return _stamp(st), exc
    finally:
        os.close(fd)


def _no_manifest(path: str) -> OSError:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return exc
    return not_regular(path, mode)


def scan_directory_plugin(folder: Path, rank: tuple[Any, ...] = ()) -> Candidate:
    """Read and validate one plugin folder (or a manifest file's folder), using the cache."""
    key = str(folder / MANIFEST_FILENAME)
    limit = _manifest_limit()
    stamp = _stamp_of(key)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and stamp is not None and hit[0] == stamp:
        cand = hit[1] if hit[1].rank == rank else hit[1].evolve(rank=rank)
    else:
        # Read as the directory scan reads: one open gives the stamp and the bytes, so the
        # two agree even when the file changes in between.
        opened = _open_manifest(key, limit)
        data: bytes | OSError
        if opened is None:  # asked for by name: say why it is no manifest
            data = _no_manifest(key)
        else:
            stamp, data = opened
        cand = candidate_from_bytes(
            data,
            key,
            Source.DIRECTORY,
            str(folder),
            folder,
            rank,
            folder.name,
            name_from_manifest=True,
        )
    if stamp is not None:
        with _cache_lock:
            _cache[key] = (stamp, cand)
    return cand


def _unchanged(prefix: str, names: list[str], stamps: list[Stamp | None]) -> bool:
    """Whether every listed name still is (or still is not) a plugin with the same
    manifest stamp. Nothing it builds outlives an iteration, so a re-scan of an unchanged
    directory does not wake the garbage collector."""
    return all(
        _stamp_of(prefix + name + _SEP_MANIFEST) == stamp
        for name, stamp in zip(names, stamps, strict=True)
    )


def _misnamed(folder: str, rank: tuple[Any, ...]) -> Candidate:
    """The candidate of a plugin folder whose path is not UTF-8 (``os.listdir`` hands it
    back with surrogates): listed under its name with the bad bytes spelled ``\\xff``, so
    it can be stored and shown, and never read or loaded."""
    raw_path = os.fsencode(folder)
    shown = raw_path.decode("utf-8", "backslashreplace")
    name = shown.rpartition(os.sep)[2][:_SHOWN_NAME] or shown[:_SHOWN_NAME]
    problem = Problem(
        ReasonCode.MANIFEST_UNREADABLE,
        f"{shown}: the folder's path is not valid UTF-8 ({os.path.basename(raw_path)!r}), so "
        "the plugin in it can be neither stored nor shown; rename the folder with a UTF-8 "
        "name (e.g. ASCII letters, digits and '-') and sync again. Its manifest was not read.",
    )
    return Candidate.quick(name, Source.DIRECTORY, shown, None, None, None, "", problem, rank)


def _is_text(path: str) -> bool:
    """Whether a path from ``os.listdir`` is valid UTF-8 (undecodable bytes come back as
    lone surrogates, which no database stores)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scan(index: int, prefix: str, names: list[str], last: _Listing | None, limit: int) -> _Listing:
    """Every plugin folder of one directory. A manifest the last scan of this directory
    found is stat'ed and its candidate reused when its stamp is the same; any other one is
    read (at most ``limit`` bytes of it)."""
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
        elif not folder.isascii() and not _is_text(folder):
            misnamed_stamp = _stamp_of(path)
            if misnamed_stamp is None:  # not a plugin folder
                stamps.append(None)
                continue
            stamp, cand = misnamed_stamp, _misnamed(folder, (1, index, name))
        else:
            opened = _open_manifest(path, limit)
            if opened is None:  # not (or no longer) a plugin folder
                stamps.append(None)
                continue
            stamp, data = opened
            # The root is a Path only if somebody asks for it (deferred_path).
            root = deferred_path(folder)
            rank = (1, index, name)
            cand = candidate_from_bytes(
                data, path, Source.DIRECTORY, folder, root, rank, name, name_from_manifest=True
            )
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
    limit = _manifest_limit()
    for index, base in enumerate(dirs):
        names, prefix = _listing(base)
        key = (index, prefix)
        last = _listings.get(key)
        if last is None or last[0] != names or not _unchanged(prefix, names, last[1]):
            last = _scan(index, prefix, names, last, limit)
            with _cache_lock:
                _listings[key] = last
        found += last[2]
    return found

"""The plugin entry points of the installed distributions, found once per process.

Settings (``django_apps.plugin_apps``, for ``INSTALLED_APPS``) and ``ready()`` (discovery)
both need them, so one scan serves both: it is kept, and reused while no import path folder
changed (installing or removing a distribution adds or removes its ``.dist-info`` there,
which changes the folder's mtime).

Why not ``importlib.metadata.entry_points()``: it parses every distribution's
``entry_points.txt`` into objects, and each ``EntryPoint.dist.metadata`` read parses
``METADATA`` again with the e-mail parser. Here a distribution's ``entry_points.txt`` is read
as bytes and parsed only when it names a plugin group, and the ``METADATA`` of a distribution
that does is read once, for its name and version. The distributions, and which copy of one
installed twice counts, are ``importlib.metadata.distributions()``'s, as for
``entry_points()``.

Standard library only: settings import this before Django is set up.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import pathlib
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import Any, NamedTuple

GROUPS: dict[str, str] = {
    "stonks_overwatch.brokers": "broker",
    "stonks_overwatch.aggregators": "aggregator",
    "stonks_overwatch.views": "view",
    "stonks_overwatch.middleware": "middleware",
}
"""Entry point group -> the plugin type its plugins must declare."""
MANIFEST_FILENAME = "plugin_manifest.json"  # == manifest.validation.MANIFEST_FILENAME

_MARK = b"stonks_overwatch."
"""Every group's prefix: a distribution whose entry_points.txt lacks it announces no plugin."""
_ORDER = {group: i for i, group in enumerate(GROUPS)}
_GROUP_NAMES = {group: group for group in GROUPS}
_O_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 16
_METADATA_LIMIT = 16 << 20
"""Largest metadata file read (a real one is a few KB; this only bounds a broken one)."""
_HEAD = 4096
"""Bytes of METADATA read first: Name and Version come first in every tool's output."""
_MODULE = re.compile(r"[\w.]+")
"""The module part of an entry point's value, as importlib.metadata reads it."""
_NORMALIZE = re.compile(r"[-_.]+")


class InstalledEntryPoint(NamedTuple):
    """One plugin entry point of an installed distribution, with where its manifest is.
    (A NamedTuple: immutable, small, and quick to define in a module settings import.)"""

    name: str
    group: str
    value: str
    """``package.module:Class``, as written in the distribution's ``entry_points.txt``."""
    distribution: str | None
    """``NAME==VERSION`` of the distribution that declares it."""
    package_dir: str | None
    """Folder of the entry point's top-level package, where its manifest ships; found
    without importing it (``find_spec`` of a top-level package does not execute it)."""
    manifest: str | None
    """Where the manifest should be: in ``package_dir`` (not checked: its readers open it,
    see :func:`recorded_manifest` when it is not there), else the distribution's own file
    of that name in that package (a package ``find_spec`` cannot see); None for none."""

    @property
    def module(self) -> str:
        found = _MODULE.match(self.value)
        return found.group() if found else ""

    @property
    def top(self) -> str:
        """The top-level package the entry point's module is in."""
        return self.module.split(".", 1)[0]


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


def plugin_entry_points() -> tuple[InstalledEntryPoint, ...]:
    """Every plugin entry point of the installed distributions, in group order (brokers,
    aggregators, views, middleware), then by name, then in ``sys.path`` order. Scanned on
    the first call in a process, then again only when an import path folder changed."""
    global _last
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
    path = _ImportPath()
    for folder, key, dist, index in _distributions(path):
        if key is None:
            key = _normalize(_dist(folder, dist).metadata["Name"] or "")
        if key in seen:
            continue  # a later copy on sys.path is not the one installed (entry_points() too)
        seen.add(key)
        data = _read(folder, dist, "entry_points.txt")
        if data is None or _MARK not in data:
            continue
        entries = _plugin_entries(data.decode("utf-8", "replace"))
        if not entries:
            continue
        label = _label(folder, dist)
        for group, ep_name, value in entries:
            ep = _entry_point(folder, dist, index, group, ep_name, value, label, path)
            found.append(((_ORDER[group], ep_name, len(found)), ep))
    found.sort(key=lambda item: item[0])
    return tuple(ep for _, ep in found)


Found = tuple[str | None, str | None, metadata.Distribution | None, int | None]
"""A distribution: its ``.dist-info`` folder and normalized name, as read off the listing
of a ``sys.path`` folder, with that folder's position; or, from anywhere else, the
``Distribution`` importlib.metadata made."""


def _distributions(path: _ImportPath) -> Iterator[Found]:
    """The installed distributions in ``importlib.metadata.distributions()``'s order: each
    finder on ``sys.meta_path`` that finds distributions, in turn. The path finder's are the
    ``.dist-info`` and ``.egg-info`` folders of each ``sys.path`` folder, read off the one
    listing of it this scan makes (importlib.metadata builds a ``Path`` and a
    ``Distribution`` for each of them); an entry that is not a plain folder (a zip file, an
    ``.egg``) is importlib.metadata's to read."""
    context = metadata.DistributionFinder.Context()
    for finder in sys.meta_path:
        find = getattr(finder, "find_distributions", None)
        if find is None:
            continue
        if finder is not importlib.machinery.PathFinder:
            for dist in find(context):
                yield None, None, dist, None
            continue
        for index, entry in enumerate(sys.path):
            names = path.names(index)
            if not isinstance(entry, str):
                continue
            if names is None or entry.lower().endswith(".egg"):
                one = metadata.DistributionFinder.Context(path=[entry])
                for dist in importlib.machinery.PathFinder.find_distributions(one):
                    yield None, None, dist, None
                continue
            by_name: dict[str, list[str]] = {}
            for child in names:
                low = child.lower()
                if low.endswith((".dist-info", ".egg-info")):
                    key = _normalize(low.rpartition(".")[0].partition("-")[0])
                    by_name.setdefault(key, []).append(child)
            base = entry or "."
            for key, children in by_name.items():
                for child in children:
                    yield f"{base}{os.sep}{child}", key, None, index


def _dist(folder: str | None, dist: metadata.Distribution | None) -> metadata.Distribution:
    """The ``Distribution`` of a folder read off a listing (made when a rare case needs it:
    its file list, metadata beyond Name and Version)."""
    if dist is not None:
        return dist
    assert folder is not None
    return metadata.PathDistribution(pathlib.Path(folder))


def _folder_name(folder: pathlib.PurePath) -> str | None:
    """The normalized project name of a ``NAME-VERSION.dist-info`` (or ``.egg-info``)
    folder, as importlib.metadata derives it, without reading a file."""
    stem, dot, ext = folder.name.rpartition(".")
    if not dot or ext.lower() not in ("dist-info", "egg-info"):
        return None
    return _normalize(stem.partition("-")[0])


def _normalize(name: str) -> str:
    if "-" not in name and "." not in name and "__" not in name:
        return name.lower()  # the usual folder name: nothing to collapse
    return _NORMALIZE.sub("_", name).lower()


def _read(folder: str | None, dist: metadata.Distribution | None, name: str) -> bytes | None:
    """A metadata file's bytes, or None when the distribution has none."""
    if folder is None:  # a zip file, or a finder's own kind of distribution
        text = _dist(folder, dist).read_text(name)
        return text.encode("utf-8") if text is not None else None
    return _read_file(f"{folder}{os.sep}{name}", _METADATA_LIMIT)


def _read_file(path: str, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of a file, None when it cannot be read. Opened without blocking
    (a FIFO reads as empty) and read in chunks (a directory fails the read): two system calls
    for a small file, where ``read_plugin_file`` adds an ``fstat``, for the ~200 files of a
    scan."""
    try:
        fd = os.open(path, _O_READ)
    except OSError:
        return None
    try:
        chunk = os.read(fd, min(_CHUNK, limit))
        if len(chunk) < _CHUNK or len(chunk) >= limit:
            return chunk
        chunks = [chunk]
        total = len(chunk)
        while chunk and total < limit:
            chunk = os.read(fd, min(_CHUNK, limit - total))
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _plugin_entries(text: str) -> list[tuple[str, str, str]]:
    """``(group, name, value)`` of the plugin groups' entries of an ``entry_points.txt``
    (the INI-like format importlib.metadata reads: ``[group]`` lines, ``name = value``
    lines, comments starting with ``#`` or ``;``)."""
    entries: list[tuple[str, str, str]] = []
    group: str | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            group = _GROUP_NAMES.get(line[1:-1].strip())  # one string per group, kept
            continue
        if group is not None:
            name, eq, value = line.partition("=")
            if eq:
                entries.append((group, name.strip(), value.strip()))
    return entries


def _label(folder: str | None, dist: metadata.Distribution | None) -> str:
    """``NAME==VERSION`` from the distribution's METADATA (PKG-INFO for an egg), read once
    and only as far as those two fields."""
    for filename in ("METADATA", "PKG-INFO"):
        head = _head(folder, dist, filename)
        if head is not None:
            break
    else:
        head = b""
    end = head.find(b"\n\n")  # the headers end at the first empty line
    headers = head if end < 0 else head[: end + 1]
    name, version = _field(headers, b"\nName:"), _field(headers, b"\nVersion:")
    if name is None or version is None:  # spelled otherwise: every header line, any case
        fields: dict[bytes, bytes] = {}
        for line in headers.splitlines():
            key, colon, value = line.partition(b":")
            if colon:
                fields.setdefault(key.strip().lower(), value.strip())
        name, version = fields.get(b"name"), fields.get(b"version")
    if (name is None or version is None) and end < 0 and len(head) >= _HEAD:
        message = _dist(folder, dist).metadata  # unusually long headers: the whole file decides
        return f"{message['Name']}=={message['Version']}"
    return f"{_text(name)}=={_text(version)}"


def _field(headers: bytes, key: bytes) -> bytes | None:
    """The value of the header line ``key`` (with the newline before it), as every tool
    writes Name and Version."""
    start = headers.find(key)
    if start < 0:
        return None
    start += len(key)
    stop = headers.find(b"\n", start)
    return headers[start : stop if stop >= 0 else None].strip()


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


def _head(folder: str | None, dist: metadata.Distribution | None, name: str) -> bytes | None:
    if folder is None:
        return _read(folder, dist, name)
    return _read_file(f"{folder}{os.sep}{name}", _HEAD)


def _entry_point(
    folder: str | None,
    dist: metadata.Distribution | None,
    index: int | None,
    group: str,
    name: str,
    value: str,
    label: str,
    path: _ImportPath,
) -> InstalledEntryPoint:
    found = _MODULE.match(value)
    top = found.group().split(".", 1)[0] if found else ""
    package_dir = path.package_dir(top, index) if top else None
    if package_dir is not None:  # whoever reads it finds out whether it is there
        manifest: str | None = f"{package_dir}{os.sep}{MANIFEST_FILENAME}"
    else:
        manifest = _dist_manifest(_dist(folder, dist), top) if top else None
    return InstalledEntryPoint(name, group, value, label, package_dir, manifest)


class _ImportPath:
    """``sys.path`` as one scan sees it: each entry listed once, the listing serving both to
    find the distributions in a folder and to tell the folder ``import TOP`` would load a
    top-level package from, as ``find_spec`` finds it, without a ``stat`` of every entry for
    every package. Only the usual case is answered that way (no finder before the path
    claims ``TOP``, no earlier entry holds anything named ``TOP``, and the distribution's own
    folder holds the package ``TOP``); anything else is ``find_spec``'s to say."""

    def __init__(self) -> None:
        path_finder = importlib.machinery.PathFinder
        meta = sys.meta_path
        self._before = (  # BuiltinImporter's answer is sys.builtin_module_names
            [
                f
                for f in meta[: meta.index(path_finder)]
                if f is not importlib.machinery.BuiltinImporter
            ]
            if path_finder in meta
            else None
        )
        # Where file names match case-insensitively the listing's spelling does not decide.
        self._exact = not (
            sys.platform.startswith(("win", "cygwin", "darwin")) and ("PYTHONCASEOK" in os.environ)
        )
        self._names: dict[int, list[str] | None] = {}
        self._before_index: dict[int, tuple[frozenset[str], list[str]]] = {}
        self._own: dict[int, frozenset[str]] = {}
        self._finders: dict[str, Any] = {}

    def names(self, index: int) -> list[str] | None:
        """The names in ``sys.path[index]``: empty for a folder that cannot be read or an
        entry nothing can be imported from (the import system finds nothing there either);
        None for an entry that is not a folder (a zip file, a path hook's own entry)."""
        if index in self._names:
            return self._names[index]
        entry = sys.path[index]
        names: list[str] | None = []
        if isinstance(entry, str):  # the import system skips anything else
            where = entry or "."
            try:
                names = os.listdir(where)
            except OSError:  # unreadable: nothing there; else a zip file, a hook's entry...
                names = [] if os.path.isdir(where) else None
        self._names[index] = names
        return names

    def _earlier(self, index: int) -> tuple[frozenset[str], list[str]]:
        """The names in the folders before ``sys.path[index]``, as one set, and the entries
        before it that are not folders, in order (made once per position)."""
        found = self._before_index.get(index)
        if found is None:
            names: set[str] = set()
            opaque: list[str] = []
            for earlier in range(index):
                listed = self.names(earlier)
                if listed is None:
                    opaque.append(sys.path[earlier])
                else:
                    names.update(listed)
            found = self._before_index[index] = (frozenset(names), opaque)
        return found

    def _finder(self, entry: str) -> Any:
        """The path-entry finder the import system uses for ``entry`` (None: nothing can be
        imported from it; ``...``: one that cannot be told without importing), found as
        ``PathFinder`` finds it: its cache, else the first path hook that accepts it."""
        found = self._finders.get(entry, _UNSEEN)
        if found is _UNSEEN:
            found = sys.path_importer_cache.get(entry, _UNSEEN)
            if found is _UNSEEN:
                found = None
                for hook in sys.path_hooks:
                    try:
                        found = hook(entry)
                        break
                    except ImportError:
                        continue
                    except Exception:  # a hook that fails otherwise: ask the import system
                        found = ...
                        break
            self._finders[entry] = found
        return found

    def _shadowed(self, top: str, index: int) -> bool:
        """Whether an entry before ``sys.path[index]`` may provide ``top``: a folder holding
        ``top`` (a package, or a namespace portion), or a module ``top.py``, ``top.so``...;
        or an entry that is not a folder whose path-entry finder finds it (one not made yet
        counts as yes). Or ``sys.path[index]`` itself holds no ``top``."""
        names, opaque = self._earlier(index)
        if not names.isdisjoint((top, *(top + suffix for suffix in _SUFFIXES))):
            return True
        for entry in opaque:
            finder = self._finder(entry)
            if finder is ... or (finder is not None and finder.find_spec(top) is not None):
                return True
        own = self._own.get(index)
        if own is None:
            listed = self.names(index)
            own = self._own[index] = frozenset(listed or ())
        return top not in own

    def package_dir(self, top: str, index: int | None) -> str | None:
        """The folder of top-level package ``top`` for a distribution found in
        ``sys.path[index]`` (None: elsewhere)."""
        if index is None or self._before is None or not self._exact or top in sys.modules:
            return _spec_dir(top)
        if top in sys.builtin_module_names:
            return _spec_dir(top)
        for finder in self._before:  # they come first: a name one claims is not the folder's
            if finder.find_spec(top, None) is not None:
                return _spec_dir(top)
        if self._shadowed(top, index):
            return _spec_dir(top)
        entry = sys.path[index]
        if os.path.isfile(f"{entry or '.'}{os.sep}{top}{os.sep}__init__.py"):
            return _as_found(entry, top)
        return _spec_dir(top)


_UNSEEN: Any = object()
_SUFFIXES = tuple(importlib.machinery.all_suffixes())
"""What a module file's name may end with (``.py``, ``.pyc``, the extension suffixes)."""


def _as_found(entry: str, top: str) -> str:
    """The package folder as ``find_spec`` spells it (its ``FileFinder`` makes the
    ``sys.path`` entry absolute, without normalising it, then joins)."""
    if not entry or entry == ".":
        base = os.getcwd()
    elif not os.path.isabs(entry):
        base = os.path.join(os.getcwd(), entry)
    else:
        base = entry
    return base.rstrip(_SEPARATORS) + os.sep + top


_SEPARATORS = os.sep + (os.altsep or "")


def _spec_dir(top: str) -> str | None:
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(next(iter(spec.submodule_search_locations)))


def recorded_manifest(ep: InstalledEntryPoint) -> str | None:
    """The manifest the distribution's file list (RECORD) names in the entry point's package,
    for one that is not in ``package_dir`` (an editable install's package may live apart
    from what the distribution recorded)."""
    name = (ep.distribution or "").partition("==")[0]
    try:
        dist = metadata.distribution(name)
    except (metadata.PackageNotFoundError, ValueError):
        return None
    return _dist_manifest(dist, ep.top) if ep.top else None


def _dist_manifest(dist: metadata.Distribution, top: str) -> str | None:
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

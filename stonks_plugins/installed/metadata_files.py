"""The installed distributions and their metadata files, read as bytes.

``importlib.metadata`` parses every distribution's ``entry_points.txt`` into objects and
``METADATA`` with the e-mail parser; here a file is read only as far as the scan needs it:
``entry_points.txt`` parsed only when it names a plugin group, ``METADATA`` only for its
Name and Version. The distributions, and their order, are
``importlib.metadata.distributions()``'s.
"""

from __future__ import annotations

import importlib.machinery
import os
import pathlib
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import TYPE_CHECKING

from .entry_point import GROUPS

if TYPE_CHECKING:
    from .import_path import ImportPath

_GROUP_NAMES = {group: group for group in GROUPS}
_O_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 16
_METADATA_LIMIT = 16 << 20
"""Largest metadata file read (a real one is a few KB; this only bounds a broken one)."""
_HEAD = 4096
"""Bytes of METADATA read first: Name and Version come first in every tool's output."""
_NORMALIZE = re.compile(r"[-_.]+")

Found = tuple[str | None, str | None, metadata.Distribution | None, int | None]
"""A distribution: its ``.dist-info`` folder and normalized name, as read off the listing
of a ``sys.path`` folder, with that folder's position; or, from anywhere else, the
``Distribution`` importlib.metadata made."""


def distributions(path: ImportPath) -> Iterator[Found]:
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
                    key = normalize(low.rpartition(".")[0].partition("-")[0])
                    by_name.setdefault(key, []).append(child)
            base = entry or "."
            for key, children in by_name.items():
                for child in children:
                    yield f"{base}{os.sep}{child}", key, None, index


def distribution(folder: str | None, dist: metadata.Distribution | None) -> metadata.Distribution:
    """The ``Distribution`` of a folder read off a listing (made when a rare case needs it:
    its file list, metadata beyond Name and Version)."""
    if dist is not None:
        return dist
    assert folder is not None
    return metadata.PathDistribution(pathlib.Path(folder))


def normalize(name: str) -> str:
    if "-" not in name and "." not in name and "__" not in name:
        return name.lower()  # the usual folder name: nothing to collapse
    return _NORMALIZE.sub("_", name).lower()


def read_metadata(
    folder: str | None, dist: metadata.Distribution | None, name: str
) -> bytes | None:
    """A metadata file's bytes, or None when the distribution has none."""
    if folder is None:  # a zip file, or a finder's own kind of distribution
        text = distribution(folder, dist).read_text(name)
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


def plugin_entries(text: str) -> list[tuple[str, str, str]]:
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


def distribution_label(folder: str | None, dist: metadata.Distribution | None) -> str:
    """``NAME==VERSION`` from the distribution's METADATA (PKG-INFO for an egg), read once
    and only as far as those two fields."""
    name, version = name_and_version(folder, dist)
    return f"{name}=={version}"


class DistributionLabel:
    """:func:`distribution_label`, read the first time it is asked for: a scan of the entry
    points needs it only for what it keeps (settings' ``INSTALLED_APPS`` never does), and
    reading every plugin distribution's METADATA was a fifth of the scan. Compares, hashes
    and pickles as its text."""

    __slots__ = ("_dist", "_folder", "_text")

    def __init__(self, folder: str | None, dist: metadata.Distribution | None) -> None:
        self._folder = folder
        self._dist = dist
        self._text: str | None = None

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._text = distribution_label(self._folder, self._dist)
            self._folder = self._dist = None  # what it was read from is not kept
        return text

    def __repr__(self) -> str:
        return repr(str(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DistributionLabel | str):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return (str, (str(self),))


def distribution_version(dist: metadata.Distribution) -> str | None:
    """``dist.version``, read as far as the Version field: ``dist.version`` parses the whole
    METADATA with the e-mail parser, which costs start-up most of a millisecond for one
    field."""
    return name_and_version(None, dist)[1]


def name_and_version(
    folder: str | None, dist: metadata.Distribution | None
) -> tuple[str | None, str | None]:
    """The Name and Version fields of the distribution's METADATA (PKG-INFO for an egg)."""
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
        # unusually long headers: the whole file decides
        message = distribution(folder, dist).metadata
        return message["Name"], message["Version"]
    return _text(name), _text(version)


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
        return read_metadata(folder, dist, name)
    return _read_file(f"{folder}{os.sep}{name}", _HEAD)

"""What discovery found for one plugin.

Every process keeps a candidate for each discovered plugin for as long as it runs (the
discovery caches), so a candidate is small: slots, no instance dict, and a valid manifest kept
as its file's bytes once discovery is done with it (:meth:`Candidate.pack`): the parsed model
of a manifest takes three times the memory of its bytes and is decoded again, in microseconds,
when somebody reads it, then held in a small shared cache while it is in use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from ..errors import ReasonCode
from ..manifest.model import PluginManifest
from ..manifest.validation import fast_parse_manifest, json_from_bytes, parse_manifest


class _Sentinel:
    """A named stand-in that pickles as the module-level constant of that name."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


RAW_FROM_MANIFEST: Any = _Sentinel("RAW_FROM_MANIFEST")
"""Pass as ``Candidate(raw=...)`` when the raw dict is the manifest's own (``manifest.raw``):
it is then parsed from the file's bytes only if somebody reads it, and not kept by the
candidate (the manifest caches it while it is in use)."""


def deferred_path(path: str) -> Path:
    """Pass as ``Candidate(root=...)``: ``Path(path)``, built when somebody reads it, and not
    kept (a scan of many folders need not build a ``Path`` for each, nor a sync keep one)."""
    return cast(Path, path)


DIGEST_FROM_MANIFEST: Any = _Sentinel("DIGEST_FROM_MANIFEST")
"""Pass as ``Candidate(fingerprint=...)`` for a manifest decoded from a file's bytes: the
digest of those bytes (which the manifest keeps) is computed only if somebody reads it
(sync does; a scan that only looks at verdicts does not)."""


def digest(data: bytes) -> str:
    """A manifest file's fingerprint: the SHA-256 of its bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


class _Packed:
    """A valid manifest kept as the bytes of its file (see :meth:`Candidate.pack`)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Packed, (self.data,))


@lru_cache(maxsize=16)
def _unpack(packed: _Packed) -> PluginManifest:
    """The model of a packed manifest. The bytes passed validation when discovered, so the
    same decode accepts them again. Cached for the few plugins in use at a time (a sync
    reads one candidate's manifest several times in a row, a page the few it shows), so the
    cache's memory does not grow with the number of plugins."""
    manifest = fast_parse_manifest(packed.data, "", checked=True)
    if manifest is None:  # accepted by the slow path when found: it decides again
        manifest = parse_manifest(json_from_bytes(packed.data, ""), "")
    return manifest


def _source_of(manifest: Any) -> bytes | None:
    """The file's bytes a stored manifest (model or packed) was decoded from, if known."""
    if type(manifest) is _Packed:
        return manifest.data
    if manifest is None:
        return None
    return cast("bytes | None", manifest.__dict__.get("_source"))


class Source(StrEnum):
    ENTRY_POINT = "entry_point"
    DIRECTORY = "directory"
    LEGACY = "legacy"


@dataclass(frozen=True)
class Problem:
    """Why a plugin cannot run, as data: a stable code, a message, and details such as the
    JSON path of every manifest error."""

    code: ReasonCode
    message: str
    details: tuple[dict[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "details": list(self.details)}


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    source: Source
    location: str
    """Plugin folder (directories) or 'DIST==VERSION' (entry points)."""
    root: Path | None
    """Folder whose contents the manifest's dotted paths are relative to (directories)."""
    manifest: PluginManifest | None
    raw: dict[str, Any] | None
    """The manifest file as parsed JSON (None when it cannot be parsed); parsed on read for a
    valid manifest (see ``RAW_FROM_MANIFEST``)."""
    fingerprint: str
    """SHA-256 of the manifest file's bytes (hex); computed on first read for a scan."""
    problem: Problem | None = None
    entry_point: str | None = None
    group: str | None = None
    rank: tuple[Any, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def declared_name(self) -> str:
        manifest = self.manifest
        return manifest.name if manifest else self.name.split("@", 1)[0]

    @property
    def ok(self) -> bool:
        return self.problem is None and _MANIFEST.__get__(self) is not None

    @property
    def label(self) -> str:
        """Short location for a duplicate's name: folder name or distribution name."""
        if self.source is Source.DIRECTORY and self.root is not None:
            return self.root.name
        return self.location.split("==", 1)[0]

    def stored(self, field_name: str) -> Any:
        """A field as the candidate holds it: a stand-in (``RAW_FROM_MANIFEST``, a
        ``deferred_path``, a packed manifest) until it is read. For tests and diagnostics."""
        return _STORED[field_name].__get__(self)

    @classmethod
    def quick(
        cls,
        name: str,
        source: Source,
        location: str,
        root: Path | None,
        manifest: PluginManifest | None,
        raw: dict[str, Any] | None,
        fingerprint: str,
        problem: Problem | None = None,
        rank: tuple[Any, ...] = (),
        *,
        entry_point: str | None = None,
        group: str | None = None,
        warnings: tuple[str, ...] = (),
    ) -> Candidate:
        """``Candidate(...)`` for a scan, which builds one per plugin: the same instance,
        without the frozen dataclass's ``object.__setattr__`` call per field."""
        cand = _new(cls)
        values = (name, source, location, root, manifest, raw, fingerprint, problem)
        for put, value in zip(_PUT, (*values, entry_point, group, rank, warnings), strict=True):
            put(cand, value)
        return cand

    def pack(self) -> None:
        """Keep a valid manifest decoded from a file as that file's bytes from now on: read
        again, it is decoded again (and cached while in use). Discovery packs what it keeps
        once its verdicts are made. Changes what the candidate holds, not what it says."""
        manifest = _MANIFEST.__get__(self)
        if type(manifest) is PluginManifest:
            source = manifest.__dict__.get("_source")
            if source is not None:
                _MANIFEST.__set__(self, _Packed(source))

    def __eq__(self, other: object) -> bool:
        """Field by field, like the dataclass's, but a field not read yet is read only when
        the other side holds a different stand-in for it (comparing a re-scan with the last
        one then parses nothing), and two manifests decoded from equal bytes are equal."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        for name, stored in _STORED.items():
            a, b = stored.__get__(self), stored.__get__(other)
            if a is b:
                continue
            if name == "manifest":
                source = _source_of(a)
                if source is not None and source == _source_of(b):
                    continue
            if name in _LAZY:
                a, b = getattr(self, name), getattr(other, name)
            if a != b:
                return False
        return True

    def evolve(self, **changes: Any) -> Candidate:
        """``dataclasses.replace`` that leaves fields not read yet unread."""
        unknown = changes.keys() - _STORED.keys()
        if unknown:
            raise TypeError(f"Candidate has no field {sorted(unknown)[0]!r}")
        cand = _new(type(self))
        for name, stored in _STORED.items():
            stored.__set__(cand, changes[name] if name in changes else stored.__get__(self))
        return cand

    def with_problem(self, problem: Problem, **changes: Any) -> Candidate:
        return self.evolve(problem=problem, **changes)

    def __getstate__(self) -> tuple[Any, ...]:
        # Copies (a plugin sent to its sandbox process) keep the stand-ins: nothing is parsed
        # to be pickled.
        return tuple(stored.__get__(self) for stored in _STORED.values())

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for put, value in zip(_PUT, state, strict=True):
            put(self, value)


# -- fields resolved on read ------------------------------------------------------------------
# The dataclass made a slot per field. A field that may hold a stand-in gets a descriptor that
# reads its slot and resolves what it holds; the slot's own descriptor, kept in _STORED, reads
# and writes the stored value (the dataclass's __init__ writes through the new descriptor,
# which passes the value on).

_new = object.__new__
_STORED: dict[str, Any] = {f.name: Candidate.__dict__[f.name] for f in fields(Candidate)}
_PUT: tuple[Callable[[Any, Any], None], ...] = tuple(s.__set__ for s in _STORED.values())
_MANIFEST = _STORED["manifest"]


class _Resolved:
    """A field read through ``resolve(candidate, stored)``; with ``keep`` the resolved value
    replaces the stand-in (small: a digest), else it is worked out on each read (large: the
    parsed manifest and its raw dict, cached elsewhere while in use; and the root's ``Path``,
    which is not small: its parts list, and each part interned by pathlib, so the
    interpreter's table of interned strings would grow with every plugin read, for good)."""

    __slots__ = ("keep", "resolve", "stored")

    def __init__(self, name: str, resolve: Callable[[Any, Any], Any], keep: bool) -> None:
        self.stored = _STORED[name]
        self.resolve = resolve
        self.keep = keep

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.stored.__get__(obj)
        resolved = self.resolve(obj, value)
        if self.keep and resolved is not value:
            self.stored.__set__(obj, resolved)
        return resolved

    def __set__(self, obj: Any, value: Any) -> None:
        self.stored.__set__(obj, value)


def _resolve_root(cand: Any, value: Any) -> Any:
    return Path(value) if type(value) is str else value


def _resolve_manifest(cand: Any, value: Any) -> Any:
    return _unpack(value) if type(value) is _Packed else value


def _resolve_raw(cand: Any, value: Any) -> Any:
    if value is RAW_FROM_MANIFEST:
        manifest = cand.manifest
        return manifest.raw if manifest is not None else None
    return value


def _resolve_fingerprint(cand: Any, value: Any) -> Any:
    if value is DIGEST_FROM_MANIFEST:
        source = _source_of(_MANIFEST.__get__(cand))
        assert source is not None, "DIGEST_FROM_MANIFEST needs a manifest decoded from bytes"
        return digest(source)
    return value


def _resolve_location(cand: Any, value: Any) -> Any:
    # An installed distribution's label (``installed.DistributionLabel``): its METADATA is
    # read when somebody asks where the plugin comes from.
    return value if type(value) is str else str(value)


_LAZY = {
    "location": (_resolve_location, True),
    "root": (_resolve_root, False),  # a Path per read costs a microsecond; kept, ~400 B
    "manifest": (_resolve_manifest, False),
    "raw": (_resolve_raw, False),
    "fingerprint": (_resolve_fingerprint, True),
}
for _name, (_resolve, _keep) in _LAZY.items():
    setattr(Candidate, _name, _Resolved(_name, _resolve, _keep))

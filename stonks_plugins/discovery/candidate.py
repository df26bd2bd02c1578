"""What discovery found for one plugin."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import ReasonCode
from ..manifest.model import PluginManifest


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
it is then parsed from the file's bytes only if somebody reads it."""


def deferred_path(path: str) -> Path:
    """Pass as ``Candidate(root=...)``: ``Path(path)``, built only if somebody reads it (a
    scan of many folders need not build a ``Path`` for each)."""
    return cast(Path, path)


DIGEST_FROM_MANIFEST: Any = _Sentinel("DIGEST_FROM_MANIFEST")
"""Pass as ``Candidate(fingerprint=...)`` for a manifest decoded from a file's bytes: the
digest of those bytes (which the manifest keeps) is computed only if somebody reads it
(sync does; a scan that only looks at verdicts does not)."""


def digest(data: bytes) -> str:
    """A manifest file's fingerprint: the SHA-256 of its bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


class _OnFirstRead:
    """A field given in a cheap stand-in form (``RAW_FROM_MANIFEST``, a ``deferred_path``)
    that becomes its documented value when first read, and is kept from then on."""

    def __init__(self, resolve: Callable[[Any, Any], Any]) -> None:
        self.resolve = resolve

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, f"_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.name)  # no class-level default: the field is required
        state = obj.__dict__
        value = state[self.slot]
        resolved = self.resolve(obj, value)
        if resolved is not value:
            state[self.slot] = resolved
        return resolved

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value


def _resolve_raw(cand: Any, value: Any) -> Any:
    if value is RAW_FROM_MANIFEST:
        manifest = cand.__dict__["manifest"]
        return manifest.raw if manifest is not None else None
    return value


def _resolve_root(cand: Any, value: Any) -> Any:
    return Path(value) if type(value) is str else value


def _resolve_fingerprint(cand: Any, value: Any) -> Any:
    if value is DIGEST_FROM_MANIFEST:
        return digest(cand.__dict__["manifest"].__dict__["_source"])
    return value


_ON_FIRST_READ = ("root", "raw", "fingerprint")
_new, _setattr = object.__new__, object.__setattr__


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


@dataclass(frozen=True)
class Candidate:
    name: str
    source: Source
    location: str
    """Plugin folder (directories) or 'DIST==VERSION' (entry points)."""
    if TYPE_CHECKING:
        root: Path | None
    else:
        root: _OnFirstRead = _OnFirstRead(_resolve_root)
    """Folder whose contents the manifest's dotted paths are relative to (directories)."""
    manifest: PluginManifest | None
    if TYPE_CHECKING:
        raw: dict[str, Any] | None
    else:
        raw: _OnFirstRead = _OnFirstRead(_resolve_raw)
    """The manifest file as parsed JSON (None when it cannot be parsed); parsed on first
    read for a valid manifest (see ``RAW_FROM_MANIFEST``)."""
    if TYPE_CHECKING:
        fingerprint: str
    else:
        fingerprint: _OnFirstRead = _OnFirstRead(_resolve_fingerprint)
    """SHA-256 of the manifest file's bytes (hex); computed on first read for a scan."""
    problem: Problem | None = None
    entry_point: str | None = None
    group: str | None = None
    rank: tuple[Any, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def declared_name(self) -> str:
        return self.manifest.name if self.manifest else self.name.split("@", 1)[0]

    @property
    def ok(self) -> bool:
        return self.problem is None and self.manifest is not None

    @property
    def label(self) -> str:
        """Short location for a duplicate's name: folder name or distribution name."""
        if self.source is Source.DIRECTORY and self.root is not None:
            return self.root.name
        return self.location.split("==", 1)[0]

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
    ) -> Candidate:
        """``Candidate(...)`` for a scan, which builds one per plugin: the same instance,
        without the frozen dataclass's ``object.__setattr__`` call per field (a third of
        the cost)."""
        cand = _new(cls)
        # The instance's dict given whole: no per-field setattr, no kwargs copy.
        _setattr(
            cand,
            "__dict__",
            {
                "name": name,
                "source": source,
                "location": location,
                "_root": root,
                "manifest": manifest,
                "_raw": raw,
                "_fingerprint": fingerprint,
                "problem": problem,
                "rank": rank,
                # entry_point, group and warnings: their defaults, read from the class.
            },
        )
        return cand

    def __eq__(self, other: object) -> bool:
        """Field by field, like the dataclass's, but a field not read yet is read only when
        the other side holds a different stand-in for it (comparing a re-scan with the last
        one then parses nothing)."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        mine, theirs = self.__dict__, other.__dict__
        for f in fields(self):
            key = f"_{f.name}" if f.name in _ON_FIRST_READ else f.name
            a = mine[key] if key in mine else getattr(self, key)  # a default (see quick)
            b = theirs[key] if key in theirs else getattr(other, key)
            if a is b:
                continue
            if key != f.name:
                a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b:
                return False
        return True

    def evolve(self, **changes: Any) -> Candidate:
        """``dataclasses.replace`` that leaves fields not read yet unread."""
        state = self.__dict__
        changes.setdefault("raw", state["_raw"])
        changes.setdefault("root", state["_root"])
        changes.setdefault("fingerprint", state["_fingerprint"])
        return replace(self, **changes)

    def with_problem(self, problem: Problem, **changes: Any) -> Candidate:
        return self.evolve(problem=problem, **changes)

"""What discovery found for one plugin."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import ReasonCode
from ..manifest.model import PluginManifest


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
    root: Path | None
    """Folder whose contents the manifest's dotted paths are relative to (directories)."""
    manifest: PluginManifest | None
    raw: dict[str, Any] | None
    fingerprint: str
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

    def with_problem(self, problem: Problem, **changes: Any) -> Candidate:
        return replace(self, problem=problem, **changes)

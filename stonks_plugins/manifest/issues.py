"""One problem with a manifest, and the error that carries every problem found."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ReasonCode, StonksPluginsError


@dataclass(frozen=True)
class ManifestIssue:
    """One problem: where (a JSON path such as ``$.plugin.version``) and what was expected."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class ManifestError(StonksPluginsError):
    """A manifest that cannot be read (``manifest_unreadable``) or is invalid
    (``manifest_invalid``). ``issues`` lists every problem found."""

    code: ReasonCode

    def __init__(self, code: ReasonCode, source: str, issues: list[ManifestIssue]) -> None:
        self.code = code
        self.source = source
        self.issues = issues
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """``SOURCE: ISSUE; ISSUE...``, at most five; a fault of the whole file (the JSON path
        ``$``, such as a JSON syntax error) is said without a path, after the file's."""
        shown = "; ".join(i.message if i.path == "$" else str(i) for i in self.issues[:5])
        more = f" (and {len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
        return f"{self.source}: {shown}{more}"

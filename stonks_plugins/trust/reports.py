"""What a verification found, worded for the operator: changed, missing and extra files,
and how to fix them."""

from __future__ import annotations

from dataclasses import dataclass

SHOWN = 8
"""Files named per kind in a message; the rest are counted."""


@dataclass(frozen=True)
class IntegrityReport:
    """What a verification found; ``ok`` when nothing is wrong."""

    what: str
    """What the files were compared with ('the lock in plugin_manifest.json', a RECORD)."""
    checked: int = 0
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    fix: str = ""

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra)

    @property
    def message(self) -> str:
        parts = [
            f"{label} {_names(files)}"
            for label, files in (
                ("changed:", self.changed),
                ("missing:", self.missing),
                ("extra code:", self.extra),
            )
            if files
        ]
        return f"its files do not match {self.what}: {'; '.join(parts)}. {self.fix}".strip()


def _names(files: tuple[str, ...]) -> str:
    shown = ", ".join(files[:SHOWN])
    return shown if len(files) <= SHOWN else f"{shown} and {len(files) - SHOWN} more"

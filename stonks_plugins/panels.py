"""What aggregator plugins produce: panels of labelled figures the host renders."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PanelRow:
    label: str
    value: float
    share: float | None = None
    """Fraction of the panel's total (0..1), when it is a breakdown."""


@dataclass(frozen=True)
class Panel:
    title: str
    rows: tuple[PanelRow, ...] = field(default_factory=tuple)
    unit: str = ""
    note: str = ""

    @classmethod
    def breakdown(
        cls, title: str, totals: dict[str, float], unit: str = "", note: str = ""
    ) -> Panel:
        """Rows sorted by value, each with its share of the total."""
        total = sum(totals.values())
        rows = tuple(
            PanelRow(label, round(value, 2), round(value / total, 4) if total else None)
            for label, value in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        return cls(title, rows, unit, note)

"""The import report: what became of every row of every export file.

After an import each physical row of a file (header and blank lines included) has exactly one
:class:`Outcome`: *understood* (it produced records), *skipped* by a named rule (a pending
order, the second half of a reservation pair, a blank line, the header...), or *reported*
(the plugin could not use it: the reason says what is wrong and what the user can do). A row
that gets no outcome, or two, breaks the invariant that :meth:`ImportReport.check` verifies:
that is how a plugin proves it lost nothing without a word.

A broker service exposes its latest report as ``self.import_report``; the host shows
:meth:`ImportReport.as_dict` in the console, the API and the CLI. Iterating a report yields the
reported rows, the ones that need the user (what ``import_report`` listed before it had
outcomes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import IncompleteReport

REPORTED_LIMIT = 500
"""How many reported rows :meth:`ImportReport.as_dict` spells out; the rest are counted."""

TEXT_LIMIT = 200
"""How much of a row's text an outcome keeps: enough to recognise the row."""


class Outcome(StrEnum):
    UNDERSTOOD = "understood"
    SKIPPED = "skipped"
    REPORTED = "reported"


def shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class RowOutcome:
    """What became of one row. ``file`` is the file's name (never its full path: the report
    is shown to users and must not disclose the host's folders); ``line`` is 1-based, where
    the row starts in an editor. ``rule`` is a short code: the named rule for a skipped row
    (``pending_order``, ``blank``...), what went wrong for a reported one (``bad_number``,
    ``unknown_type``...), empty for an understood one."""

    file: str
    line: int
    outcome: Outcome
    rule: str = ""
    reason: str = ""
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason or self.rule or self.outcome}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "outcome": str(self.outcome),
            "rule": self.rule,
            "reason": self.reason,
            "text": self.text,
        }


class ImportReport:
    """Outcomes per file, in the order they were recorded.

    Build one per import (a service call reads the files afresh when they changed); combine
    the reports of several files with :meth:`merged`. Recording a second outcome for a line
    that already has one is kept and counted as a problem by :meth:`check`, never silently
    merged: it means the plugin's logic counted a row twice.
    """

    def __init__(self) -> None:
        self._rows: dict[str, dict[int, RowOutcome]] = {}
        self._doubles: dict[str, list[RowOutcome]] = {}
        self._totals: dict[str, int] = {}

    # -- recording ------------------------------------------------------------------------------

    def add(self, outcome: RowOutcome) -> RowOutcome:
        rows = self._rows.setdefault(outcome.file, {})
        if outcome.line in rows:
            self._doubles.setdefault(outcome.file, []).append(outcome)
        else:
            rows[outcome.line] = outcome
        return outcome

    def understood(self, file: str, line: int, text: str = "") -> RowOutcome:
        return self.add(RowOutcome(file, line, Outcome.UNDERSTOOD, text=shorten(text)))

    def skipped(
        self, file: str, line: int, rule: str, reason: str = "", text: str = ""
    ) -> RowOutcome:
        return self.add(RowOutcome(file, line, Outcome.SKIPPED, rule, reason, shorten(text)))

    def reported(self, file: str, line: int, rule: str, reason: str, text: str = "") -> RowOutcome:
        return self.add(RowOutcome(file, line, Outcome.REPORTED, rule, reason, shorten(text)))

    def expect(self, file: str, total_rows: int) -> None:
        """Note how many rows ``file`` has without checking yet (``check`` does both)."""
        self._totals[file] = total_rows

    def extend(self, other: ImportReport) -> None:
        """Add every outcome and expected total of ``other`` (a report of other files)."""
        for outcome in other.outcomes():
            self.add(outcome)
        for file, doubles in other._doubles.items():
            self._doubles.setdefault(file, []).extend(doubles)
        self._totals.update(other._totals)

    @classmethod
    def merged(cls, reports: Iterable[ImportReport]) -> ImportReport:
        combined = cls()
        for report in reports:
            combined.extend(report)
        return combined

    # -- reading --------------------------------------------------------------------------------

    def files(self) -> list[str]:
        return list(dict.fromkeys([*self._rows, *self._totals]))

    def outcomes(self, file: str | None = None) -> list[RowOutcome]:
        """Every recorded outcome (of one file, or of all), in line order per file."""
        names = [file] if file is not None else self.files()
        return [
            outcome for name in names for _, outcome in sorted(self._rows.get(name, {}).items())
        ]

    def outcome_of(self, file: str, line: int) -> RowOutcome | None:
        return self._rows.get(file, {}).get(line)

    def rows_seen(self, file: str) -> int:
        """Rows of ``file`` with an outcome (each line once)."""
        return len(self._rows.get(file, {}))

    def counts(self, file: str | None = None) -> dict[str, int]:
        """Rows per outcome: ``{"understood": a, "skipped": b, "reported": c}``."""
        counted = Counter(outcome.outcome for outcome in self.outcomes(file))
        return {str(kind): counted.get(kind, 0) for kind in Outcome}

    def skipped_by_rule(self, file: str | None = None) -> dict[str, int]:
        counted = Counter(o.rule for o in self.outcomes(file) if o.outcome is Outcome.SKIPPED)
        return dict(sorted(counted.items()))

    def reported_rows(self) -> list[RowOutcome]:
        return [o for o in self.outcomes() if o.outcome is Outcome.REPORTED]

    def __iter__(self) -> Iterator[RowOutcome]:
        return iter(self.reported_rows())

    def __len__(self) -> int:
        """The number of reported rows (so ``if report:`` reads "something needs the user")."""
        return len(self.reported_rows())

    # -- the invariant --------------------------------------------------------------------------

    def check(self, file: str, total_rows: int | None = None) -> str | None:
        """A problem text when the rows of ``file`` are not each accounted for exactly once,
        else ``None``. ``total_rows`` counts every physical row (header and blank lines too,
        a row broken over two lines once); it is remembered for :meth:`as_dict`."""
        if total_rows is not None:
            self._totals[file] = total_rows
        total = self._totals.get(file)
        problems: list[str] = []
        seen = self.rows_seen(file)
        if total is not None and seen != total:
            counts = self.counts(file)
            problems.append(
                f"{total} row(s), but {seen} have an outcome (understood {counts['understood']}, "
                f"skipped {counts['skipped']}, reported {counts['reported']})"
            )
        doubles = self._doubles.get(file, [])
        if doubles:
            lines = ", ".join(str(line) for line in sorted({o.line for o in doubles}))
            problems.append(f"line(s) {lines} recorded more than once")
        return f"{file}: " + "; ".join(problems) if problems else None

    def require_complete(self, file: str, total_rows: int | None = None) -> None:
        """:meth:`check`, raising :class:`IncompleteReport` on a problem."""
        problem = self.check(file, total_rows)
        if problem is not None:
            raise IncompleteReport(problem.split(": ", 1)[1], file=file)

    def problems(self) -> list[str]:
        return [p for file in self.files() if (p := self.check(file)) is not None]

    @property
    def complete(self) -> bool:
        """Every file has a known row count and each of its rows exactly one outcome."""
        return all(file in self._totals for file in self.files()) and not self.problems()

    # -- for people -----------------------------------------------------------------------------

    def summary(self, shown: int = 3) -> str:
        """``"2 row(s) reported: a.csv line 4: ...; a.csv line 9: ..."``; empty when no row
        was reported. For a health message."""
        reported = self.reported_rows()
        if not reported:
            return ""
        first = "; ".join(str(o) for o in reported[:shown])
        more = f" (and {len(reported) - shown} more)" if len(reported) > shown else ""
        return f"{len(reported)} row(s) reported: {first}{more}"

    def as_dict(self, limit: int = REPORTED_LIMIT) -> dict[str, Any]:
        """JSON-ready::

        {"files": {name: {"rows": n, "understood": a, "skipped": {rule: count},
                          "reported": c}},
         "reported": [row dicts, at most ``limit``], "truncated": rows left out,
         "complete": bool}
        """
        files: dict[str, Any] = {}
        for file in self.files():
            counts = self.counts(file)
            files[file] = {
                "rows": self._totals.get(file, self.rows_seen(file)),
                "understood": counts["understood"],
                "skipped": self.skipped_by_rule(file),
                "reported": counts["reported"],
            }
        reported = self.reported_rows()
        return {
            "files": files,
            "reported": [o.as_dict() for o in reported[:limit]],
            "truncated": max(0, len(reported) - limit),
            "complete": self.complete,
        }

    def __repr__(self) -> str:
        return f"<ImportReport {self.counts()}>"

"""The loop every export parser shares: each data row becomes exactly one outcome.

A plugin writes a parse function for one row. It returns what the row means (any value: a
record, a list of records), returns :class:`Skip` with a named rule for a row that
deliberately produces nothing (``Skip("pending_order", "an order not yet filled")``), or
raises :class:`~stonks_plugins.exports.errors.RowError` for a row it cannot use. An unknown
description or type with money in it is such an error: it is reported, never applied.
:func:`parse_rows` records the outcome of every row, so none can go missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import RowError
from .reading import CsvFile, Row
from .report import ImportReport

T = TypeVar("T")


@dataclass(frozen=True)
class Skip:
    """A row that deliberately produces nothing, and the rule that says so."""

    rule: str
    reason: str = ""


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A data row and what the parse function made of it."""

    row: Row
    value: T


def parse_rows(
    table: CsvFile,
    parse: Callable[[Row], T | Skip],
    report: ImportReport,
    *,
    understood: bool = True,
) -> list[Parsed[T]]:
    """Run ``parse`` on every data row of ``table`` and record each outcome in ``report``,
    together with the rows reading settled (header, blank lines), then check that the file's
    rows are all accounted for.

    ``understood=False`` leaves rows that parsed without an outcome, for a plugin that
    decides later (after matching rows across files): it must then record one for each
    returned row itself, and call ``report.check(table.name)`` when done.
    """
    table.record_into(report)
    parsed: list[Parsed[T]] = []
    for row in table.rows:
        try:
            value = parse(row)
        except RowError as exc:
            report.reported(table.name, row.line, exc.rule, exc.reason, row.text)
            continue
        if isinstance(value, Skip):
            report.skipped(table.name, row.line, value.rule, value.reason, row.text)
            continue
        if understood:
            report.understood(table.name, row.line)
        parsed.append(Parsed(row, value))
    report.expect(table.name, table.total_rows)
    return parsed


def record(report: ImportReport, file: str, row: Row, result: object) -> None:
    """Record the outcome of a row decided after parsing: a :class:`Skip`, a
    :class:`RowError`, or anything else for understood."""
    if isinstance(result, Skip):
        report.skipped(file, row.line, result.rule, result.reason, row.text)
    elif isinstance(result, RowError):
        report.reported(file, row.line, result.rule, result.reason, row.text)
    else:
        report.understood(file, row.line)

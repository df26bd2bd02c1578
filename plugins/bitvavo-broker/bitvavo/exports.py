"""Reader for Bitvavo's transaction history export (CSV).

Two layouts exist: the current one (15 columns, since mid-2024) names the quote currency in a
column; the older one (13 columns) is always in EUR (``Price (EUR)``, ``EUR received / paid``).
Headers are English in both, so columns are mapped by name. Numbers are unquoted dot decimals,
sometimes long floats such as ``0.010713949999999999``; they are kept as
:class:`~decimal.Decimal` so sums do not drift.

A file that cannot be read at all raises :class:`ExportFormatError`; a single bad row is
skipped and reported as a :class:`RowIssue` (file, line, reason) instead.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Rows in these states never moved money: a pending order may still be cancelled.
_SKIPPED_STATUSES = frozenset({"pending", "canceled", "cancelled", "failed", "rejected"})

_REQUIRED = ("Date", "Time", "Type", "Currency", "Amount", "Status")
# Column names per field; the first name present in the header wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "timezone": ("Timezone",),
    "quote_currency": ("Quote Currency",),
    "quote_price": ("Quote Price", "Price (EUR)"),
    "paid_currency": ("Received / Paid Currency",),
    "paid_amount": ("Received / Paid Amount", "EUR received / paid"),
    "fee_currency": ("Fee currency",),
    "fee_amount": ("Fee amount",),
    "transaction_id": ("Transaction ID",),
    "address": ("Address",),
}


class ExportFormatError(ValueError):
    """An export file that cannot be read; the message names the file and the line."""


class ExportMissingError(ExportFormatError):
    """No transaction history file where one was expected."""


class RowError(ValueError):
    """One row cannot be used: it is skipped and reported, the import goes on."""


class RowIssue(NamedTuple):
    """A skipped row: which file, which line (1-based), and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


@dataclass(frozen=True)
class HistoryRow:
    timestamp: datetime
    kind: str  # buy, sell, deposit, withdrawal, staking, rebate, ...
    currency: str
    amount: Decimal  # signed: positive when the currency came in
    quote_currency: str
    quote_price: Decimal | None
    paid_currency: str
    paid_amount: Decimal | None  # negative for a buy, fee included
    fee_currency: str
    fee_amount: Decimal | None  # positive
    status: str
    transaction_id: str
    address: str

    @property
    def day(self) -> date:
        return self.timestamp.date()


@dataclass(frozen=True)
class History:
    """Every export in a folder: the rows (oldest first), the skipped rows, the layouts."""

    rows: list[HistoryRow]
    issues: list[RowIssue] = field(default_factory=list)
    layouts: dict[str, str] = field(default_factory=dict)  # file name -> current/older


def parse_number(text: str) -> Decimal | None:
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise RowError(f"not a number: {cleaned!r}") from None
    if not value.is_finite():
        raise RowError(f"not a number: {cleaned!r}")
    return value


def _timestamp(day: str, time: str, zone: str) -> datetime:
    """``2025-04-02`` + ``09:15:07`` or ``09:15:07.381``, in the row's IANA time zone.

    Always timezone-aware (UTC when the row names no zone) so rows from any file sort together.
    """
    try:
        moment = datetime.fromisoformat(f"{day.strip()}T{time.strip()}")
    except ValueError:
        raise RowError(
            f"not a date and time (expected YYYY-MM-DD HH:MM:SS): {day.strip()!r} {time.strip()!r}"
        ) from None
    if not zone.strip():
        return moment.replace(tzinfo=UTC)
    try:
        return moment.replace(tzinfo=ZoneInfo(zone.strip()))
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"unknown time zone {zone.strip()!r}") from None


@dataclass(frozen=True)
class _Columns:
    index: dict[str, int]  # field name -> column position
    legacy_eur: bool  # the older layout: no currency columns, everything in EUR


def _columns(header: list[str], path: Path) -> _Columns:
    positions = {name.lower(): i for i, name in enumerate(header)}
    missing = [name for name in _REQUIRED if name.lower() not in positions]
    if missing:
        raise ExportFormatError(
            f"{path.name} line 1: not a Bitvavo transaction history, missing columns {missing}"
        )
    index = {name.lower(): positions[name.lower()] for name in _REQUIRED}
    for key, names in _ALIASES.items():
        for name in names:
            if name.lower() in positions:
                index[key] = positions[name.lower()]
                break
    return _Columns(index, legacy_eur="quote_currency" not in index)


def _parse_row(cells: list[str], columns: _Columns) -> HistoryRow | None:
    def cell(key: str) -> str:
        i = columns.index.get(key)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    status = cell("status")
    if status.lower() in _SKIPPED_STATUSES:
        return None
    if len(cells) <= max(columns.index[k] for k in ("amount", "status", "type")):
        raise RowError(f"only {len(cells)} columns; the header has more")
    kind = cell("type").lower()
    if not kind:
        raise RowError("the Type is empty")
    currency = cell("currency").upper()
    if not currency:
        raise RowError("the Currency is empty")
    amount = parse_number(cell("amount"))
    if amount is None:
        raise RowError("the Amount is missing")
    legacy_eur = "EUR" if columns.legacy_eur else ""
    quote_price = parse_number(cell("quote_price"))
    paid_amount = parse_number(cell("paid_amount"))
    if kind in ("buy", "sell") and paid_amount is None:
        raise RowError(f"a {kind} without the amount received / paid")
    fee_amount = parse_number(cell("fee_amount"))
    return HistoryRow(
        timestamp=_timestamp(cell("date"), cell("time"), cell("timezone")),
        kind=kind,
        currency=currency,
        amount=amount,
        quote_currency=cell("quote_currency") or (legacy_eur if quote_price is not None else ""),
        quote_price=quote_price,
        paid_currency=cell("paid_currency") or (legacy_eur if paid_amount is not None else ""),
        paid_amount=paid_amount,
        fee_currency=cell("fee_currency") or (legacy_eur if fee_amount else ""),
        fee_amount=abs(fee_amount) if fee_amount is not None else None,
        status=status,
        transaction_id=cell("transaction_id"),
        address=cell("address"),
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ExportMissingError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"{path.name}: not UTF-8 text ({exc.reason})") from None


def read_history_file(path: Path) -> tuple[list[HistoryRow], list[RowIssue], str]:
    """Rows of one export that moved money, the rows that had to be skipped, and the layout
    (``current`` or ``older``). Pending and cancelled rows are dropped without a word; a row
    that cannot be read is reported and skipped, the rest of the file still counts."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header: list[str] | None = None
    columns = _Columns({}, legacy_eur=False)
    rows: list[HistoryRow] = []
    issues: list[RowIssue] = []
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                columns = _columns(header, path)
                continue
            try:
                row = _parse_row(cells, columns)
            except RowError as exc:
                issues.append(RowIssue(path.name, line, str(exc)))
                continue
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise ExportFormatError(f"{path.name} line {reader.line_num}: {exc}") from exc
    if header is None:
        raise ExportFormatError(f"{path.name}: the file is empty")
    return rows, issues, "older" if columns.legacy_eur else "current"


_cache: dict[str, tuple[tuple[tuple[str, int, int], ...], History]] = {}


def read_history(folder: Path) -> History:
    """Every ``*.csv`` in the folder (one export per year is common), oldest row first.

    Overlapping exports are fine: a row is kept once per Transaction ID. The result is reused
    while no file in the folder changed.
    """
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        raise ExportMissingError(f"{folder}: no Bitvavo transaction history (*.csv) found")
    stamp = tuple((path.name, (info := os.stat(path)).st_mtime_ns, info.st_size) for path in files)
    hit = _cache.get(str(folder))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    seen: set[str] = set()
    rows: list[HistoryRow] = []
    issues: list[RowIssue] = []
    layouts: dict[str, str] = {}
    for path in files:
        file_rows, file_issues, layouts[path.name] = read_history_file(path)
        issues += file_issues
        for row in file_rows:
            if row.transaction_id:
                if row.transaction_id in seen:
                    continue
                seen.add(row.transaction_id)
            rows.append(row)
    history = History(sorted(rows, key=lambda row: row.timestamp), issues, layouts)
    _cache[str(folder)] = (stamp, history)
    return history

"""Reader for Bitvavo's transaction history export (CSV).

Two layouts exist: the current one (15 columns, since mid-2024) names the quote currency in a
column; the older one (13 columns) is always in EUR (``Price (EUR)``, ``EUR received / paid``).
Headers are English in both, so columns are mapped by name. Numbers are unquoted dot decimals,
sometimes long floats such as ``0.010713949999999999``; they are kept as
:class:`~decimal.Decimal` so sums do not drift.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
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


def parse_number(text: str, where: str) -> Decimal | None:
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise ExportFormatError(f"{where}: not a number: {text!r}") from None


def _timestamp(day: str, time: str, zone: str, where: str) -> datetime:
    """``2025-04-02`` + ``09:15:07`` or ``09:15:07.381``, in the row's IANA time zone.

    Always timezone-aware (UTC when the row names no zone) so rows from any file sort together.
    """
    try:
        moment = datetime.fromisoformat(f"{day.strip()}T{time.strip()}")
    except ValueError:
        raise ExportFormatError(
            f"{where}: not a date and time (expected YYYY-MM-DD HH:MM:SS): {day!r} {time!r}"
        ) from None
    if not zone.strip():
        return moment.replace(tzinfo=UTC)
    try:
        return moment.replace(tzinfo=ZoneInfo(zone.strip()))
    except (ZoneInfoNotFoundError, ValueError):
        raise ExportFormatError(f"{where}: unknown time zone {zone!r}") from None


def read_history_file(path: Path) -> list[HistoryRow]:
    """Rows of one export that moved money (pending/cancelled rows are dropped)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ExportMissingError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"{path.name}: not UTF-8 text ({exc.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    columns = _Columns({}, legacy_eur=False)
    rows: list[HistoryRow] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                columns = _columns(header, path)
                continue
            row = _parse_row(cells, columns, f"{path.name} line {reader.line_num}")
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise ExportFormatError(f"{path.name} line {reader.line_num}: {exc}") from exc
    if header is None:
        raise ExportFormatError(f"{path.name}: the file is empty")
    return rows


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
    for field, names in _ALIASES.items():
        for name in names:
            if name.lower() in positions:
                index[field] = positions[name.lower()]
                break
    return _Columns(index, legacy_eur="quote_currency" not in index)


def _parse_row(cells: list[str], columns: _Columns, where: str) -> HistoryRow | None:
    def cell(field: str) -> str:
        i = columns.index.get(field)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    status = cell("status")
    if status.lower() in _SKIPPED_STATUSES:
        return None
    amount = parse_number(cell("amount"), where)
    if amount is None:
        raise ExportFormatError(f"{where}: the Amount is missing")
    legacy_eur = "EUR" if columns.legacy_eur else ""
    quote_price = parse_number(cell("quote_price"), where)
    paid_amount = parse_number(cell("paid_amount"), where)
    return HistoryRow(
        timestamp=_timestamp(cell("date"), cell("time"), cell("timezone"), where),
        kind=cell("type").lower(),
        currency=cell("currency").upper(),
        amount=amount,
        quote_currency=cell("quote_currency") or (legacy_eur if quote_price is not None else ""),
        quote_price=quote_price,
        paid_currency=cell("paid_currency") or (legacy_eur if paid_amount is not None else ""),
        paid_amount=paid_amount,
        fee_currency=cell("fee_currency"),
        fee_amount=parse_number(cell("fee_amount"), where),
        status=status,
        transaction_id=cell("transaction_id"),
        address=cell("address"),
    )


def read_history(folder: Path) -> list[HistoryRow]:
    """Every ``*.csv`` in the folder (one export per year is common), oldest row first.

    Overlapping exports are fine: a row is kept once per Transaction ID.
    """
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        raise ExportMissingError(f"{folder}: no Bitvavo transaction history (*.csv) found")
    seen: set[str] = set()
    rows: list[HistoryRow] = []
    for path in files:
        for row in read_history_file(path):
            if row.transaction_id:
                if row.transaction_id in seen:
                    continue
                seen.add(row.transaction_id)
            rows.append(row)
    return sorted(rows, key=lambda row: row.timestamp)

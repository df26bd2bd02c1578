"""Readers for DeGiro's CSV exports: ``Portfolio.csv``, ``Transactions.csv``, ``Account.csv``.

DeGiro translates the headers and leaves several columns unnamed, so columns are mapped by
position, never by name. The decimal mark varies per file (``104.2000`` or ``"24,1500"``),
hence :func:`parse_number`. Amounts stay :class:`~decimal.Decimal` here; the services turn
them into the floats of API v1 at the very end.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

PORTFOLIO_FILE = "Portfolio.csv"
TRANSACTIONS_FILE = "Transactions.csv"
ACCOUNT_FILE = "Account.csv"

_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
_CURRENCY_AND_AMOUNT = re.compile(r"^([A-Z]{3})\s+(-?[0-9.,]+)$")
_TRAILING_CURRENCY = re.compile(r"\b([A-Z]{3})\s*$")


class ExportFormatError(ValueError):
    """An export file that cannot be read; the message names the file and the line."""


class ExportMissingError(ExportFormatError):
    """The export file does not exist (callers may treat some files as optional)."""


@dataclass(frozen=True)
class Row:
    """One non-blank CSV record and the line it starts on (for error messages)."""

    line: int
    cells: list[str]

    def get(self, index: int) -> str:
        return self.cells[index].strip() if index < len(self.cells) else ""


@dataclass(frozen=True)
class Table:
    path: Path
    header: list[str]
    rows: list[Row]

    def where(self, row: Row) -> str:
        return f"{self.path.name} line {row.line}"


def read_table(path: Path) -> Table:
    """Read a CSV export: strip a BOM, skip blank rows, keep the header apart."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ExportMissingError(f"{path}: file not found") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Some DeGiro exports (and the spreadsheets users re-save them with) are Latin-1.
        text = raw.decode("iso-8859-1")
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[Row] = []
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append(Row(reader.line_num, cells))
    except csv.Error as exc:
        raise ExportFormatError(f"{path.name} line {reader.line_num}: {exc}") from exc
    if not records:
        raise ExportFormatError(f"{path.name}: the file is empty")
    return Table(path, [cell.strip() for cell in records[0].cells], records[1:])


def parse_number(text: str, where: str) -> Decimal | None:
    """``"24,1500"``, ``104.2000``, ``"9.961,4715"`` or ``""`` (``None``)."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if not cleaned:
        return None
    if "," in cleaned and "." in cleaned:
        # Both marks: the rightmost one is the decimal mark, the other groups thousands.
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    elif "," in cleaned:
        # Amount columns carry no thousands separator, so a lone comma is the decimal mark.
        cleaned = cleaned.replace(",", ".")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise ExportFormatError(f"{where}: not a number: {text!r}") from None


def require_number(text: str, where: str) -> Decimal:
    value = parse_number(text, where)
    if value is None:
        raise ExportFormatError(f"{where}: a number is missing")
    return value


def parse_date(text: str, where: str) -> date:
    """DeGiro writes ``DD-MM-YYYY``; ISO dates are accepted too (re-saved files)."""
    cleaned = text.strip()
    for fmt in ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    raise ExportFormatError(f"{where}: not a date (expected DD-MM-YYYY): {text!r}")


def is_isin(text: str) -> bool:
    return bool(_ISIN.match(text.strip()))


def currency_in_header(name: str, default: str = "EUR") -> str:
    """The account currency is only in header names such as ``Value in EUR``."""
    match = _TRAILING_CURRENCY.search(name)
    return match.group(1) if match else default


def _check_width(table: Table, minimum: int, what: str) -> None:
    if len(table.header) < minimum:
        raise ExportFormatError(
            f"{table.path.name} line 1: expected a {what} header with at least {minimum} "
            f"columns, found {len(table.header)}"
        )


# --- Portfolio.csv --------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioRow:
    product: str
    symbol_or_isin: str
    quantity: Decimal
    closing_price: Decimal
    currency: str
    local_value: Decimal
    account_value: Decimal
    is_cash: bool


def parse_portfolio(path: Path) -> tuple[str, list[PortfolioRow]]:
    """Return the account currency and the rows (cash lines flagged with ``is_cash``).

    Columns: product, symbol/ISIN, amount, closing price, local-value currency, local value,
    value in the account currency. An older variant writes ``EUR 1440.10`` in one field.
    """
    table = read_table(path)
    _check_width(table, 5, "Portfolio.csv")
    last_named = next((name for name in reversed(table.header) if name), "")
    account_currency = currency_in_header(last_named)
    rows: list[PortfolioRow] = []
    for row in table.rows:
        where = table.where(row)
        product = row.get(0)
        combined = _CURRENCY_AND_AMOUNT.match(row.get(4))
        if combined:
            currency = combined.group(1)
            local_value = require_number(combined.group(2), where)
            account_text = next(
                (cell for cell in reversed(row.cells[5:]) if cell.strip()), combined.group(2)
            )
        else:
            currency = row.get(4) or account_currency
            local_value = require_number(row.get(5), where)
            account_text = row.get(6) or row.get(5)
        account_value = require_number(account_text, where)
        quantity = parse_number(row.get(2), where)
        price = parse_number(row.get(3), where)
        # Cash lines ("CASH & CASH FUND & FTX CASH (EUR)") have no ISIN, amount or price.
        is_cash = (quantity is None and not row.get(1)) or product.upper().startswith("CASH &")
        rows.append(
            PortfolioRow(
                product=product,
                symbol_or_isin=row.get(1),
                quantity=quantity or Decimal(0),
                closing_price=price or Decimal(0),
                currency=currency,
                local_value=local_value,
                account_value=account_value,
                is_cash=is_cash,
            )
        )
    return account_currency, rows


# --- Transactions.csv -----------------------------------------------------------------------


@dataclass(frozen=True)
class _TransactionLayout:
    """Column positions of one Transactions.csv layout."""

    name: str
    quantity: int
    price: int
    price_currency: int
    local_value: int
    account_value: int
    fee_columns: tuple[int, ...]
    total: int
    order_ids: tuple[int, ...]
    # Cell holding the currency of the total; None: only the header names it (``Total EUR``).
    total_currency: int | None


# Layouts are told apart by where the unnamed header cells are, which does not depend on the
# language of the header.
_LAYOUTS: dict[tuple[int, ...], _TransactionLayout] = {
    # Current (AutoFX), 17 named columns and a trailing comma.
    (8, 10, 17): _TransactionLayout(
        "current", 6, 7, 8, 9, 11, (13, 14), 15, (16, 17), total_currency=None
    ),
    # Older, 19 columns, currency in the unnamed column after each amount.
    (8, 10, 12, 15, 17): _TransactionLayout(
        "older", 6, 7, 8, 9, 11, (14,), 16, (18,), total_currency=17
    ),
    # Oldest (2020 to early 2021), 18 columns, no venue, currency before each amount.
    (6, 8, 10, 13, 15): _TransactionLayout(
        "oldest", 5, 7, 6, 9, 11, (14,), 16, (17,), total_currency=15
    ),
}


@dataclass(frozen=True)
class TransactionRow:
    day: date
    product: str
    isin: str
    quantity: Decimal
    price: Decimal
    price_currency: str
    account_value: Decimal
    fees: Decimal
    total: Decimal
    account_currency: str
    order_id: str


def _layout_of(table: Table) -> _TransactionLayout:
    unnamed = tuple(i for i, name in enumerate(table.header) if not name)
    layout = _LAYOUTS.get(unnamed)
    if layout is None:
        raise ExportFormatError(
            f"{table.path.name} line 1: unknown Transactions.csv layout "
            f"({len(table.header)} columns, unnamed columns at {list(unnamed)})"
        )
    return layout


def parse_transactions(path: Path) -> list[TransactionRow]:
    table = read_table(path)
    layout = _layout_of(table)
    rows: list[TransactionRow] = []
    for row in table.rows:
        where = table.where(row)
        if layout.total_currency is None:
            account_currency = currency_in_header(table.header[layout.total])
        else:
            account_currency = row.get(layout.total_currency) or "EUR"
        fees = sum(
            (parse_number(row.get(i), where) or Decimal(0) for i in layout.fee_columns),
            Decimal(0),
        )
        rows.append(
            TransactionRow(
                day=parse_date(row.get(0), where),
                product=row.get(2),
                isin=row.get(3),
                quantity=require_number(row.get(layout.quantity), where),
                price=require_number(row.get(layout.price), where),
                price_currency=row.get(layout.price_currency) or account_currency,
                account_value=parse_number(row.get(layout.account_value), where) or Decimal(0),
                fees=fees,
                total=require_number(row.get(layout.total), where),
                account_currency=account_currency,
                # The Order ID sits in either of two columns depending on the file.
                order_id=next((row.get(i) for i in layout.order_ids if row.get(i)), ""),
            )
        )
    return rows


# --- Account.csv ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    day: date
    value_day: date
    product: str
    isin: str
    description: str
    currency: str
    change: Decimal | None
    balance_currency: str
    balance: Decimal | None
    order_id: str


def _join_continuations(rows: Sequence[Row]) -> list[Row]:
    """A long Description or Order Id may wrap onto a line starting with commas."""
    joined: list[Row] = []
    for row in rows:
        if joined and not row.get(0) and not row.get(1):
            previous = joined[-1]
            cells = list(previous.cells)
            for index, cell in enumerate(row.cells):
                if not cell.strip():
                    continue
                while len(cells) <= index:
                    cells.append("")
                cells[index] = f"{cells[index]}{cell}" if index == 11 else f"{cells[index]} {cell}"
            joined[-1] = Row(previous.line, cells)
        else:
            joined.append(row)
    return joined


def parse_account(path: Path) -> list[AccountRow]:
    """Rows of the account statement, in file order (newest first).

    Here the named ``Change``/``Balance`` columns hold the currency and the unnamed column
    after each holds the amount, the reverse of Transactions.csv.
    """
    table = read_table(path)
    _check_width(table, 11, "Account.csv")
    rows: list[AccountRow] = []
    for row in _join_continuations(table.rows):
        where = table.where(row)
        day = parse_date(row.get(0), where)
        rows.append(
            AccountRow(
                day=day,
                value_day=parse_date(row.get(2), where) if row.get(2) else day,
                product=row.get(3),
                isin=row.get(4),
                description=row.get(5),
                currency=row.get(7),
                change=parse_number(row.get(8), where),
                balance_currency=row.get(9),
                balance=parse_number(row.get(10), where),
                order_id=row.get(11),
            )
        )
    return rows

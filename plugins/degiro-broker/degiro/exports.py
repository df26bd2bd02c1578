"""Parsers for DeGiro's CSV exports: ``Portfolio.csv``, ``Transactions.csv``, ``Account.csv``.

DeGiro translates the headers and leaves several columns unnamed, so columns are mapped by
position, never by name; the layout of Transactions.csv is recognised by where its unnamed
columns are, which does not depend on the language. Amounts stay
:class:`~decimal.Decimal` here; the services turn them into the floats of API v1 at the end.
Every parser returns a :class:`~.csvio.Parsed`: the usable rows and the skipped ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from .csvio import (
    ExportFormatError,
    Parsed,
    Row,
    RowError,
    RowIssue,
    Table,
    cached,
    currency_in_header,
    parse_date,
    parse_number,
    parse_rows,
    read_table,
    require_number,
    split_currency,
)

PORTFOLIO_FILE = "Portfolio.csv"
TRANSACTIONS_FILE = "Transactions.csv"
ACCOUNT_FILE = "Account.csv"


def _check_width(table: Table, minimum: int, what: str) -> None:
    if len(table.header) < minimum:
        raise ExportFormatError(
            f"{table.file} line 1: expected a {what} header with at least {minimum} "
            f"columns, found {len(table.header)}"
        )


def _need_cells(row: Row, count: int) -> None:
    if len(row.cells) < count:
        raise RowError(f"expected at least {count} columns, found {len(row.cells)}")


# --- Portfolio.csv ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioRow:
    product: str
    symbol_or_isin: str
    quantity: Decimal
    closing_price: Decimal
    currency: str
    local_value: Decimal
    account_value: Decimal  # in the account currency (the last column)
    is_cash: bool


def parse_portfolio(path: Path) -> tuple[str, Parsed[PortfolioRow]]:
    """The account currency and the rows (cash lines flagged with ``is_cash``)."""
    return cached("portfolio", path, _parse_portfolio)


def _parse_portfolio(path: Path) -> tuple[str, Parsed[PortfolioRow]]:
    """Columns: product, symbol/ISIN, amount, closing price, local-value currency, local value,
    value in the account currency. An older variant writes ``EUR 1440.10`` in one field.
    Cash lines (``CASH & CASH FUND & FTX CASH (EUR)``) have no ISIN, amount or price."""
    table = read_table(path)
    _check_width(table, 5, "Portfolio.csv")
    last_named = next((name for name in reversed(table.header) if name), "")
    account_currency = currency_in_header(last_named)

    def parse(row: Row) -> PortfolioRow:
        _need_cells(row, 5)
        product = row.get(0)
        combined_currency, combined_amount = split_currency(row.get(4))
        if combined_currency:
            currency = combined_currency
            local_value = require_number(combined_amount, "local value")
            account_text = next(
                (cell for cell in reversed(row.cells[5:]) if cell.strip()), combined_amount
            )
        else:
            currency = row.get(4) or account_currency
            local_value = require_number(row.get(5), "local value")
            account_text = row.get(6) or row.get(5)
        account_value = require_number(split_currency(account_text)[1], "value")
        quantity = parse_number(row.get(2))
        price = parse_number(row.get(3))
        is_cash = (quantity is None and not row.get(1)) or product.upper().startswith("CASH &")
        if not is_cash and quantity is None:
            raise RowError("the quantity (column 3) is missing")
        return PortfolioRow(
            product=product,
            symbol_or_isin=row.get(1),
            quantity=quantity or Decimal(0),
            closing_price=price or Decimal(0),
            currency=currency,
            local_value=local_value,
            account_value=account_value,
            is_cash=is_cash,
        )

    rows, issues = parse_rows(table, parse)
    return account_currency, Parsed(table.file, rows, issues, table.language)


# --- Transactions.csv -------------------------------------------------------------------------


@dataclass(frozen=True)
class _TransactionLayout:
    """Column positions of one Transactions.csv layout."""

    name: str
    quantity: int
    price: int
    price_currency: int
    local_value: int
    account_value: int
    autofx_fee: int | None
    fee: int
    total: int
    order_ids: tuple[int, ...]
    # Cell holding the currency of the total; None: only the header names it (``Total EUR``).
    total_currency: int | None

    @property
    def width(self) -> int:
        return self.total + 1


# Keyed by the positions of the unnamed header cells, trailing unnamed cells left out (the
# current layout ends with a comma in most files, not in all).
_LAYOUTS: dict[tuple[int, ...], _TransactionLayout] = {
    # Current (AutoFX): 17 named columns, the Order ID in column 16 or the unnamed 17th.
    (8, 10): _TransactionLayout("current", 6, 7, 8, 9, 11, 13, 14, 15, (16, 17), None),
    # Older: 19 columns, the currency in the unnamed column after each amount.
    (8, 10, 12, 15, 17): _TransactionLayout("older", 6, 7, 8, 9, 11, None, 14, 16, (18,), 17),
    # Oldest (2020 to early 2021): 18 columns, no venue, the currency before each amount.
    (6, 8, 10, 13, 15): _TransactionLayout("oldest", 5, 7, 6, 9, 11, None, 14, 16, (17,), 15),
}


@dataclass(frozen=True)
class TransactionRow:
    day: date
    time: str
    product: str
    isin: str
    quantity: Decimal  # positive for a buy
    price: Decimal  # in price_currency
    price_currency: str
    local_value: Decimal  # in price_currency
    account_value: Decimal  # in account_currency
    autofx_fee: Decimal  # negative, in account_currency (current layout only)
    fees: Decimal  # negative, all fees including AutoFX
    total: Decimal  # in account_currency, negative for a buy
    account_currency: str
    order_id: str


def _layout_of(table: Table) -> _TransactionLayout:
    header = list(table.header)
    while header and not header[-1]:
        header.pop()
    unnamed = tuple(i for i, name in enumerate(header) if not name)
    layout = _LAYOUTS.get(unnamed)
    if layout is None:
        raise ExportFormatError(
            f"{table.file} line 1: unknown Transactions.csv layout ({len(table.header)} "
            f"columns, unnamed columns at {list(unnamed)}); expected one of DeGiro's three: "
            "current (AutoFX, 17 columns), older (19) or oldest (18)"
        )
    return layout


def parse_transactions(path: Path) -> Parsed[TransactionRow]:
    return cached("transactions", path, _parse_transactions)


def _parse_transactions(path: Path) -> Parsed[TransactionRow]:
    table = read_table(path)
    layout = _layout_of(table)
    header_currency = currency_in_header(table.header[layout.total])

    def parse(row: Row) -> TransactionRow:
        _need_cells(row, layout.width)
        if layout.total_currency is None:
            account_currency = header_currency
        else:
            account_currency = row.get(layout.total_currency) or header_currency
        quantity = require_number(row.get(layout.quantity), "quantity")
        if quantity == 0:
            raise RowError("the quantity is zero")
        autofx = Decimal(0)
        if layout.autofx_fee is not None:
            autofx = parse_number(row.get(layout.autofx_fee)) or Decimal(0)
        fee = parse_number(row.get(layout.fee)) or Decimal(0)
        return TransactionRow(
            day=parse_date(row.get(0)),
            time=row.get(1),
            product=row.get(2),
            isin=row.get(3),
            quantity=quantity,
            price=require_number(row.get(layout.price), "price"),
            price_currency=row.get(layout.price_currency) or account_currency,
            local_value=parse_number(row.get(layout.local_value)) or Decimal(0),
            account_value=parse_number(row.get(layout.account_value)) or Decimal(0),
            autofx_fee=-abs(autofx),
            fees=-abs(autofx) - abs(fee),
            total=require_number(row.get(layout.total), "total"),
            account_currency=account_currency,
            order_id=next((row.get(i) for i in layout.order_ids if row.get(i)), ""),
        )

    rows, issues = parse_rows(table, parse)
    return Parsed(table.file, rows, issues, table.language, layout.name)


# --- Account.csv ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    line: int
    day: date
    time: str
    value_day: date
    product: str
    isin: str
    description: str
    fx_rate: Decimal | None
    currency: str
    change: Decimal | None  # None on balance-only rows
    balance_currency: str
    balance: Decimal | None
    order_id: str


def _join_continuations(table: Table) -> tuple[list[Row], list[RowIssue]]:
    """A long Description or Order Id may wrap onto a line that starts with commas: join it
    to the row above (an Order Id is glued back together, text gets a space)."""
    joined: list[Row] = []
    issues: list[RowIssue] = []
    for row in table.rows:
        if row.get(0) or row.get(1):
            joined.append(row)
            continue
        if not joined:
            issues.append(
                RowIssue(table.file, row.line, "a continuation line with no row above it")
            )
            continue
        previous = joined[-1]
        cells = list(previous.cells)
        for index, cell in enumerate(row.cells):
            if not cell.strip():
                continue
            while len(cells) <= index:
                cells.append("")
            glue = "" if index == 11 else " "
            cells[index] = f"{cells[index].strip()}{glue}{cell.strip()}".strip()
        joined[-1] = Row(previous.line, cells)
    return joined, issues


def parse_account(path: Path) -> Parsed[AccountRow]:
    """Rows of the account statement, in file order (newest first)."""
    return cached("account", path, _parse_account)


def _parse_account(path: Path) -> Parsed[AccountRow]:
    """Here the named ``Change``/``Balance`` columns hold the currency and the unnamed column
    after each holds the amount, the reverse of Transactions.csv."""
    table = read_table(path)
    _check_width(table, 11, "Account.csv")
    rows_in, issues = _join_continuations(table)

    def parse(row: Row) -> AccountRow:
        _need_cells(row, 10)
        day = parse_date(row.get(0))
        change = parse_number(row.get(8))
        if change is not None and not row.get(7):
            raise RowError(f"the amount {row.get(8)!r} has no currency (column 8 is empty)")
        return AccountRow(
            line=row.line,
            day=day,
            time=row.get(1),
            value_day=parse_date(row.get(2)) if row.get(2) else day,
            product=row.get(3),
            isin=row.get(4),
            description=row.get(5),
            fx_rate=parse_number(row.get(6)),
            currency=row.get(7),
            change=change,
            balance_currency=row.get(9),
            balance=parse_number(row.get(10)),
            order_id=row.get(11),
        )

    joined = Table(table.path, table.header, rows_in, table.language)
    rows, row_issues = parse_rows(joined, parse)
    issues = sorted([*issues, *row_issues], key=lambda issue: issue.line)
    return Parsed(table.file, rows, issues, table.language)


def all_issues(parsed: Sequence[Parsed[object]]) -> list[RowIssue]:
    return [issue for p in parsed for issue in p.issues]

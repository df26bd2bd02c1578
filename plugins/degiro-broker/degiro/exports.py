"""Parsers for DeGiro's CSV exports: ``Portfolio.csv``, ``Transactions.csv``, ``Account.csv``.

DeGiro translates the headers and leaves several columns unnamed, so columns are mapped by
position, never by name: the layout of Transactions.csv is told by where its unnamed columns
are (the SDK's :class:`~stonks_plugins.sdk.Layout`), which does not depend on the language.
Amounts stay :class:`~decimal.Decimal` with the digits of the file. Every parser returns an
:class:`Export`: the usable rows and a report in which every other line of the file already
has its outcome (the header and blank lines skipped, unreadable rows reported). What an
Account.csv row *means* is decided later, in :mod:`.classify`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Generic, TypeVar

from stonks_plugins.sdk import (
    BadHeader,
    ImportReport,
    Layout,
    MissingValue,
    Row,
    RowError,
    ShortRow,
    currency_in_header,
    detect_layout,
    parse_date,
    parse_decimal,
    parse_rows,
    read_csv,
    require_decimal,
    split_currency,
)

from .csvio import ALIASES, STATEMENT_CONTINUATION, cached, detect_language
from .tradetext import in_pounds

PORTFOLIO_FILE = "Portfolio.csv"
TRANSACTIONS_FILE = "Transactions.csv"
ACCOUNT_FILE = "Account.csv"

T = TypeVar("T")


@dataclass(frozen=True)
class Export(Generic[T]):
    """One parsed file. ``report`` holds the outcome of every line parsing settled: all of
    them for Portfolio.csv and Transactions.csv, all but the data rows for Account.csv."""

    file: str
    rows: list[T]
    report: ImportReport
    language: str = ""
    layout: str = ""
    account_currency: str = ""


def _need_cells(row: Row, count: int) -> None:
    if len(row.cells) < count:
        raise ShortRow(f"expected at least {count} columns, found {len(row.cells)}")


def _width(header: tuple[str, ...], minimum: int, file: str) -> None:
    if len(header) < minimum:
        raise BadHeader(
            f"expected a {file} header with at least {minimum} columns, found {len(header)}",
            file=file,
            line=1,
        )


# --- Portfolio.csv ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioRow:
    line: int
    product: str
    symbol_or_isin: str
    quantity: Decimal
    closing_price: Decimal  # in currency
    currency: str
    local_value: Decimal  # in currency
    account_value: Decimal  # in the account currency (the last column)
    is_cash: bool


def parse_portfolio(path: Path) -> Export[PortfolioRow]:
    """The positions and cash lines; ``account_currency`` from the last header name."""
    return cached("portfolio", path, _parse_portfolio)


def _parse_portfolio(path: Path) -> Export[PortfolioRow]:
    """Columns: product, symbol/ISIN, amount, closing price, local-value currency, local value,
    value in the account currency. An older variant writes ``EUR 1440.10`` in one field.
    Cash lines (``CASH & CASH FUND & FTX CASH (EUR)``) have no ISIN, amount or price."""
    table = read_csv(path, delimiter=",")
    _width(table.header, 5, PORTFOLIO_FILE)
    last_named = next((name for name in reversed(table.header) if name), "")
    account_currency = currency_in_header(last_named, "EUR")

    def parse(row: Row) -> PortfolioRow:
        _need_cells(row, 5)
        product = row.get(0)
        combined_currency, combined_amount = split_currency(row.get(4))
        if combined_currency:
            currency = combined_currency
            local_value = require_decimal(combined_amount, "local value")
            account_text = next(
                (cell for cell in reversed(row.cells[5:]) if cell.strip()), combined_amount
            )
        else:
            currency = row.get(4) or account_currency
            local_value = require_decimal(row.get(5), "local value")
            account_text = row.get(6) or row.get(5)
        account_value = require_decimal(split_currency(account_text)[1], "value")
        quantity = parse_decimal(row.get(2))
        price = parse_decimal(row.get(3)) or Decimal(0)
        is_cash = (quantity is None and not row.get(1)) or product.upper().startswith("CASH &")
        if not is_cash and quantity is None:
            raise MissingValue("the quantity (column 3) is empty")
        price, _ = in_pounds(price, currency)
        local_value, currency = in_pounds(local_value, currency)
        return PortfolioRow(
            line=row.line,
            product=product,
            symbol_or_isin=row.get(1),
            quantity=quantity or Decimal(0),
            closing_price=price,
            currency=currency,
            local_value=local_value,
            account_value=account_value,
            is_cash=is_cash,
        )

    report = ImportReport()
    rows = [parsed.value for parsed in parse_rows(table, parse, report)]
    return Export(
        table.name,
        rows,
        report,
        detect_language(table.header),
        account_currency=account_currency,
    )


# --- Transactions.csv -------------------------------------------------------------------------

_CURRENT = (
    "date",
    "time",
    "product",
    "isin",
    "exchange",
    "venue",
    "quantity",
    "price",
    "price_currency",
    "local_value",
    "local_currency",
    "value",
    "exchange_rate",
    "autofx_fee",
    "fee",
    "total",
    "order_id",
)
_OLDER = (
    "date",
    "time",
    "product",
    "isin",
    "exchange",
    "venue",
    "quantity",
    "price",
    "price_currency",
    "local_value",
    "local_currency",
    "value",
    "value_currency",
    "exchange_rate",
    "fee",
    "fee_currency",
    "total",
    "total_currency",
    "order_id",
)
_OLDEST = (
    "date",
    "time",
    "product",
    "isin",
    "exchange",
    "quantity",
    "price_currency",
    "price",
    "local_currency",
    "local_value",
    "value_currency",
    "value",
    "exchange_rate",
    "fee_currency",
    "fee",
    "total_currency",
    "total",
    "order_id",
)
TRANSACTION_LAYOUTS = (
    # Current (AutoFX): 17 named columns; the Order ID in column 16 or the unnamed 17th.
    Layout("current", _CURRENT, frozenset({8, 10})),
    # Older: 19 columns, the currency in the unnamed column after each amount.
    Layout("older", _OLDER, frozenset({8, 10, 12, 15, 17})),
    # Oldest (2020 to early 2021): 18 columns, no venue, the currency before each amount.
    Layout("oldest", _OLDEST, frozenset({6, 8, 10, 13, 15})),
)


@dataclass(frozen=True)
class TransactionRow:
    line: int
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


def parse_transactions(path: Path) -> Export[TransactionRow]:
    return cached("transactions", path, _parse_transactions)


def _parse_transactions(path: Path) -> Export[TransactionRow]:
    table = read_csv(path, delimiter=",")
    columns = detect_layout(
        table.header,
        TRANSACTION_LAYOUTS,
        ALIASES,
        file=table.name,
        line=table.header_line,
        what="Transactions.csv",
    )
    total_at = columns.positions["total"]
    order_at = columns.positions["order_id"]
    header_currency = currency_in_header(table.header[total_at], "EUR")

    def parse(row: Row) -> TransactionRow:
        _need_cells(row, total_at + 1)
        cells = row.cells
        account_currency = columns.cell(cells, "total_currency") or header_currency
        quantity = require_decimal(columns.cell(cells, "quantity"), "quantity")
        if quantity == 0:
            raise RowError("the quantity is zero", rule="zero_quantity")
        autofx = parse_decimal(columns.cell(cells, "autofx_fee")) or Decimal(0)
        fee = parse_decimal(columns.cell(cells, "fee")) or Decimal(0)
        price_currency = columns.cell(cells, "price_currency") or account_currency
        price, currency = in_pounds(
            require_decimal(columns.cell(cells, "price"), "price"), price_currency
        )
        local_value, _ = in_pounds(
            parse_decimal(columns.cell(cells, "local_value")) or Decimal(0), price_currency
        )
        return TransactionRow(
            line=row.line,
            day=parse_date(columns.cell(cells, "date")),
            time=columns.cell(cells, "time"),
            product=columns.cell(cells, "product"),
            isin=columns.cell(cells, "isin"),
            quantity=quantity,
            price=price,
            price_currency=currency,
            local_value=local_value,
            account_value=parse_decimal(columns.cell(cells, "value")) or Decimal(0),
            autofx_fee=-abs(autofx),
            fees=-abs(autofx) - abs(fee),
            total=require_decimal(columns.cell(cells, "total"), "total"),
            account_currency=account_currency,
            # In the current layout the Order ID is in its column or the unnamed one after.
            order_id=row.get(order_at) or row.get(order_at + 1),
        )

    report = ImportReport()
    rows = [parsed.value for parsed in parse_rows(table, parse, report)]
    return Export(
        table.name,
        rows,
        report,
        columns.language or detect_language(table.header),
        columns.layout,
        header_currency,
    )


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
    text: str  # the row as the file has it, for the import report


def parse_account(path: Path) -> Export[AccountRow]:
    """Rows of the account statement, in file order (newest first)."""
    return cached("account", path, _parse_account)


def _parse_account(path: Path) -> Export[AccountRow]:
    """Here the named ``Change``/``Balance`` columns hold the currency and the unnamed column
    after each holds the amount, the reverse of Transactions.csv. Amounts in pence (``GBX``)
    are read in pounds, like the prices."""
    table = read_csv(path, delimiter=",", continuation=STATEMENT_CONTINUATION)
    _width(table.header, 11, ACCOUNT_FILE)

    def parse(row: Row) -> AccountRow:
        _need_cells(row, 10)
        day = parse_date(row.get(0))
        change, currency = parse_decimal(row.get(8)), row.get(7)
        if change is not None and not currency:
            raise MissingValue(f"the amount {row.get(8)!r} has no currency (column 8 is empty)")
        if change is not None:
            change, currency = in_pounds(change, currency)
        balance, balance_currency = parse_decimal(row.get(10)), row.get(9)
        if balance is not None:
            balance, balance_currency = in_pounds(balance, balance_currency)
        return AccountRow(
            line=row.line,
            day=day,
            time=row.get(1),
            value_day=parse_date(row.get(2)) if row.get(2) else day,
            product=row.get(3),
            isin=row.get(4),
            description=row.get(5),
            fx_rate=parse_decimal(row.get(6)),
            currency=currency,
            change=change,
            balance_currency=balance_currency,
            balance=balance,
            order_id=row.get(11),
            text=row.text,
        )

    report = ImportReport()
    parsed = parse_rows(table, parse, report, understood=False)
    rows = [p.value for p in parsed]
    return Export(table.name, rows, report, detect_language(table.header))

"""DeGiro services for the Stonks Overwatch registry, computed from DeGiro's CSV exports.

Sign convention, as in DeGiro's files: money leaving the account is negative. A buy has a
negative ``total``, fees and withheld dividend tax are negative, a withdrawal is a negative
deposit. Lists are newest first, like DeGiro's own statements.

Files are read on every call (a user dropping in a fresh export sees it without a reload);
the parse is reused while a file is unchanged. Rows that cannot be read are skipped, never
fatal: each service keeps them in ``import_report`` as ``(file, line, reason)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from stonks_plugins.sdk import (
    AccountOverview,
    AccountServiceInterface,
    BrokerServiceInterface,
    Deposit,
    DepositServiceInterface,
    Dividend,
    DividendServiceInterface,
    Fee,
    FeeServiceInterface,
    PortfolioEntry,
    PortfolioServiceInterface,
    TotalPortfolio,
    Transaction,
    TransactionServiceInterface,
)

from .classify import FEES, Kind, classify
from .csvio import ExportMissingError, Parsed, RowIssue, is_isin
from .exports import (
    ACCOUNT_FILE,
    PORTFOLIO_FILE,
    TRANSACTIONS_FILE,
    AccountRow,
    PortfolioRow,
    TransactionRow,
    parse_account,
    parse_portfolio,
    parse_transactions,
)

BROKER = "degiro"
SAMPLE_DATA_FOLDER = Path(__file__).parent / "data"


def data_folder(config: object | None) -> Path:
    """The folder holding the exports: ``config.import_folder``, else the shipped samples."""
    if isinstance(config, dict):
        folder = config.get("import_folder") or ""
    else:
        folder = getattr(config, "import_folder", "") or ""
    return Path(str(folder)).expanduser() if folder else SAMPLE_DATA_FOLDER


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def _product_type(name: str) -> str:
    upper = f" {name.upper()} "
    return "etf" if " ETF " in upper or " UCITS " in upper else "stock"


@dataclass(frozen=True)
class Exports:
    """The exports found in one folder; a missing file is ``None``."""

    folder: Path
    account_currency: str
    portfolio: Parsed[PortfolioRow] | None
    transactions: Parsed[TransactionRow] | None
    account: Parsed[AccountRow] | None

    @property
    def issues(self) -> list[RowIssue]:
        return self.issues_of(PORTFOLIO_FILE, TRANSACTIONS_FILE, ACCOUNT_FILE)

    def issues_of(self, *files: str) -> list[RowIssue]:
        found = (self.portfolio, self.transactions, self.account)
        return [
            issue
            for parsed in found
            if parsed is not None and parsed.file in files
            for issue in parsed.issues
        ]

    def require_account(self) -> Parsed[AccountRow]:
        if self.account is None:
            raise ExportMissingError(f"{self.folder / ACCOUNT_FILE}: file not found")
        return self.account

    def require_transactions(self) -> Parsed[TransactionRow]:
        if self.transactions is None:
            raise ExportMissingError(f"{self.folder / TRANSACTIONS_FILE}: file not found")
        return self.transactions

    def account_rows(self, *kinds: Kind) -> list[AccountRow]:
        wanted = set(kinds)
        return [row for row in self.require_account().rows if classify(row) in wanted]


def load_exports(folder: Path) -> Exports:
    """Parse whatever exports the folder holds. A file that exists but cannot be read at all
    raises :class:`~.csvio.ExportFormatError`; a missing one is ``None``."""
    if not folder.is_dir():
        raise ExportMissingError(f"{folder}: the import folder does not exist")
    portfolio: Parsed[PortfolioRow] | None = None
    transactions: Parsed[TransactionRow] | None = None
    account: Parsed[AccountRow] | None = None
    currency = ""
    if (folder / PORTFOLIO_FILE).exists():
        currency, portfolio = parse_portfolio(folder / PORTFOLIO_FILE)
    if (folder / TRANSACTIONS_FILE).exists():
        transactions = parse_transactions(folder / TRANSACTIONS_FILE)
        if not currency and transactions.rows:
            currency = transactions.rows[0].account_currency
    if (folder / ACCOUNT_FILE).exists():
        account = parse_account(folder / ACCOUNT_FILE)
    if portfolio is None and transactions is None and account is None:
        raise ExportMissingError(
            f"{folder}: none of {PORTFOLIO_FILE}, {TRANSACTIONS_FILE}, {ACCOUNT_FILE} found"
        )
    return Exports(folder, currency or "EUR", portfolio, transactions, account)


class _ImportReporting(BrokerServiceInterface):
    """Keeps the rows the last call had to skip in the files it reads (``reads``), as
    ``(file, line, reason)`` tuples."""

    reads: tuple[str, ...] = (PORTFOLIO_FILE, TRANSACTIONS_FILE, ACCOUNT_FILE)

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config=config, **kwargs)
        self.import_report: list[RowIssue] = []

    def _exports(self) -> Exports:
        exports = load_exports(data_folder(getattr(self, "config", None)))
        self.import_report = exports.issues_of(*self.reads)
        return exports


# --- positions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    product: str
    symbol: str
    isin: str
    quantity: Decimal
    price: Decimal
    currency: str
    value: Decimal  # in currency
    account_value: Decimal  # in the account currency


def positions_from_portfolio(exports: Exports) -> list[Position]:
    assert exports.portfolio is not None
    isins = (
        {row.product: row.isin for row in exports.transactions.rows} if exports.transactions else {}
    )
    positions = []
    for row in exports.portfolio.rows:
        if row.is_cash:
            continue
        symbol = row.symbol_or_isin
        isin = symbol if is_isin(symbol) else isins.get(row.product, "")
        positions.append(
            Position(
                product=row.product,
                symbol=symbol or isin,
                isin=isin,
                quantity=row.quantity,
                price=row.closing_price,
                currency=row.currency,
                value=row.local_value,
                account_value=row.account_value,
            )
        )
    return positions


def positions_from_transactions(rows: Iterable[TransactionRow]) -> list[Position]:
    """Without Portfolio.csv: quantities summed per product, valued at the latest trade's
    price (and that trade's exchange rate for the account-currency value)."""
    quantities: dict[str, Decimal] = {}
    latest: dict[str, TransactionRow] = {}
    for row in rows:
        key = row.isin or row.product
        quantities[key] = quantities.get(key, Decimal(0)) + row.quantity
        if key not in latest or row.day > latest[key].day:
            latest[key] = row  # rows are newest first: the first one seen wins a tie
    positions = []
    for key, quantity in sorted(quantities.items()):
        if quantity == 0:
            continue
        last = latest[key]
        value = quantity * last.price
        rate = abs(last.account_value / last.local_value) if last.local_value else Decimal(1)
        positions.append(
            Position(
                product=last.product,
                symbol=last.isin or last.product,
                isin=last.isin,
                quantity=quantity,
                price=last.price,
                currency=last.price_currency,
                value=value.quantize(Decimal("0.01")),
                account_value=(value * rate).quantize(Decimal("0.01")),
            )
        )
    return positions


def positions(exports: Exports) -> list[Position]:
    if exports.portfolio is not None:
        return positions_from_portfolio(exports)
    return positions_from_transactions(exports.require_transactions().rows)


def cash(exports: Exports) -> Decimal:
    """Cash in the account currency: Portfolio.csv's cash lines, else the statement's latest
    balance in that currency."""
    if exports.portfolio is not None:
        return _sum(row.account_value for row in exports.portfolio.rows if row.is_cash)
    balances = latest_balances(exports)
    return balances.get(exports.account_currency, Decimal(0))


def latest_balances(exports: Exports) -> dict[str, Decimal]:
    """Per currency, the balance on the newest statement row (rows are newest first)."""
    balances: dict[str, Decimal] = {}
    if exports.account is None:
        return balances
    for row in exports.account.rows:
        if row.balance is not None and row.balance_currency:
            balances.setdefault(row.balance_currency, row.balance)
    return balances


class PortfolioService(_ImportReporting, PortfolioServiceInterface):
    """Positions from ``Portfolio.csv`` (from ``Transactions.csv`` when there is none)."""

    def get_portfolio(self) -> list[PortfolioEntry]:
        """Price and value are in the position's own currency (``currency``)."""
        return [
            PortfolioEntry(
                name=p.product,
                symbol=p.symbol,
                shares=float(p.quantity),
                price=float(p.price),
                value=float(p.value),
                currency=p.currency,
                isin=p.isin,
                product_type=_product_type(p.product),
                broker=BROKER,
            )
            for p in positions(self._exports())
        ]

    def get_portfolio_total(self) -> TotalPortfolio:
        """Totals in the account currency: positions are summed by their converted value."""
        exports = self._exports()
        currency = exports.account_currency
        deposits = Decimal(0)
        if exports.account is not None:
            deposits = _sum(
                row.change or Decimal(0)
                for row in exports.account_rows(Kind.DEPOSIT)
                if row.currency == currency
            )
        return TotalPortfolio(
            total_value=float(_sum(p.account_value for p in positions(exports))),
            total_cash=float(cash(exports)),
            total_deposits=float(deposits),
            currency=currency,
            brokers=(BROKER,),
        )


class TransactionService(_ImportReporting, TransactionServiceInterface):
    """Trades from ``Transactions.csv``, one entry per fill (a partial fill is several rows).

    ``price`` is in ``currency`` (the product's); ``total`` and ``fees`` (AutoFX included)
    are in the account currency, because that is what left or entered the account.
    """

    reads = (TRANSACTIONS_FILE,)

    def get_transactions(self) -> list[Transaction]:
        rows = self._exports().require_transactions().rows
        transactions = [
            Transaction(
                date=row.day,
                name=row.product,
                symbol=row.isin,
                kind="buy" if row.quantity > 0 else "sell",
                quantity=float(abs(row.quantity)),
                price=float(row.price),
                total=float(row.total),
                fees=float(row.fees),
                currency=row.price_currency,
                broker=BROKER,
            )
            for row in rows
        ]
        return sorted(transactions, key=lambda t: t.date, reverse=True)


class DepositService(_ImportReporting, DepositServiceInterface):
    """Deposits (positive) and withdrawals (negative) from ``Account.csv``.

    The ``Reservation iDEAL / Sofort Deposit`` +/- pair is not money moved, so it is skipped;
    so are cash sweeps and money-market conversions, which move money inside the account.
    """

    reads = (ACCOUNT_FILE,)

    def get_cash_deposits(self) -> list[Deposit]:
        deposits = [
            Deposit(
                date=row.day,
                amount=float(row.change or 0),
                currency=row.currency,
                description=row.description,
                broker=BROKER,
            )
            for row in self._exports().account_rows(Kind.DEPOSIT)
        ]
        return sorted(deposits, key=lambda d: d.date, reverse=True)


class DividendService(_ImportReporting, DividendServiceInterface):
    """Dividends from ``Account.csv`` in their own currency, with the tax withheld (negative)
    or refunded (positive) on the same day for the same product folded into ``taxes``."""

    reads = (ACCOUNT_FILE,)

    def get_dividends(self) -> list[Dividend]:
        gross: dict[tuple[date, str, str], Decimal] = {}
        taxes: dict[tuple[date, str, str], Decimal] = {}
        names: dict[tuple[date, str, str], str] = {}
        for row in self._exports().account_rows(Kind.DIVIDEND, Kind.DIVIDEND_TAX):
            key = (row.day, row.isin or row.product, row.currency)
            names.setdefault(key, row.product)
            target = gross if classify(row) is Kind.DIVIDEND else taxes
            target[key] = target.get(key, Decimal(0)) + (row.change or Decimal(0))
        dividends = [
            Dividend(
                date=key[0],
                name=name,
                symbol=key[1],
                amount=float(gross.get(key, Decimal(0))),
                taxes=float(taxes.get(key, Decimal(0))),
                currency=key[2],
                broker=BROKER,
            )
            for key, name in names.items()
        ]
        return sorted(dividends, key=lambda d: d.date, reverse=True)


class FeeService(_ImportReporting, FeeServiceInterface):
    """Transaction fees, exchange connection fees and transaction taxes from ``Account.csv``,
    plus the AutoFX fees only ``Transactions.csv`` shows (the statement folds them into the
    FX debit). Without ``Account.csv`` the fees come from ``Transactions.csv`` alone."""

    reads = (ACCOUNT_FILE, TRANSACTIONS_FILE)

    def get_fees(self) -> list[Fee]:
        exports = self._exports()
        fees: list[Fee] = []
        autofx_in_statement = False
        if exports.account is not None:
            for row in exports.account.rows:
                kind = classify(row)
                if kind not in FEES:
                    continue
                autofx_in_statement = autofx_in_statement or kind is Kind.AUTOFX_FEE
                fees.append(
                    Fee(
                        date=row.day,
                        description=row.description,
                        amount=float(row.change or 0),
                        currency=row.currency,
                        broker=BROKER,
                    )
                )
        elif exports.transactions is None:
            exports.require_account()  # neither file: say which one is missing
        if exports.transactions is not None:
            for trade in exports.transactions.rows:
                trade_fee = trade.fees - trade.autofx_fee
                if trade.autofx_fee and not autofx_in_statement:
                    fees.append(
                        self._fee(trade, f"DEGIRO AutoFX fee ({trade.product})", trade.autofx_fee)
                    )
                if trade_fee and exports.account is None:
                    fees.append(
                        self._fee(trade, f"DEGIRO transaction fee ({trade.product})", trade_fee)
                    )
        return sorted(fees, key=lambda f: f.date, reverse=True)

    @staticmethod
    def _fee(row: TransactionRow, description: str, amount: Decimal) -> Fee:
        return Fee(
            date=row.day,
            description=description,
            amount=float(amount),
            currency=row.account_currency,
            broker=BROKER,
        )


class AccountService(_ImportReporting, AccountServiceInterface):
    """Cash from the ``Portfolio.csv`` cash lines, else the statement's latest balance; the
    statement's balances per currency and interest received/charged in ``extra``."""

    def get_account_overview(self) -> AccountOverview:
        exports = self._exports()
        account_id = getattr(self.config, "int_account", 0) or 0
        extra: dict[str, str] = {
            "source": "sample" if exports.folder == SAMPLE_DATA_FOLDER else "import",
            "skipped_rows": str(len(exports.issues)),
        }
        if exports.portfolio is not None or exports.transactions is not None:
            extra["positions"] = str(len(positions(exports)))
        if exports.account is not None:
            for currency, balance in sorted(latest_balances(exports).items()):
                extra[f"balance_{currency}"] = f"{balance:.2f}"
            if exports.account.rows:
                extra["statement_date"] = exports.account.rows[0].day.isoformat()
            interest: dict[str, Decimal] = {}
            for row in exports.account_rows(Kind.INTEREST):
                interest[row.currency] = interest.get(row.currency, Decimal(0)) + (
                    row.change or Decimal(0)
                )
            for currency, total in sorted(interest.items()):
                extra[f"interest_{currency}"] = f"{total:.2f}"
        return AccountOverview(
            broker=BROKER,
            account_id=str(account_id) if account_id else "",
            cash=float(cash(exports)),
            currency=exports.account_currency,
            extra=extra,
        )

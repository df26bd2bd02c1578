"""DeGiro services for the Stonks Overwatch registry, computed from DeGiro's CSV exports.

Sign convention, as in DeGiro's files: money leaving the account is negative. A buy has a
negative ``total``, fees and withheld dividend tax are negative, a withdrawal is a negative
deposit. Lists are newest first, like DeGiro's own statements.

Files are read on every call: they are small, and a user dropping in a fresh export should see
it without a reload.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path

from stonks_plugins.sdk import (
    AccountOverview,
    AccountServiceInterface,
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

from .exports import (
    ACCOUNT_FILE,
    PORTFOLIO_FILE,
    TRANSACTIONS_FILE,
    AccountRow,
    ExportMissingError,
    PortfolioRow,
    is_isin,
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


# --- Account.csv classification -------------------------------------------------------------

# Lower-case fragments of DeGiro's descriptions, in several of its languages.
_SKIP = ("reservation", "reservering")
_FEES = (
    "transaction and/or third",
    "transactiekosten",
    "transaction fee",
    "transactiebelasting",
    "transaktionsgebühr",
    "connection fee",
    "aansluitingskosten",
    "verbindungsgebühr",
)
_DIVIDEND_TAXES = ("dividend tax", "dividendbelasting", "dividendensteuer", "quellensteuer")
_DIVIDENDS = ("dividend", "fund distribution", "kapitaalsuitkering", "ausschüttung")
_DEPOSITS = ("deposit", "storting", "withdrawal", "einzahlung", "auszahlung")


def classify(row: AccountRow) -> str:
    """``fee``, ``dividend_tax``, ``dividend``, ``deposit`` or ``other`` (trades, FX, ...)."""
    text = row.description.lower()
    if row.change is None or any(word in text for word in _SKIP):
        return "other"
    if any(word in text for word in _FEES):
        return "fee"
    if any(word in text for word in _DIVIDEND_TAXES):
        return "dividend_tax"
    if any(word in text for word in _DIVIDENDS):
        return "dividend"
    # "flatex terugstorting" is a withdrawal: the sign of the amount says which way it went.
    if any(word in text for word in _DEPOSITS):
        return "deposit"
    return "other"


def _account_rows(config: object | None) -> list[AccountRow]:
    return parse_account(data_folder(config) / ACCOUNT_FILE)


def _deposit_rows(config: object | None) -> list[AccountRow]:
    return [row for row in _account_rows(config) if classify(row) == "deposit"]


def _isin_by_product(folder: Path) -> dict[str, str]:
    """Portfolio.csv may hold a ticker instead of an ISIN; Transactions.csv knows the ISIN."""
    try:
        return {row.product: row.isin for row in parse_transactions(folder / TRANSACTIONS_FILE)}
    except ExportMissingError:
        return {}


def _product_type(name: str) -> str:
    upper = f" {name.upper()} "
    return "etf" if " ETF " in upper or " UCITS " in upper else "stock"


class PortfolioService(PortfolioServiceInterface):
    """Positions from ``Portfolio.csv``; the cash lines become ``total_cash``."""

    def _rows(self) -> tuple[str, list[PortfolioRow]]:
        return parse_portfolio(data_folder(self.config) / PORTFOLIO_FILE)

    def get_portfolio(self) -> list[PortfolioEntry]:
        """Price and value are in the position's own currency (``currency``)."""
        _, rows = self._rows()
        positions = [row for row in rows if not row.is_cash]
        isins: dict[str, str] | None = None
        entries: list[PortfolioEntry] = []
        for row in positions:
            isin = row.symbol_or_isin if is_isin(row.symbol_or_isin) else ""
            if not isin:
                if isins is None:
                    isins = _isin_by_product(data_folder(self.config))
                isin = isins.get(row.product, "")
            entries.append(
                PortfolioEntry(
                    name=row.product,
                    symbol=row.symbol_or_isin or isin,
                    shares=float(row.quantity),
                    price=float(row.closing_price),
                    value=float(row.local_value),
                    currency=row.currency,
                    isin=isin,
                    product_type=_product_type(row.product),
                    broker=BROKER,
                )
            )
        return entries

    def get_portfolio_total(self) -> TotalPortfolio:
        """Totals in the account currency: positions are summed by their converted value."""
        currency, rows = self._rows()
        try:
            deposits = _sum(
                row.change or Decimal(0)
                for row in _deposit_rows(self.config)
                if row.currency == currency
            )
        except ExportMissingError:
            deposits = Decimal(0)
        return TotalPortfolio(
            total_value=float(_sum(row.account_value for row in rows if not row.is_cash)),
            total_cash=float(_sum(row.account_value for row in rows if row.is_cash)),
            total_deposits=float(deposits),
            currency=currency,
            brokers=(BROKER,),
        )


class TransactionService(TransactionServiceInterface):
    """Trades from ``Transactions.csv``, one entry per fill (a partial fill is several rows).

    ``price`` is in ``currency`` (the product's); ``total`` and ``fees`` are in the account
    currency, because that is what left or entered the account.
    """

    def get_transactions(self) -> list[Transaction]:
        rows = parse_transactions(data_folder(self.config) / TRANSACTIONS_FILE)
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


class DepositService(DepositServiceInterface):
    """Deposits (positive) and withdrawals (negative) from ``Account.csv``.

    The ``Reservation iDEAL / Sofort Deposit`` +/- pair is not money moved, so it is skipped.
    """

    def get_cash_deposits(self) -> list[Deposit]:
        deposits = [
            Deposit(
                date=row.day,
                amount=float(row.change or 0),
                currency=row.currency,
                description=row.description,
                broker=BROKER,
            )
            for row in _deposit_rows(self.config)
        ]
        return sorted(deposits, key=lambda d: d.date, reverse=True)


class DividendService(DividendServiceInterface):
    """Dividends from ``Account.csv``, with the tax withheld on the same day folded in."""

    def get_dividends(self) -> list[Dividend]:
        gross: dict[tuple[date, str, str], Decimal] = {}
        taxes: dict[tuple[date, str, str], Decimal] = {}
        names: dict[tuple[date, str, str], str] = {}
        for row in _account_rows(self.config):
            kind = classify(row)
            if kind not in ("dividend", "dividend_tax"):
                continue
            key = (row.day, row.isin or row.product, row.currency)
            names.setdefault(key, row.product)
            target = gross if kind == "dividend" else taxes
            target[key] = target.get(key, Decimal(0)) + (row.change or Decimal(0))
        dividends = [
            Dividend(
                date=day,
                name=names[(day, symbol, currency)],
                symbol=symbol,
                amount=float(gross.get((day, symbol, currency), Decimal(0))),
                taxes=float(taxes.get((day, symbol, currency), Decimal(0))),
                currency=currency,
                broker=BROKER,
            )
            for (day, symbol, currency) in names
        ]
        return sorted(dividends, key=lambda d: d.date, reverse=True)


class FeeService(FeeServiceInterface):
    """Transaction, exchange-connection and transaction-tax charges from ``Account.csv``."""

    def get_fees(self) -> list[Fee]:
        fees = [
            Fee(
                date=row.day,
                description=row.description,
                amount=float(row.change or 0),
                currency=row.currency,
                broker=BROKER,
            )
            for row in _account_rows(self.config)
            if classify(row) == "fee"
        ]
        return sorted(fees, key=lambda f: f.date, reverse=True)


class AccountService(AccountServiceInterface):
    """Cash from the ``Portfolio.csv`` cash lines, else the statement's latest balance."""

    def get_account_overview(self) -> AccountOverview:
        folder = data_folder(self.config)
        account_id = getattr(self.config, "int_account", 0) or 0
        extra: dict[str, str] = {"source": "sample" if folder == SAMPLE_DATA_FOLDER else "import"}
        currency, cash = "EUR", Decimal(0)
        try:
            currency, rows = parse_portfolio(folder / PORTFOLIO_FILE)
            cash = _sum(row.account_value for row in rows if row.is_cash)
            extra["positions"] = str(sum(1 for row in rows if not row.is_cash))
        except ExportMissingError:
            rows = []
        try:
            latest = next(
                (r for r in _account_rows(self.config) if r.balance_currency == currency), None
            )
        except ExportMissingError:
            latest = None
        if latest is not None and latest.balance is not None:
            extra["statement_date"] = latest.day.isoformat()
            extra["statement_balance"] = f"{latest.balance:.2f}"
            if not rows:
                cash = latest.balance
        return AccountOverview(
            broker=BROKER,
            account_id=str(account_id) if account_id else "",
            cash=float(cash),
            currency=currency,
            extra=extra,
        )

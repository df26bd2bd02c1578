"""DeGiro services for the Stonks Overwatch registry (API v2), computed from DeGiro's CSV
exports by :mod:`.ledger`.

Money is :class:`~stonks_plugins.sdk.Money`: a ``Decimal`` with the digits of the file and
its currency. Sign convention, as in DeGiro's files: money leaving the account is negative
(a buy's total, fees, withheld dividend tax, a withdrawal). Lists are newest first, like
DeGiro's own statements.

Files are read on every call (a user dropping in a fresh export sees it without a reload);
the import is reused while no file changed. Each service keeps the report of its last import
in ``import_report``: what became of every row of every file.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from stonks_plugins.sdk import (
    AccountOverviewV2,
    AccountServiceV2,
    BrokerServiceV2,
    DepositServiceV2,
    DepositV2,
    DividendServiceV2,
    DividendV2,
    FeeServiceV2,
    FeeV2,
    ImportReport,
    Money,
    PortfolioEntryV2,
    PortfolioServiceV2,
    TotalPortfolioV2,
    TransactionServiceV2,
    TransactionV2,
    decimal_sum,
    in_range,
)

from .ledger import Ledger, load
from .wording import BUY, FEES, SELL, Kind

BROKER = "degiro"
SAMPLE_DATA_FOLDER = Path(__file__).parent / "data"


def data_folder(config: object | None) -> Path:
    """The folder holding the exports: ``config.import_folder``, else the shipped samples."""
    if isinstance(config, dict):
        folder = config.get("import_folder") or ""
    else:
        folder = getattr(config, "import_folder", "") or ""
    return Path(str(folder)).expanduser() if folder else SAMPLE_DATA_FOLDER


def _product_type(name: str) -> str:
    upper = f" {name.upper()} "
    return "etf" if " ETF " in upper or " UCITS " in upper else "stock"


def _today(as_of: date | None) -> date | None:
    """``None`` for today: the exports' present."""
    return None if as_of is None or as_of >= date.today() else as_of


class _Imported(BrokerServiceV2):
    """Loads the folder's exports and keeps the import report of the last call."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config=config, **kwargs)
        self.import_report = ImportReport()

    def _ledger(self) -> Ledger:
        ledger = load(data_folder(getattr(self, "config", None)))
        self.import_report = ledger.report
        return ledger


class PortfolioService(_Imported, PortfolioServiceV2):
    """Positions from ``Portfolio.csv``; without it, rebuilt from the trades of
    ``Transactions.csv`` and ``Account.csv``. Price and value are in the position's own
    currency."""

    def get_portfolio(self, as_of: date | None = None) -> list[PortfolioEntryV2]:
        return [
            PortfolioEntryV2(
                name=p.product,
                symbol=p.symbol,
                shares=p.quantity,
                price=Money(p.price, p.currency),
                value=Money(p.value, p.currency),
                isin=p.isin,
                product_type=_product_type(p.product),
                broker=BROKER,
            )
            for p in self._ledger().positions(_today(as_of))
        ]

    def get_portfolio_total(self, as_of: date | None = None) -> TotalPortfolioV2:
        """Totals in the account currency: positions summed by their converted value (one
        without a known exchange rate is left out, and the import notes say so)."""
        ledger = self._ledger()
        currency = ledger.account_currency
        day = _today(as_of)
        positions = ledger.positions(day)
        deposits = Decimal(0)
        if ledger.account is not None:
            deposits = decimal_sum(
                row.change or Decimal(0)
                for row in ledger.understood(Kind.DEPOSIT)
                if row.currency == currency and (day is None or row.day <= day)
            )
        return TotalPortfolioV2(
            total_value=Money(
                decimal_sum(p.account_value for p in positions if p.account_value is not None),
                currency,
            ),
            total_cash=Money(ledger.cash(), currency) if day is None else None,
            total_deposits=Money(deposits, currency),
            brokers=(BROKER,),
            as_of=as_of,
        )


class TransactionService(_Imported, TransactionServiceV2):
    """Trades, one entry per fill (a partial fill is several): ``Transactions.csv``, plus
    the statement's trades it does not hold; without it, the statement's alone. ``price`` is
    in the product's currency; ``total`` and ``fees`` in the account currency when the files
    tell it (AutoFX included)."""

    def get_transactions(
        self, start: date | None = None, end: date | None = None
    ) -> list[TransactionV2]:
        return [
            TransactionV2(
                date=t.day,
                name=t.product,
                symbol=t.isin or t.product,
                kind=BUY if t.quantity > 0 else SELL,
                quantity=abs(t.quantity),
                price=t.price,
                total=t.total,
                fees=t.fees,
                broker=BROKER,
            )
            for t in self._ledger().require_trades()
            if in_range(t.day, start, end)
        ]


class DepositService(_Imported, DepositServiceV2):
    """Deposits (positive) and withdrawals (negative) from ``Account.csv``: the sign of the
    amount says which, whatever the words. Reservations, cash sweeps and money-market
    conversions move no money in or out and are skipped."""

    def get_cash_deposits(
        self, start: date | None = None, end: date | None = None
    ) -> list[DepositV2]:
        return [
            DepositV2(
                date=row.day,
                amount=Money(row.change or Decimal(0), row.currency),
                description=row.description,
                broker=BROKER,
            )
            for row in self._ledger().understood(Kind.DEPOSIT)
            if in_range(row.day, start, end)
        ]


class DividendService(_Imported, DividendServiceV2):
    """Dividends from ``Account.csv`` in their own currency, with the tax withheld (negative)
    or refunded (positive) on the same day for the same product folded into ``taxes``.
    A stock dividend is shares, not cash: it is a position change, not listed here."""

    def get_dividends(self, start: date | None = None, end: date | None = None) -> list[DividendV2]:
        ledger = self._ledger()
        gross: dict[tuple[date, str, str], Decimal] = {}
        taxes: dict[tuple[date, str, str], Decimal] = {}
        names: dict[tuple[date, str, str], str] = {}
        for verdict in ledger.counted(Kind.DIVIDEND, Kind.DIVIDEND_TAX):
            row = verdict.row
            if not in_range(row.day, start, end):
                continue
            key = (row.day, row.isin or row.product, row.currency)
            names.setdefault(key, row.product)
            target = taxes if verdict.kind is Kind.DIVIDEND_TAX else gross
            target[key] = target.get(key, Decimal(0)) + (row.change or Decimal(0))
        return [
            DividendV2(
                date=key[0],
                name=name,
                symbol=key[1],
                amount=Money(gross.get(key, Decimal(0)), key[2]),
                taxes=Money(taxes[key], key[2]) if key in taxes else None,
                broker=BROKER,
            )
            for key, name in names.items()
        ]


class FeeService(_Imported, FeeServiceV2):
    """Transaction fees, exchange connection fees, corporate action costs, transaction taxes
    and other charges from ``Account.csv``, plus the AutoFX fees only ``Transactions.csv``
    shows (the statement folds them into the currency debit). Without ``Account.csv`` the
    fees come from ``Transactions.csv`` alone."""

    def get_fees(self, start: date | None = None, end: date | None = None) -> list[FeeV2]:
        ledger = self._ledger()
        fees: list[FeeV2] = []
        autofx_in_statement = False
        if ledger.account is not None:
            for verdict in ledger.counted(*FEES):
                row = verdict.row
                autofx_in_statement = autofx_in_statement or verdict.kind is Kind.AUTOFX_FEE
                fees.append(
                    FeeV2(
                        row.day,
                        row.description,
                        Money(row.change or Decimal(0), row.currency),
                        BROKER,
                    )
                )
        elif ledger.transactions is None:
            ledger.require_account()  # neither file: say which one is missing
        for trade in ledger.transactions.rows if ledger.transactions is not None else ():
            currency = trade.account_currency
            if trade.autofx_fee and not autofx_in_statement:
                fees.append(
                    FeeV2(
                        trade.day,
                        f"DEGIRO AutoFX fee ({trade.product})",
                        Money(trade.autofx_fee, currency),
                        BROKER,
                    )
                )
            transaction_fee = trade.fees - trade.autofx_fee
            if transaction_fee and ledger.account is None:
                fees.append(
                    FeeV2(
                        trade.day,
                        f"DEGIRO transaction fee ({trade.product})",
                        Money(transaction_fee, currency),
                        BROKER,
                    )
                )
        fees.sort(key=lambda f: f.date, reverse=True)
        return [f for f in fees if in_range(f.date, start, end)]


class AccountService(_Imported, AccountServiceV2):
    """Cash from the ``Portfolio.csv`` cash lines, else the statement's latest balance; in
    ``extra`` the statement's balances per currency, interest received or charged per
    currency (DeGiro's courtesy credits included), and how the import went."""

    def get_account_overview(self) -> AccountOverviewV2:
        ledger = self._ledger()
        account_id = getattr(self.config, "int_account", 0) or 0
        counts = ledger.report.counts()
        extra: dict[str, str] = {
            "source": "sample" if ledger.folder == SAMPLE_DATA_FOLDER else "import",
            "reported_rows": str(counts["reported"]),
            "positions": str(len(ledger.positions())),
        }
        if ledger.account is not None:
            for currency, balance in sorted(ledger.balances().items()):
                extra[f"balance_{currency}"] = str(balance)
            if ledger.account.rows:
                extra["statement_date"] = ledger.account.rows[0].day.isoformat()
            interest: dict[str, Decimal] = {}
            for row in ledger.understood(Kind.INTEREST, Kind.COURTESY):
                interest[row.currency] = interest.get(row.currency, Decimal(0)) + (
                    row.change or Decimal(0)
                )
            for currency, total in sorted(interest.items()):
                extra[f"interest_{currency}"] = str(total)
        return AccountOverviewV2(
            broker=BROKER,
            account_id=str(account_id) if account_id else "",
            cash=Money(ledger.cash(), ledger.account_currency),
            extra=extra,
        )

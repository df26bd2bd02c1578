"""Bitvavo services for the Stonks Overwatch registry, computed from the transaction history.

Bitvavo is a crypto exchange with EUR as its only fiat currency, so EUR is the cash and every
other currency is a holding. A holding is the sum of the signed ``Amount`` of its rows (buys,
deposits, staking and rebates positive; sells and withdrawals negative), valued at the latest
``Quote Price`` seen for it. Money leaving the account is negative, as in the export: a buy's
``total``, fees, withdrawals. Lists are newest first.

Only rows the reader understood count (see exports.py): staking, fixed staking, affiliate and
campaign rewards add to the coin (or EUR) they are paid in, a rebate refunds a trade's fee. A
row of an unknown Type is reported in ``import_report`` and changes nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from stonks_plugins.sdk import (
    AccountOverview,
    AccountServiceInterface,
    BrokerServiceInterface,
    Deposit,
    DepositServiceInterface,
    Fee,
    FeeServiceInterface,
    ImportReport,
    PortfolioEntry,
    PortfolioServiceInterface,
    TotalPortfolio,
    Transaction,
    TransactionServiceInterface,
    decimal_sum,
    round_money,
)

from .exports import History, HistoryRow, read_history

BROKER = "bitvavo"
CASH_CURRENCY = "EUR"
SAMPLE_DATA_FOLDER = Path(__file__).parent / "data"

# Display names of common coins; any other coin is shown by its code.
COIN_NAMES = {
    "ADA": "Cardano",
    "BTC": "Bitcoin",
    "DOGE": "Dogecoin",
    "DOT": "Polkadot",
    "ETH": "Ethereum",
    "LINK": "Chainlink",
    "SOL": "Solana",
    "USDC": "USD Coin",
    "XRP": "XRP",
}


def data_folder(config: object | None) -> Path:
    """The folder holding the exports: ``config.import_folder``, else the shipped sample."""
    if isinstance(config, dict):
        folder = config.get("import_folder") or ""
    else:
        folder = getattr(config, "import_folder", "") or ""
    return Path(str(folder)).expanduser() if folder else SAMPLE_DATA_FOLDER


class _ImportReporting(BrokerServiceInterface):
    """Keeps the import report of the last call in ``import_report``: the outcome of every
    row of every export (``import_report.as_dict()`` is what the host shows)."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config=config, **kwargs)
        self.import_report = ImportReport()

    def _history(self) -> History:
        history = read_history(data_folder(getattr(self, "config", None)))
        self.import_report = history.report
        return history

    def _rows(self) -> list[HistoryRow]:
        return self._history().rows


@dataclass(frozen=True)
class Holding:
    currency: str
    amount: Decimal
    price: Decimal  # latest quote in EUR, 0 when the coin was never traded

    @property
    def value(self) -> Decimal:
        return round_money(self.amount * self.price)


def holdings(rows: Iterable[HistoryRow]) -> tuple[list[Holding], Decimal]:
    """Crypto holdings (sorted by code) and the EUR cash balance, from rows oldest first."""
    amounts: dict[str, Decimal] = {}
    prices: dict[str, Decimal] = {}
    cash = Decimal(0)
    for row in rows:
        if row.currency == CASH_CURRENCY:
            cash += row.amount
        else:
            amounts[row.currency] = amounts.get(row.currency, Decimal(0)) + row.amount
            if row.quote_price is not None and row.quote_currency == CASH_CURRENCY:
                prices[row.currency] = row.quote_price  # rows come oldest first: latest wins
        if row.paid_currency == CASH_CURRENCY and row.paid_amount is not None:
            cash += row.paid_amount  # already net of the trade fee
    positions = [
        Holding(code, amount, prices.get(code, Decimal(0)))
        for code, amount in sorted(amounts.items())
        if amount > 0
    ]
    return positions, cash


class PortfolioService(_ImportReporting, PortfolioServiceInterface):
    """Crypto positions rebuilt from the transaction history, valued in EUR."""

    def get_portfolio(self) -> list[PortfolioEntry]:
        positions, _ = holdings(self._rows())
        return [
            PortfolioEntry(
                name=COIN_NAMES.get(holding.currency, holding.currency),
                symbol=holding.currency,
                shares=float(holding.amount),
                price=float(holding.price),
                value=float(holding.value),
                currency=CASH_CURRENCY,
                product_type="crypto",
                broker=BROKER,
            )
            for holding in positions
        ]

    def get_portfolio_total(self) -> TotalPortfolio:
        rows = self._rows()
        positions, cash = holdings(rows)
        deposits = decimal_sum(row.amount for row in rows if _is_cash_transfer(row))
        return TotalPortfolio(
            total_value=float(decimal_sum(holding.value for holding in positions)),
            total_cash=float(round_money(cash)),
            total_deposits=float(round_money(deposits)),
            currency=CASH_CURRENCY,
            brokers=(BROKER,),
        )


class TransactionService(_ImportReporting, TransactionServiceInterface):
    """Buys and sells; ``total`` is what was paid or received, fee included."""

    def get_transactions(self) -> list[Transaction]:
        transactions = [
            Transaction(
                date=row.day,
                name=COIN_NAMES.get(row.currency, row.currency),
                symbol=row.currency,
                kind=row.kind,
                quantity=float(abs(row.amount)),
                price=float(row.quote_price or 0),
                total=float(row.paid_amount or 0),
                fees=-float(row.fee_amount or 0),
                currency=row.quote_currency or row.paid_currency or CASH_CURRENCY,
                broker=BROKER,
            )
            for row in self._rows()
            if row.kind in ("buy", "sell")
        ]
        return list(reversed(transactions))


def _is_cash_transfer(row: HistoryRow) -> bool:
    return row.kind in ("deposit", "withdrawal") and row.currency == CASH_CURRENCY


class DepositService(_ImportReporting, DepositServiceInterface):
    """EUR deposits (positive) and withdrawals (negative); crypto transfers are not cash."""

    def get_cash_deposits(self) -> list[Deposit]:
        deposits = [
            Deposit(
                date=row.day,
                amount=float(row.amount),
                currency=row.currency,
                description=row.kind.capitalize(),
                broker=BROKER,
            )
            for row in self._rows()
            if _is_cash_transfer(row)
        ]
        return list(reversed(deposits))


class FeeService(_ImportReporting, FeeServiceInterface):
    """Trading and withdrawal fees (negative) and fee rebates (positive)."""

    def get_fees(self) -> list[Fee]:
        fees: list[Fee] = []
        for row in self._rows():
            if row.kind == "rebate":
                fees.append(
                    Fee(
                        date=row.day,
                        description="Fee rebate",
                        amount=float(row.amount),
                        currency=row.currency,
                        broker=BROKER,
                    )
                )
            elif row.fee_amount:
                fees.append(
                    Fee(
                        date=row.day,
                        description=f"{row.kind.capitalize()} {row.currency} fee",
                        amount=-float(row.fee_amount),
                        currency=row.fee_currency or CASH_CURRENCY,
                        broker=BROKER,
                    )
                )
        return list(reversed(fees))


class AccountService(_ImportReporting, AccountServiceInterface):
    """EUR cash balance and a summary of the history (never the API credentials)."""

    def get_account_overview(self) -> AccountOverview:
        folder = data_folder(self.config)
        history = self._history()
        rows = history.rows
        positions, cash = holdings(rows)
        extra = {
            "source": "sample" if folder == SAMPLE_DATA_FOLDER else "import",
            "assets": str(len(positions)),
            "history_rows": str(len(rows)),
            "reported_rows": str(len(history.report)),
        }
        if rows:
            extra["last_activity"] = rows[-1].day.isoformat()
        return AccountOverview(
            broker=BROKER,
            account_id="",
            cash=float(round_money(cash)),
            currency=CASH_CURRENCY,
            extra=extra,
        )

"""IBKR services backed by a fixed demo position list (no network)."""

from __future__ import annotations

from datetime import date

from stonks_overwatch.core.data import AccountOverview, PortfolioEntry, TotalPortfolio, Transaction
from stonks_overwatch.core.interfaces import (
    AccountServiceInterface,
    PortfolioServiceInterface,
    TransactionServiceInterface,
)

_POSITIONS = [
    ("Example Semiconductor Inc", "EXSC", 12.0, 131.40, "USD"),
    ("Sample Treasury Bond ETF", "SMTB", 30.0, 91.15, "USD"),
]


class IbkrPortfolioService(PortfolioServiceInterface):
    def get_portfolio(self) -> list[PortfolioEntry]:
        return [
            PortfolioEntry(
                name=name,
                symbol=sym,
                shares=qty,
                price=px,
                value=round(qty * px, 2),
                currency=cur,
                broker="ibkr",
            )
            for name, sym, qty, px, cur in _POSITIONS
        ]

    def get_portfolio_total(self) -> TotalPortfolio:
        entries = self.get_portfolio()
        return TotalPortfolio(total_value=round(sum(e.value for e in entries), 2), currency="USD")


class IbkrTransactionService(TransactionServiceInterface):
    def get_transactions(self) -> list[Transaction]:
        return [
            Transaction(
                date=date(2025, 2, 3),
                name=name,
                symbol=sym,
                kind="buy",
                quantity=qty,
                price=px,
                total=-round(qty * px, 2),
                currency=cur,
                broker="ibkr",
            )
            for name, sym, qty, px, cur in _POSITIONS
        ]


class IbkrAccountService(AccountServiceInterface):
    def get_account_overview(self) -> AccountOverview:
        account = getattr(self.config, "account_id", "U0000000")
        return AccountOverview(broker="ibkr", account_id=account, cash=250.0, currency="USD")

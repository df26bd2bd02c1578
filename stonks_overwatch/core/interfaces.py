"""Abstract service interfaces (API v1) that every broker's services implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from .data import (
    AccountOverview,
    Deposit,
    Dividend,
    Fee,
    PortfolioEntry,
    TotalPortfolio,
    Transaction,
)

if TYPE_CHECKING:
    from .config import BaseConfig


class BrokerServiceInterface(ABC):  # noqa: B024 - a marker base with a shared constructor
    """Base of every broker service: services are built with the broker's config."""

    def __init__(self, config: BaseConfig | None = None, **kwargs: Any) -> None:
        self.config = config


class PortfolioServiceInterface(BrokerServiceInterface):
    @abstractmethod
    def get_portfolio(self) -> list[PortfolioEntry]: ...

    @abstractmethod
    def get_portfolio_total(self) -> TotalPortfolio: ...


class TransactionServiceInterface(BrokerServiceInterface):
    @abstractmethod
    def get_transactions(self) -> list[Transaction]: ...


class DepositServiceInterface(BrokerServiceInterface):
    @abstractmethod
    def get_cash_deposits(self) -> list[Deposit]: ...


class DividendServiceInterface(BrokerServiceInterface):
    @abstractmethod
    def get_dividends(self) -> list[Dividend]: ...


class FeeServiceInterface(BrokerServiceInterface):
    @abstractmethod
    def get_fees(self) -> list[Fee]: ...


class AccountServiceInterface(BrokerServiceInterface):
    @abstractmethod
    def get_account_overview(self) -> AccountOverview: ...


class AuthenticationServiceInterface(BrokerServiceInterface):
    @abstractmethod
    def is_authenticated(self) -> bool: ...


class UpdateServiceInterface(BrokerServiceInterface):
    @abstractmethod
    def update_all(self) -> None: ...

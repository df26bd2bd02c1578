"""API v2 of the broker service interfaces, beside v1 (``stonks_overwatch.core.interfaces``,
which the legacy core keeps using).

What changes from v1:

* money is :class:`Money` — a ``Decimal`` amount with its currency — instead of a float
  beside a currency string;
* quantities are ``Decimal``;
* list methods take a date range (``start``/``end``, inclusive; ``None`` is open) and the
  portfolio an ``as_of`` date (``None`` is today);
* results are typed, immutable records (``PortfolioEntryV2``, ``TotalPortfolioV2``,
  ``TransactionV2``, ``DepositV2``, ``DividendV2``, ``FeeV2``, ``AccountOverviewV2``).

Every data service has a v2: portfolio, transaction, deposit, dividend, fee and account.
The authentication and update services stay v1-only: they carry no money or dates
(``is_authenticated() -> bool``, ``update_all() -> None``), so a v2 would change nothing.
:mod:`stonks_plugins.interface_adapters` converts between the versions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from .versioning import V2, InterfaceVersion, VersionedInterface

if TYPE_CHECKING:
    from stonks_overwatch.core.config import BaseConfig


def to_decimal(value: Decimal | int | float | str) -> Decimal:
    """A Decimal of ``value``; a float goes through its shortest repr (``0.1`` ->
    ``Decimal("0.1")``, not the binary expansion)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", to_decimal(self.amount))
        if not self.currency:
            raise ValueError("Money needs a currency")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)


@dataclass(frozen=True)
class PortfolioEntryV2:
    name: str
    symbol: str
    shares: Decimal
    price: Money
    value: Money
    isin: str = ""
    product_type: str = "stock"
    broker: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shares", to_decimal(self.shares))


@dataclass(frozen=True)
class TotalPortfolioV2:
    total_value: Money
    total_cash: Money | None = None
    total_deposits: Money | None = None
    brokers: tuple[str, ...] = field(default_factory=tuple)
    as_of: date | None = None

    @property
    def currency(self) -> str:
        return self.total_value.currency


@dataclass(frozen=True)
class TransactionV2:
    date: date
    name: str
    symbol: str
    kind: str  # "buy" | "sell"
    quantity: Decimal
    price: Money
    total: Money
    fees: Money | None = None
    broker: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantity", to_decimal(self.quantity))


@dataclass(frozen=True)
class DepositV2:
    """Cash moved into (positive) or out of (negative) the account."""

    date: date
    amount: Money
    description: str = ""
    broker: str = ""


@dataclass(frozen=True)
class DividendV2:
    """A gross dividend and the tax withheld from it (negative) or refunded (positive), as
    the bundled brokers report them. ``taxes`` is ``None`` when the broker reports none;
    when given it is in the dividend's currency, because it is withheld from that payment
    (and v1 has one currency per record)."""

    date: date
    name: str
    symbol: str
    amount: Money
    taxes: Money | None = None
    broker: str = ""

    def __post_init__(self) -> None:
        # Only the currencies are checked here; a field of the wrong type is left for the
        # test kit to name (a Python dataclass does not check types).
        taxes, amount = self.taxes, self.amount
        if (
            isinstance(taxes, Money)
            and isinstance(amount, Money)
            and taxes.currency != amount.currency
        ):
            raise ValueError(
                f"dividend taxes in {taxes.currency} but the amount in {amount.currency}: "
                "give both in the currency the dividend was paid in"
            )


@dataclass(frozen=True)
class FeeV2:
    date: date
    description: str
    amount: Money
    broker: str = ""


@dataclass(frozen=True)
class AccountOverviewV2:
    broker: str
    account_id: str
    cash: Money
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A copy: the record is frozen, so it must not share a dict its builder may change.
        object.__setattr__(self, "extra", dict(self.extra))


def in_range(day: date, start: date | None, end: date | None) -> bool:
    """``start <= day <= end``, an open bound being ``None``."""
    return (start is None or start <= day) and (end is None or day <= end)


class BrokerServiceV2(VersionedInterface, ABC):
    """Base of every v2 broker service: built with the broker's config, like v1."""

    interface_version: ClassVar[InterfaceVersion] = V2

    def __init__(self, config: BaseConfig | None = None, **kwargs: Any) -> None:
        self.config = config


class PortfolioServiceV2(BrokerServiceV2):
    @abstractmethod
    def get_portfolio(self, as_of: date | None = None) -> list[PortfolioEntryV2]: ...

    @abstractmethod
    def get_portfolio_total(self, as_of: date | None = None) -> TotalPortfolioV2: ...


class TransactionServiceV2(BrokerServiceV2):
    @abstractmethod
    def get_transactions(
        self, start: date | None = None, end: date | None = None
    ) -> list[TransactionV2]: ...


class DepositServiceV2(BrokerServiceV2):
    @abstractmethod
    def get_cash_deposits(
        self, start: date | None = None, end: date | None = None
    ) -> list[DepositV2]: ...


class DividendServiceV2(BrokerServiceV2):
    @abstractmethod
    def get_dividends(
        self, start: date | None = None, end: date | None = None
    ) -> list[DividendV2]: ...


class FeeServiceV2(BrokerServiceV2):
    @abstractmethod
    def get_fees(self, start: date | None = None, end: date | None = None) -> list[FeeV2]: ...


class AccountServiceV2(BrokerServiceV2):
    @abstractmethod
    def get_account_overview(self) -> AccountOverviewV2: ...


__all__ = [
    "AccountOverviewV2",
    "AccountServiceV2",
    "BrokerServiceV2",
    "DepositServiceV2",
    "DepositV2",
    "DividendServiceV2",
    "DividendV2",
    "FeeServiceV2",
    "FeeV2",
    "Money",
    "PortfolioEntryV2",
    "PortfolioServiceV2",
    "TotalPortfolioV2",
    "TransactionServiceV2",
    "TransactionV2",
    "in_range",
    "to_decimal",
]

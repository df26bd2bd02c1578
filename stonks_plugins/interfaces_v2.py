"""API v2 of the broker service interfaces, beside v1 (``stonks_overwatch.core.interfaces``,
which the legacy core keeps using).

What changes from v1:

* money is :class:`Money` — a ``Decimal`` amount with its currency — instead of a float
  beside a currency string;
* quantities are ``Decimal``;
* list methods take a date range (``start``/``end``, inclusive; ``None`` is open) and the
  portfolio an ``as_of`` date (``None`` is today);
* results are typed, immutable records (``PortfolioEntryV2``, ``TotalPortfolioV2``,
  ``TransactionV2``).

Only the portfolio and transaction services have a v2; the other service types stay v1.
:mod:`stonks_plugins.compat_adapters` converts between the versions.
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


__all__ = [
    "BrokerServiceV2",
    "Money",
    "PortfolioEntryV2",
    "PortfolioServiceV2",
    "TotalPortfolioV2",
    "TransactionServiceV2",
    "TransactionV2",
    "in_range",
    "to_decimal",
]

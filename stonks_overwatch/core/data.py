"""Data classes the service interfaces return (API v1: floats, ISO dates)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class PortfolioEntry:
    name: str
    symbol: str
    shares: float
    price: float
    value: float
    currency: str = "EUR"
    isin: str = ""
    product_type: str = "stock"
    broker: str = ""


@dataclass(frozen=True)
class TotalPortfolio:
    total_value: float
    total_cash: float = 0.0
    total_deposits: float = 0.0
    currency: str = "EUR"
    brokers: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Transaction:
    date: date
    name: str
    symbol: str
    kind: str  # "buy" | "sell"
    quantity: float
    price: float
    total: float
    fees: float = 0.0
    currency: str = "EUR"
    broker: str = ""


@dataclass(frozen=True)
class Deposit:
    date: date
    amount: float
    currency: str = "EUR"
    description: str = ""
    broker: str = ""


@dataclass(frozen=True)
class Dividend:
    date: date
    name: str
    symbol: str
    amount: float
    taxes: float = 0.0
    currency: str = "EUR"
    broker: str = ""


@dataclass(frozen=True)
class Fee:
    date: date
    description: str
    amount: float
    currency: str = "EUR"
    broker: str = ""


@dataclass(frozen=True)
class AccountOverview:
    broker: str
    account_id: str
    cash: float
    currency: str = "EUR"
    extra: dict[str, str] = field(default_factory=dict)

"""Adapters between API v1 and v2 of the broker services (the seed's CompatibilityAdapter).

The registry hands each consumer the version it asks for: the legacy pages get v1 (a
v2-only plugin is wrapped with :meth:`CompatibilityAdapter.adapt_v2_to_v1`), a v2 consumer
gets v2 through :func:`get_service_v2` (a v1 plugin is wrapped with
:meth:`CompatibilityAdapter.adapt_v1_to_v2`).

What does not round-trip:

* **v2 -> v1**: ``Decimal`` amounts and quantities become ``float`` — beyond ~15
  significant digits the value is rounded, and ``Decimal("0.10")`` comes back as ``0.1``.
  v1 has one currency per record: an entry's ``currency`` is its *value*'s currency (a
  price in another currency is converted by nobody; its currency is lost). A missing
  ``total_cash``/``total_deposits``/``fees`` becomes ``0.0``. v1 methods take no
  arguments, so a v1 consumer always sees today's portfolio and every transaction.
* **v1 -> v2**: floats become ``Decimal(repr(f))`` — equal to what v1 printed, but no more
  precise than v1 was. A v1 service cannot report a past portfolio: ``get_portfolio`` /
  ``get_portfolio_total`` with an ``as_of`` other than today raise ``NotImplementedError``.
  Date ranges on ``get_transactions`` are applied here, by filtering everything the v1
  service returns (correct, but the v1 service still fetches the whole history).
* Only the portfolio and transaction services have a v2; any other service is returned
  unchanged by both directions.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from stonks_overwatch.core.data import PortfolioEntry, TotalPortfolio, Transaction
from stonks_overwatch.core.interfaces import (
    PortfolioServiceInterface,
    TransactionServiceInterface,
)
from stonks_overwatch.core.service_types import ServiceType

from .interfaces_v2 import (
    Money,
    PortfolioEntryV2,
    PortfolioServiceV2,
    TotalPortfolioV2,
    TransactionServiceV2,
    TransactionV2,
    in_range,
)

SERVICE_INTERFACES_V2: dict[ServiceType, type] = {
    ServiceType.PORTFOLIO: PortfolioServiceV2,
    ServiceType.TRANSACTION: TransactionServiceV2,
}
"""Service types that have a v2 interface."""


def is_v2_class(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple(SERVICE_INTERFACES_V2.values()))


# -- record conversions ---------------------------------------------------------------------
def entry_v1_to_v2(e: PortfolioEntry) -> PortfolioEntryV2:
    return PortfolioEntryV2(
        name=e.name,
        symbol=e.symbol,
        shares=e.shares,  # type: ignore[arg-type]  # converted in __post_init__
        price=Money(e.price, e.currency),  # type: ignore[arg-type]
        value=Money(e.value, e.currency),  # type: ignore[arg-type]
        isin=e.isin,
        product_type=e.product_type,
        broker=e.broker,
    )


def entry_v2_to_v1(e: PortfolioEntryV2) -> PortfolioEntry:
    return PortfolioEntry(
        name=e.name,
        symbol=e.symbol,
        shares=float(e.shares),
        price=float(e.price.amount),
        value=float(e.value.amount),
        currency=e.value.currency,
        isin=e.isin,
        product_type=e.product_type,
        broker=e.broker,
    )


def total_v1_to_v2(t: TotalPortfolio) -> TotalPortfolioV2:
    c = t.currency
    return TotalPortfolioV2(
        total_value=Money(t.total_value, c),  # type: ignore[arg-type]
        total_cash=Money(t.total_cash, c),  # type: ignore[arg-type]
        total_deposits=Money(t.total_deposits, c),  # type: ignore[arg-type]
        brokers=tuple(t.brokers),
    )


def total_v2_to_v1(t: TotalPortfolioV2) -> TotalPortfolio:
    def amount(m: Money | None) -> float:
        return float(m.amount) if m is not None else 0.0

    return TotalPortfolio(
        total_value=float(t.total_value.amount),
        total_cash=amount(t.total_cash),
        total_deposits=amount(t.total_deposits),
        currency=t.total_value.currency,
        brokers=tuple(t.brokers),
    )


def transaction_v1_to_v2(t: Transaction) -> TransactionV2:
    c = t.currency
    return TransactionV2(
        date=t.date,
        name=t.name,
        symbol=t.symbol,
        kind=t.kind,
        quantity=t.quantity,  # type: ignore[arg-type]
        price=Money(t.price, c),  # type: ignore[arg-type]
        total=Money(t.total, c),  # type: ignore[arg-type]
        fees=Money(t.fees, c),  # type: ignore[arg-type]
        broker=t.broker,
    )


def transaction_v2_to_v1(t: TransactionV2) -> Transaction:
    return Transaction(
        date=t.date,
        name=t.name,
        symbol=t.symbol,
        kind=t.kind,
        quantity=float(t.quantity),
        price=float(t.price.amount),
        total=float(t.total.amount),
        fees=float(t.fees.amount) if t.fees is not None else 0.0,
        currency=t.total.currency,
        broker=t.broker,
    )


# -- service adapters -----------------------------------------------------------------------
class _Adapter:
    """Forwards anything it does not translate (``config``, extra methods) to the service."""

    def __init__(self, service: Any) -> None:
        self.adapted = service
        self.config = getattr(service, "config", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["adapted"], name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.adapted!r}>"


def _today_only(as_of: date | None) -> None:
    if as_of is not None and as_of != date.today():
        raise NotImplementedError(
            f"a v1 portfolio service reports only today's portfolio, not as of {as_of}"
        )


class PortfolioV1ToV2(_Adapter, PortfolioServiceV2):
    def get_portfolio(self, as_of: date | None = None) -> list[PortfolioEntryV2]:
        _today_only(as_of)
        return [entry_v1_to_v2(e) for e in self.adapted.get_portfolio()]

    def get_portfolio_total(self, as_of: date | None = None) -> TotalPortfolioV2:
        _today_only(as_of)
        return total_v1_to_v2(self.adapted.get_portfolio_total())


class TransactionV1ToV2(_Adapter, TransactionServiceV2):
    def get_transactions(
        self, start: date | None = None, end: date | None = None
    ) -> list[TransactionV2]:
        return [
            transaction_v1_to_v2(t)
            for t in self.adapted.get_transactions()
            if in_range(t.date, start, end)
        ]


class PortfolioV2ToV1(_Adapter, PortfolioServiceInterface):
    def get_portfolio(self) -> list[PortfolioEntry]:
        return [entry_v2_to_v1(e) for e in self.adapted.get_portfolio()]

    def get_portfolio_total(self) -> TotalPortfolio:
        return total_v2_to_v1(self.adapted.get_portfolio_total())


class TransactionV2ToV1(_Adapter, TransactionServiceInterface):
    def get_transactions(self) -> list[Transaction]:
        return [transaction_v2_to_v1(t) for t in self.adapted.get_transactions()]


def _kind(service: Any, service_type: ServiceType | None) -> ServiceType | None:
    if service_type is not None:
        return ServiceType(service_type)
    if hasattr(service, "get_portfolio"):
        return ServiceType.PORTFOLIO
    if hasattr(service, "get_transactions"):
        return ServiceType.TRANSACTION
    return None


class CompatibilityAdapter:
    """Converts a service between interface versions (see the module docstring for what is
    lost on the way)."""

    @staticmethod
    def adapt_v1_to_v2(service: Any, service_type: ServiceType | None = None) -> Any:
        """A v2 view of a v1 service. A v2 service, or a type without a v2, comes back as
        is; a v2->v1 adapter is unwrapped instead of wrapped again."""
        if isinstance(service, (PortfolioV2ToV1, TransactionV2ToV1)):
            return service.adapted
        if isinstance(service, (PortfolioServiceV2, TransactionServiceV2)):
            return service
        kind = _kind(service, service_type)
        if kind is ServiceType.PORTFOLIO:
            return PortfolioV1ToV2(service)
        if kind is ServiceType.TRANSACTION:
            return TransactionV1ToV2(service)
        return service

    @staticmethod
    def adapt_v2_to_v1(service: Any, service_type: ServiceType | None = None) -> Any:
        """A v1 view of a v2 service. A v1 service comes back as is; a v1->v2 adapter is
        unwrapped."""
        if isinstance(service, (PortfolioV1ToV2, TransactionV1ToV2)):
            return service.adapted
        if isinstance(service, PortfolioServiceV2):
            return PortfolioV2ToV1(service)
        if isinstance(service, TransactionServiceV2):
            return TransactionV2ToV1(service)
        return service


def serve_v1(service: Any) -> Any:
    """What the legacy (v1) registry hands out for a plugin's service instance."""
    return CompatibilityAdapter.adapt_v2_to_v1(service)


def get_service_v2(broker: str, service_type: ServiceType | str) -> Any:
    """The v2 service of a broker, whatever version its plugin (or legacy code) implements.

    Goes through the core's ``BrokerFactory`` — the same instance, config and middleware the
    v1 pages use — so both kinds of consumer see identical figures. Consequently a v2
    plugin's money reaches a v2 consumer via the v1 chain (float precision) unless no
    service wrapper sits in between, in which case its native v2 service is returned.
    Service types without a v2 interface are returned in v1.
    """
    from stonks_overwatch.core.factory import BrokerFactory

    stype = ServiceType(service_type)
    service = BrokerFactory().create_service(broker, stype)
    return CompatibilityAdapter.adapt_v1_to_v2(service, stype)

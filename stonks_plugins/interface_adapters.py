"""Adapters between API v1 and v2 of the broker services (the seed's CompatibilityAdapter).

The registry hands each consumer the version it asks for: the legacy pages get v1 (a
v2-only plugin is wrapped with :meth:`CompatibilityAdapter.adapt_v2_to_v1`), a v2 consumer
gets v2 through :func:`get_service_v2` (a v1 plugin is wrapped with
:meth:`CompatibilityAdapter.adapt_v1_to_v2`). Every data service — portfolio, transaction,
deposit, dividend, fee, account — has both versions; :data:`VERSIONS` is the one table the
adapter reads, so a new v2 interface is one row there (plus its two adapter classes and
record conversions in :mod:`stonks_plugins.interface_records`).

What does not round-trip:

* **v2 -> v1**: ``Decimal`` amounts and quantities become ``float`` — beyond ~15
  significant digits the value is rounded, and ``Decimal("0.10")`` comes back as ``0.1``.
  v1 has one currency per record, that of the record's main amount: a portfolio entry's
  *value*, a transaction's *total*, a deposit's, dividend's or fee's *amount*, an account's
  *cash*. A price or a transaction fee in another currency is converted by nobody: its
  number is passed on and its currency lost. (A dividend's taxes cannot differ: DividendV2
  refuses taxes in another currency than the amount.) A missing ``total_cash``,
  ``total_deposits``, transaction ``fees`` or dividend ``taxes`` becomes ``0.0``, so "not
  reported" and "zero" look the same. v1 methods take no arguments, so a v1 consumer always
  sees today's portfolio and every transaction, deposit, dividend and fee.
* **v1 -> v2**: floats become ``Decimal(repr(f))`` — equal to what v1 printed, but no more
  precise than v1 was. Every amount gets the record's one currency, so v1's silent mixes
  (a fee in EUR beside a USD total) are now labelled wrongly rather than fixed. Optional
  v2 amounts are never ``None`` (v1's ``0.0`` becomes zero money). A v1 service cannot
  report a past portfolio: ``get_portfolio`` / ``get_portfolio_total`` with an ``as_of``
  other than today raise ``NotImplementedError``. Date ranges on ``get_transactions``,
  ``get_cash_deposits``, ``get_dividends`` and ``get_fees`` are applied here, by filtering
  everything the v1 service returns (correct, but the v1 service still reads the whole
  history on every call).
* The authentication and update services have no v2 and are returned unchanged by both
  directions, as is anything that is not a broker service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, TypeVar

from stonks_overwatch.core.data import (
    AccountOverview,
    Deposit,
    Dividend,
    Fee,
    PortfolioEntry,
    TotalPortfolio,
    Transaction,
)
from stonks_overwatch.core.interfaces import (
    AccountServiceInterface,
    AuthenticationServiceInterface,
    DepositServiceInterface,
    DividendServiceInterface,
    FeeServiceInterface,
    PortfolioServiceInterface,
    TransactionServiceInterface,
    UpdateServiceInterface,
)
from stonks_overwatch.core.service_types import ServiceType

from .interface_records import (
    account_v1_to_v2,
    account_v2_to_v1,
    deposit_v1_to_v2,
    deposit_v2_to_v1,
    dividend_v1_to_v2,
    dividend_v2_to_v1,
    entry_v1_to_v2,
    entry_v2_to_v1,
    fee_v1_to_v2,
    fee_v2_to_v1,
    total_v1_to_v2,
    total_v2_to_v1,
    transaction_v1_to_v2,
    transaction_v2_to_v1,
)
from .interfaces_v2 import (
    AccountOverviewV2,
    AccountServiceV2,
    BrokerServiceV2,
    DepositServiceV2,
    DepositV2,
    DividendServiceV2,
    DividendV2,
    FeeServiceV2,
    FeeV2,
    PortfolioEntryV2,
    PortfolioServiceV2,
    TotalPortfolioV2,
    TransactionServiceV2,
    TransactionV2,
    in_range,
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


class V1ToV2Adapter(_Adapter):
    """Base of the adapters giving a v2 view of a v1 service (unwrapped by ``adapt_v2_to_v1``)."""


class V2ToV1Adapter(_Adapter):
    """Base of the adapters giving a v1 view of a v2 service (unwrapped by ``adapt_v1_to_v2``)."""


_R = TypeVar("_R")


def _ranged(convert: Callable[[Any], _R], items: Iterable[Any], start: Any, end: Any) -> list[_R]:
    """The ``items`` dated within ``start``..``end``, converted: a v1 list method returns
    every record, the v2 one only those of its date range."""
    return [convert(item) for item in items if in_range(item.date, start, end)]


def _today_only(as_of: date | None) -> None:
    if as_of is not None and as_of != date.today():
        raise NotImplementedError(
            f"a v1 portfolio service reports only today's portfolio, not as of {as_of}"
        )


class PortfolioV1ToV2(V1ToV2Adapter, PortfolioServiceV2):
    def get_portfolio(self, as_of: date | None = None) -> list[PortfolioEntryV2]:
        _today_only(as_of)
        return [entry_v1_to_v2(e) for e in self.adapted.get_portfolio()]

    def get_portfolio_total(self, as_of: date | None = None) -> TotalPortfolioV2:
        _today_only(as_of)
        return total_v1_to_v2(self.adapted.get_portfolio_total())


class TransactionV1ToV2(V1ToV2Adapter, TransactionServiceV2):
    def get_transactions(
        self, start: date | None = None, end: date | None = None
    ) -> list[TransactionV2]:
        return _ranged(transaction_v1_to_v2, self.adapted.get_transactions(), start, end)


class DepositV1ToV2(V1ToV2Adapter, DepositServiceV2):
    def get_cash_deposits(
        self, start: date | None = None, end: date | None = None
    ) -> list[DepositV2]:
        return _ranged(deposit_v1_to_v2, self.adapted.get_cash_deposits(), start, end)


class DividendV1ToV2(V1ToV2Adapter, DividendServiceV2):
    def get_dividends(self, start: date | None = None, end: date | None = None) -> list[DividendV2]:
        return _ranged(dividend_v1_to_v2, self.adapted.get_dividends(), start, end)


class FeeV1ToV2(V1ToV2Adapter, FeeServiceV2):
    def get_fees(self, start: date | None = None, end: date | None = None) -> list[FeeV2]:
        return _ranged(fee_v1_to_v2, self.adapted.get_fees(), start, end)


class AccountV1ToV2(V1ToV2Adapter, AccountServiceV2):
    def get_account_overview(self) -> AccountOverviewV2:
        return account_v1_to_v2(self.adapted.get_account_overview())


class PortfolioV2ToV1(V2ToV1Adapter, PortfolioServiceInterface):
    def get_portfolio(self) -> list[PortfolioEntry]:
        return [entry_v2_to_v1(e) for e in self.adapted.get_portfolio()]

    def get_portfolio_total(self) -> TotalPortfolio:
        return total_v2_to_v1(self.adapted.get_portfolio_total())


class TransactionV2ToV1(V2ToV1Adapter, TransactionServiceInterface):
    def get_transactions(self) -> list[Transaction]:
        return [transaction_v2_to_v1(t) for t in self.adapted.get_transactions()]


class DepositV2ToV1(V2ToV1Adapter, DepositServiceInterface):
    def get_cash_deposits(self) -> list[Deposit]:
        return [deposit_v2_to_v1(d) for d in self.adapted.get_cash_deposits()]


class DividendV2ToV1(V2ToV1Adapter, DividendServiceInterface):
    def get_dividends(self) -> list[Dividend]:
        return [dividend_v2_to_v1(d) for d in self.adapted.get_dividends()]


class FeeV2ToV1(V2ToV1Adapter, FeeServiceInterface):
    def get_fees(self) -> list[Fee]:
        return [fee_v2_to_v1(f) for f in self.adapted.get_fees()]


class AccountV2ToV1(V2ToV1Adapter, AccountServiceInterface):
    def get_account_overview(self) -> AccountOverview:
        return account_v2_to_v1(self.adapted.get_account_overview())


# -- the table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionPair:
    """One service type in both versions, and the adapter classes between them."""

    v1: type
    v2: type
    v1_to_v2: type[V1ToV2Adapter]
    v2_to_v1: type[V2ToV1Adapter]

    @cached_property
    def methods(self) -> frozenset[str]:
        """The v1 interface's methods: how a service is recognised when its type is not
        given (v1 and v2 use the same method names)."""
        return frozenset(getattr(self.v1, "__abstractmethods__", ()))


VERSIONS: dict[ServiceType, VersionPair] = {
    ServiceType.PORTFOLIO: VersionPair(
        PortfolioServiceInterface, PortfolioServiceV2, PortfolioV1ToV2, PortfolioV2ToV1
    ),
    ServiceType.TRANSACTION: VersionPair(
        TransactionServiceInterface, TransactionServiceV2, TransactionV1ToV2, TransactionV2ToV1
    ),
    ServiceType.DEPOSIT: VersionPair(
        DepositServiceInterface, DepositServiceV2, DepositV1ToV2, DepositV2ToV1
    ),
    ServiceType.DIVIDEND: VersionPair(
        DividendServiceInterface, DividendServiceV2, DividendV1ToV2, DividendV2ToV1
    ),
    ServiceType.FEE: VersionPair(FeeServiceInterface, FeeServiceV2, FeeV1ToV2, FeeV2ToV1),
    ServiceType.ACCOUNT: VersionPair(
        AccountServiceInterface, AccountServiceV2, AccountV1ToV2, AccountV2ToV1
    ),
}
"""Service type -> its v1 and v2 interfaces and the adapters between them. Types absent
here (authentication, update) are v1-only."""

SERVICE_INTERFACES_V2: dict[ServiceType, type] = {t: p.v2 for t, p in VERSIONS.items()}
"""Service types that have a v2 interface."""

SERVICE_INTERFACES: dict[ServiceType, type] = {
    ServiceType.PORTFOLIO: PortfolioServiceInterface,
    ServiceType.TRANSACTION: TransactionServiceInterface,
    ServiceType.DEPOSIT: DepositServiceInterface,
    ServiceType.DIVIDEND: DividendServiceInterface,
    ServiceType.FEE: FeeServiceInterface,
    ServiceType.ACCOUNT: AccountServiceInterface,
    ServiceType.AUTHENTICATION: AuthenticationServiceInterface,
    ServiceType.UPDATE: UpdateServiceInterface,
}
"""Service type -> its v1 interface (every service type has one). Here, beside the v2 table,
so that what a class may implement is answered below the registry and the child alike."""


def accepted_interfaces(stype: ServiceType) -> tuple[type, ...]:
    """The interfaces a service class of ``stype`` may implement: v1, and v2 if it has one."""
    pair = VERSIONS.get(stype)
    if pair is not None:
        return (pair.v1, pair.v2)
    return (SERVICE_INTERFACES[stype],)


def implemented_interface(stype: ServiceType, cls: Any) -> type:
    """The interface of ``stype`` that the class ``cls`` implements: v2 if it subclasses
    it, else v1 (the one every service type has)."""
    pair = VERSIONS.get(stype)
    if pair is not None and isinstance(cls, type) and issubclass(cls, pair.v2):
        return pair.v2
    return accepted_interfaces(stype)[0]


def _kind(service: Any, service_type: ServiceType | str | None) -> ServiceType | None:
    """The service type: the one given, else the first in :data:`VERSIONS` whose methods
    the service has all of (a class serving two types needs its type given)."""
    if service_type is not None:
        return ServiceType(service_type)
    for stype, pair in VERSIONS.items():
        if all(hasattr(service, m) for m in pair.methods):
            return stype
    return None


def _v2_pair(service: Any, service_type: ServiceType | str | None) -> VersionPair | None:
    """The row whose v2 interface ``service`` implements (the given type's, if any)."""
    if service_type is not None:
        pair = VERSIONS.get(ServiceType(service_type))
        return pair if pair is not None and isinstance(service, pair.v2) else None
    return next((p for p in VERSIONS.values() if isinstance(service, p.v2)), None)


class Deferred:
    """A service that stands in for another until used (the legacy registry's entries for
    plugins): the adapters look at what it resolves to."""

    def resolve(self) -> Any:
        raise NotImplementedError


class Front:
    """What the host puts in front of every service the factory hands out (the runtime's
    bounded service: lane, deadline, middleware, last good answer). It serves the version
    its consumer asked for itself, so a v2 consumer of a v2 plugin gets the plugin's own
    records through the same path, never a float in between."""

    def as_v1(self) -> Any:
        raise NotImplementedError

    def as_v2(self) -> Any:
        raise NotImplementedError


class CompatibilityAdapter:
    """Converts a service between interface versions (see the module docstring for what is
    lost on the way)."""

    @staticmethod
    def adapt_v1_to_v2(service: Any, service_type: ServiceType | str | None = None) -> Any:
        """A v2 view of a v1 service. A v2 service, or a type without a v2, comes back as
        is; a v2->v1 adapter is unwrapped instead of wrapped again."""
        if isinstance(service, Front):
            return service.as_v2()
        if isinstance(service, Deferred):
            service = service.resolve()  # what it stands for, to unwrap rather than wrap
        if isinstance(service, V2ToV1Adapter):
            return service.adapted
        if isinstance(service, BrokerServiceV2):
            return service
        kind = _kind(service, service_type)
        pair = VERSIONS.get(kind) if kind is not None else None
        return pair.v1_to_v2(service) if pair is not None else service

    @staticmethod
    def adapt_v2_to_v1(service: Any, service_type: ServiceType | str | None = None) -> Any:
        """A v1 view of a v2 service. A v1 service comes back as is; a v1->v2 adapter is
        unwrapped."""
        if isinstance(service, Front):
            return service.as_v1()
        if isinstance(service, V1ToV2Adapter):
            return service.adapted
        pair = _v2_pair(service, service_type)
        return pair.v2_to_v1(service) if pair is not None else service


def serve_v1(service: Any, service_type: ServiceType | str | None = None) -> Any:
    """What the legacy (v1) registry hands out for a plugin's service instance. Pass the
    service type when one class implements several v2 interfaces."""
    return CompatibilityAdapter.adapt_v2_to_v1(service, service_type)


def get_service_v2(broker: str, service_type: ServiceType | str) -> Any:
    """The v2 service of a broker, whatever version its plugin (or legacy code) implements.

    Goes through the core's ``BrokerFactory`` — the same instance, config, middleware, lane
    and deadline the v1 pages use — and the factory's front (:class:`Front`) serves the v2
    records: a v2 plugin's own, with the digits it produced (no float on the way); a v1
    plugin's through :class:`V1ToV2Adapter`. Service types without a v2 interface are
    returned in v1.
    """
    from stonks_overwatch.core.factory import BrokerFactory

    stype = ServiceType(service_type)
    service = BrokerFactory().create_service(broker, stype)
    return CompatibilityAdapter.adapt_v1_to_v2(service, stype)

"""Aggregators combine one service across every registered broker.

A broker that fails (``BrokerUnavailableError`` or any other exception from its code) is
skipped and reported, so one bad broker never takes the page down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .data import PortfolioEntry, TotalPortfolio
from .factory import BrokerFactory
from .registry import BrokerRegistry
from .service_types import ServiceType

logger = logging.getLogger(__name__)
T = TypeVar("T")

_reported: dict[tuple[str, str], str] = {}
"""(aggregator, broker) -> the kind of failure last logged as a warning. A broker that keeps
failing is logged once per kind of failure, not on every page (the page shows it anyway)."""


def _log_failure(aggregator: str, broker: str, exc: Exception) -> None:
    kind = f"{type(exc).__name__}:{getattr(exc, 'code', '')}"
    if _reported.get((aggregator, broker)) == kind:
        logger.debug("skipping broker %s in %s: %s", broker, aggregator, exc)
        return
    _reported[(aggregator, broker)] = kind
    logger.warning("skipping broker %s in %s: %s", broker, aggregator, exc)


@dataclass
class Aggregate(Generic[T]):
    items: list[T] = field(default_factory=list)
    brokers: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


class BaseAggregator(Generic[T]):
    service_type: ServiceType

    def __init__(self, registry: BrokerRegistry | None = None) -> None:
        self.registry = registry or BrokerRegistry()
        self.factory = BrokerFactory()

    def _collect(self, call: Callable[[Any], list[T]]) -> Aggregate[T]:
        result: Aggregate[T] = Aggregate()
        with self.registry.reading():
            for broker in self.registry.get_registered_brokers():
                if not self.registry.broker_supports_service(broker, self.service_type):
                    continue
                try:
                    service = self.factory.create_service(broker, self.service_type)
                    items = call(service)
                except Exception as exc:  # one broker must not break the aggregate
                    _log_failure(type(self).__name__, broker, exc)
                    result.failures[broker] = str(exc)
                    continue
                _reported.pop((type(self).__name__, broker), None)
                result.brokers.append(broker)
                result.items.extend(_with_broker(item, broker) for item in items)
        return result


def _with_broker(item: Any, broker: str) -> Any:
    if getattr(item, "broker", None) == "":
        import dataclasses

        return dataclasses.replace(item, broker=broker)
    return item


class PortfolioAggregator(BaseAggregator[PortfolioEntry]):
    service_type = ServiceType.PORTFOLIO

    def get_portfolio(self) -> Aggregate[PortfolioEntry]:
        agg = self._collect(lambda s: list(s.get_portfolio()))
        agg.items.sort(key=lambda e: (-e.value, e.broker, e.symbol))
        return agg

    def get_portfolio_total(self) -> TotalPortfolio:
        agg = self.get_portfolio()
        return TotalPortfolio(
            total_value=round(sum(e.value for e in agg.items), 2),
            brokers=tuple(agg.brokers),
        )


class TransactionAggregator(BaseAggregator[Any]):
    service_type = ServiceType.TRANSACTION

    def get_transactions(self) -> Aggregate[Any]:
        agg = self._collect(lambda s: list(s.get_transactions()))
        agg.items.sort(key=lambda t: t.date, reverse=True)
        return agg


class DepositAggregator(BaseAggregator[Any]):
    service_type = ServiceType.DEPOSIT

    def get_cash_deposits(self) -> Aggregate[Any]:
        return self._collect(lambda s: list(s.get_cash_deposits()))


class DividendAggregator(BaseAggregator[Any]):
    service_type = ServiceType.DIVIDEND

    def get_dividends(self) -> Aggregate[Any]:
        return self._collect(lambda s: list(s.get_dividends()))


class FeeAggregator(BaseAggregator[Any]):
    service_type = ServiceType.FEE

    def get_fees(self) -> Aggregate[Any]:
        return self._collect(lambda s: list(s.get_fees()))

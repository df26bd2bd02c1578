"""Converts what get_portfolio returns to the base currency. A currency without a rate is
left as it is (and says so in the plugin's health)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from stonks_plugins.sdk import (
    BaseMiddlewarePlugin,
    HealthStatus,
    PortfolioEntry,
    ServiceCall,
)

from .config import BaseCurrencyConfig


class BaseCurrencyMiddleware(BaseMiddlewarePlugin):
    order = 50

    def initialize(self) -> bool:
        self.unconverted: set[str] = set()
        return True

    @property
    def settings(self) -> BaseCurrencyConfig:
        config = self.config
        return config if isinstance(config, BaseCurrencyConfig) else BaseCurrencyConfig()

    def intercept(self, call: ServiceCall, proceed: Callable[[], Any]) -> Any:
        result = proceed()
        if call.method != "get_portfolio" or not isinstance(result, list):
            return result
        return [self._convert(e) if isinstance(e, PortfolioEntry) else e for e in result]

    def _convert(self, entry: PortfolioEntry) -> PortfolioEntry:
        base = self.settings.base_currency
        if entry.currency == base:
            return entry
        rate = self.settings.rates.get(entry.currency)
        if rate is None:
            self.unconverted.add(entry.currency)
            return entry
        return dataclasses.replace(
            entry,
            price=round(entry.price * rate, 4),
            value=round(entry.value * rate, 2),
            currency=base,
        )

    def health_check(self) -> HealthStatus:
        if self.unconverted:
            return HealthStatus.degraded("no rate for " + ", ".join(sorted(self.unconverted)))
        return HealthStatus.healthy(f"converting to {self.settings.base_currency}")

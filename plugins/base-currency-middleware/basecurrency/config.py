from __future__ import annotations

from dataclasses import dataclass, field

from stonks_plugins.sdk import BaseConfig


@dataclass
class BaseCurrencyConfig(BaseConfig):
    base_currency: str = "EUR"
    rates: dict[str, float] = field(default_factory=lambda: {"EUR": 1.0, "USD": 0.92, "GBP": 1.17})

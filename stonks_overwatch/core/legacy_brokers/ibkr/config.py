from __future__ import annotations

from dataclasses import dataclass

from stonks_overwatch.core.config import BaseConfig


@dataclass
class IbkrConfig(BaseConfig):
    account_id: str = "U0000000"
    base_currency: str = "USD"

"""The old, hard-coded broker wiring. Each broker here is imported and registered by hand;
brokers that became plugins no longer appear in this file."""

from __future__ import annotations

from .registry import BrokerRegistry
from .service_types import BrokerName


def register_legacy_brokers(registry: BrokerRegistry | None = None) -> list[str]:
    """Register the legacy brokers once per process; returns their names."""
    from .legacy_brokers.ibkr.config import IbkrConfig
    from .legacy_brokers.ibkr.services import (
        IbkrAccountService,
        IbkrPortfolioService,
        IbkrTransactionService,
    )

    registry = registry or BrokerRegistry()
    registry.register_complete_broker(
        BrokerName.IBKR.value,
        IbkrConfig,
        portfolio=IbkrPortfolioService,
        transaction=IbkrTransactionService,
        account=IbkrAccountService,
    )
    return [BrokerName.IBKR.value]

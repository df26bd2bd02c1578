"""The public, versioned API for plugin authors. Import from here and nowhere else.

Everything a broker plugin needs: base plugin classes, service types and interfaces, the data
classes services return, ``BaseConfig`` and ``HealthStatus``.
"""

from stonks_overwatch.core.config import BaseConfig
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
    BrokerServiceInterface,
    DepositServiceInterface,
    DividendServiceInterface,
    FeeServiceInterface,
    PortfolioServiceInterface,
    TransactionServiceInterface,
    UpdateServiceInterface,
)
from stonks_overwatch.core.service_types import ServiceType

from . import CORE_API_VERSION
from .base import (
    BaseAggregatorPlugin,
    BaseBrokerPlugin,
    BaseMiddlewarePlugin,
    BasePlugin,
    BaseViewPlugin,
    ServiceCall,
)
from .health import Health, HealthStatus
from .panels import Panel, PanelRow

SDK_VERSION = CORE_API_VERSION


def get_portfolio() -> list[PortfolioEntry]:
    """The portfolio of every active broker, as the home page shows it (for view and
    aggregator plugins that present data of their own)."""
    from stonks_overwatch.core.aggregators import PortfolioAggregator

    return list(PortfolioAggregator().get_portfolio().items)


__all__ = [
    "CORE_API_VERSION",
    "SDK_VERSION",
    "AccountOverview",
    "AccountServiceInterface",
    "AuthenticationServiceInterface",
    "BaseAggregatorPlugin",
    "BaseBrokerPlugin",
    "BaseConfig",
    "BaseMiddlewarePlugin",
    "BasePlugin",
    "BaseViewPlugin",
    "BrokerServiceInterface",
    "Deposit",
    "DepositServiceInterface",
    "Dividend",
    "DividendServiceInterface",
    "Fee",
    "FeeServiceInterface",
    "Health",
    "HealthStatus",
    "Panel",
    "PanelRow",
    "PortfolioEntry",
    "PortfolioServiceInterface",
    "ServiceCall",
    "ServiceType",
    "TotalPortfolio",
    "Transaction",
    "TransactionServiceInterface",
    "UpdateServiceInterface",
    "get_portfolio",
]

"""The public, versioned API for plugin authors. Import from here and nowhere else.

Everything a broker plugin needs: base plugin classes, service types and interfaces, the data
classes services return, ``BaseConfig`` and ``HealthStatus``; ``plugin_logger(name)``, the
logger whose records are kept with plugin ``name`` (what a plugin class gets as
``self.logger``; records its modules log with ``logging.getLogger(__name__)`` are kept too).
Each data service comes in API v1 (``PortfolioServiceInterface``..., float records) and API
v2 (``PortfolioServiceV2``..., ``Money`` records; see ``docs/api-v2.md``); a plugin implements
either, and the host serves both kinds of consumer through the compatibility adapters.

Why a plugin cannot run is said by raising, from ``initialize``, ``on_config_change``, a
service method or ``health_check``: ``PluginNotReady`` (try again later: retried in the
background), ``PluginAuthFailed`` (credentials refused: waits for the operator) or
``PluginConfigRejected`` (the config is unusable: ``config_invalid`` with your message).
Returning False from ``initialize``/``on_config_change`` still fails, but is deprecated.

Broker plugins that read export files also get the export toolkit (``stonks_plugins.exports``,
see ``docs/exports.md``): locale-aware decimals and dates, header aliases across languages,
``read_csv`` with line numbers and repaired rows, ``parse_rows`` and the ``ImportReport`` that
accounts for every row, and the export error family (``ExportError``, ``RowError``...).
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
from . import exports as _exports
from .base import (
    BaseAggregatorPlugin,
    BaseBrokerPlugin,
    BaseMiddlewarePlugin,
    BasePlugin,
    BaseViewPlugin,
    ServiceCall,
)
from .compat_adapters import CompatibilityAdapter, get_service_v2
from .errors import PluginAuthFailed, PluginConfigRejected, PluginNotReady
from .exports import *  # noqa: F403 - the whole toolkit; its __all__ is the list
from .health import Health, HealthStatus
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
    Money,
    PortfolioEntryV2,
    PortfolioServiceV2,
    TotalPortfolioV2,
    TransactionServiceV2,
    TransactionV2,
    in_range,
)
from .logs.capture import plugin_logger
from .panels import Panel, PanelRow
from .versioning import InterfaceVersion, VersionedInterface

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
    "AccountOverviewV2",
    "AccountServiceInterface",
    "AccountServiceV2",
    "AuthenticationServiceInterface",
    "BaseAggregatorPlugin",
    "BaseBrokerPlugin",
    "BaseConfig",
    "BaseMiddlewarePlugin",
    "BasePlugin",
    "BaseViewPlugin",
    "BrokerServiceInterface",
    "BrokerServiceV2",
    "CompatibilityAdapter",
    "Deposit",
    "DepositServiceInterface",
    "DepositServiceV2",
    "DepositV2",
    "Dividend",
    "DividendServiceInterface",
    "DividendServiceV2",
    "DividendV2",
    "Fee",
    "FeeServiceInterface",
    "FeeServiceV2",
    "FeeV2",
    "Health",
    "HealthStatus",
    "InterfaceVersion",
    "Money",
    "Panel",
    "PanelRow",
    "PluginAuthFailed",
    "PluginConfigRejected",
    "PluginNotReady",
    "PortfolioEntry",
    "PortfolioEntryV2",
    "PortfolioServiceInterface",
    "PortfolioServiceV2",
    "ServiceCall",
    "ServiceType",
    "TotalPortfolio",
    "TotalPortfolioV2",
    "Transaction",
    "TransactionServiceInterface",
    "TransactionServiceV2",
    "TransactionV2",
    "UpdateServiceInterface",
    "VersionedInterface",
    "get_portfolio",
    "get_service_v2",
    "in_range",
    "plugin_logger",
    *_exports.__all__,
]

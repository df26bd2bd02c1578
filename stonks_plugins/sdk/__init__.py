"""The public, versioned API for plugin authors. Import from here and nowhere else.

``__all__`` is the whole public surface (``docs/sdk.md`` lists it; a test keeps the two
equal), grouped as below. Everything else in ``stonks_plugins`` is internal and may move.

- ``SDK_VERSION``: the plugin API version this SDK serves (a manifest's ``api.min_version``
  / ``max_version`` bound it).
- Plugin classes: ``BasePlugin`` and its kinds ``BaseBrokerPlugin``, ``BaseAggregatorPlugin``
  (with ``Panel``/``PanelRow``), ``BaseViewPlugin`` (with ``get_portfolio()``) and
  ``BaseMiddlewarePlugin`` (with ``ServiceCall``, whose ``interface_version`` is an
  ``InterfaceVersion``); ``BaseConfig``; ``HealthStatus`` (its ``status`` a ``Health``);
  ``plugin_logger(name)``, the logger whose records are kept with plugin ``name`` (what a
  plugin class gets as ``self.logger``; records its modules log with
  ``logging.getLogger(__name__)`` are kept too).
- Services: ``ServiceType`` and the service interfaces, each data service in API v1
  (``PortfolioServiceInterface``..., float records ``PortfolioEntry``...) and API v2
  (``PortfolioServiceV2``..., ``Money`` records ``PortfolioEntryV2``..., ``in_range`` for date
  ranges; see ``docs/api-v2.md``). A plugin implements either; the host serves both kinds of
  consumer.
- Why a plugin cannot run is said by raising, from ``initialize``, ``on_config_change``, a
  service method or ``health_check``: ``PluginNotReady`` (try again later: retried in the
  background), ``PluginAuthFailed`` (credentials refused: waits for the operator) or
  ``PluginConfigRejected`` (the config is unusable: ``config_invalid`` with your message).
  Returning False from ``initialize``/``on_config_change`` still fails, but is deprecated.
- ``exports``: the export toolkit for brokers that read export files
  (:mod:`stonks_plugins.sdk.exports`, ``docs/exports.md``): locale-aware decimals and dates,
  header aliases, ``read_csv`` with line numbers, ``parse_rows`` and the ``ImportReport``
  that accounts for every row, the export error family. Its names are importable from here
  too (``from stonks_plugins.sdk import read_csv``) but are listed in its own ``__all__``.

Names that left the surface (``CompatibilityAdapter``, ``get_service_v2``,
``VersionedInterface``, ``CORE_API_VERSION``) still resolve for one release, with a
``DeprecationWarning`` that says what to use instead (:mod:`._deprecated`).
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

from .. import CORE_API_VERSION as _CORE_API_VERSION
from ..base import (
    BaseAggregatorPlugin,
    BaseBrokerPlugin,
    BaseMiddlewarePlugin,
    BasePlugin,
    BaseViewPlugin,
    ServiceCall,
)
from ..errors import PluginAuthFailed, PluginConfigRejected, PluginNotReady
from ..health import Health, HealthStatus
from ..interfaces_v2 import (
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
from ..logs.capture import plugin_logger
from ..panels import Panel, PanelRow
from ..versioning import InterfaceVersion
from . import _deprecated, exports
from .exports import *  # noqa: F403 - the toolkit stays importable from here (see exports)

SDK_VERSION: str = _CORE_API_VERSION
"""The plugin API version this SDK serves; a manifest's ``api`` range must include it."""


def get_portfolio() -> list[PortfolioEntry]:
    """The portfolio of every active broker, as the home page shows it (for view and
    aggregator plugins that present data of their own)."""
    from stonks_overwatch.core.aggregators import PortfolioAggregator

    return list(PortfolioAggregator().get_portfolio().items)


def __getattr__(name: str) -> object:
    """A deprecated alias (warns, naming what to use instead), else ``AttributeError``."""
    return _deprecated.resolve(name)


# The public surface, name for name as docs/sdk.md lists it (tests/stonks_plugins/test_sdk.py
# fails on a name added to one and not the other). The toolkit's names are in exports.__all__.
__all__ = [
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
    "exports",
    "get_portfolio",
    "in_range",
    "plugin_logger",
]

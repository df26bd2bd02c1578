"""Base classes plugin authors subclass (re-exported by :mod:`stonks_plugins.sdk`)."""

from __future__ import annotations

import logging
from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stonks_overwatch.core.config import BaseConfig
from stonks_overwatch.core.data import PortfolioEntry
from stonks_overwatch.core.service_types import ServiceType

from .health import HealthStatus
from .logs.capture import plugin_logger
from .panels import Panel
from .versioning import V1, InterfaceVersion

if TYPE_CHECKING:
    from .manifest.model import PluginManifest
    from .sandbox import PluginContext


class BasePlugin(ABC):  # noqa: B024 - every hook has a sensible default
    """Common behaviour of every plugin type.

    A manifest whose ``services`` map names the service classes needs no plugin class at all;
    subclass this only to run code at initialise/shutdown or to report health and metrics.
    """

    plugin_type: str = ""

    def __init__(self, manifest: PluginManifest) -> None:
        self.manifest = manifest
        # Set by the loader before initialize(): create threads, files and connections
        # through it so they are tracked and released when the plugin is unloaded.
        self.context: PluginContext | None = None
        # The plugin's config object (built by its config class from the effective config);
        # set before initialize() and replaced by on_config_change().
        self.config: BaseConfig | None = None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def logger(self) -> logging.Logger:
        """The plugin's logger. Its records are kept with the plugin - shown on its console
        page, at ``GET /api/v1/plugins/NAME/logs/`` and by ``plugins logs NAME`` - and still
        reach the host's log. (Records its modules log with ``logging.getLogger(__name__)``
        are kept too.) Once loaded, the logger of the name it was loaded as (an instance's
        own); before that, in ``__init__``, its manifest name's."""
        own = self.__dict__.get("_logger")
        if own is not None:
            return own
        context = self.context
        return context.logger if context is not None else plugin_logger(self.name)

    @logger.setter
    def logger(self, value: logging.Logger) -> None:
        # A plugin that sets a logger of its own keeps it (records under its package are
        # kept anyway).
        self.__dict__["_logger"] = value

    def initialize(self) -> bool:
        """Set the plugin up (``self.config`` is set). To say why it cannot run, raise
        ``PluginNotReady`` (retried in the background), ``PluginAuthFailed`` or
        ``PluginConfigRejected`` (both wait for the operator) from ``stonks_plugins.sdk``;
        returning False still fails (``initialize_failed``) but is deprecated."""
        return True

    def shutdown(self) -> bool:
        return True

    def on_config_change(self, config: BaseConfig) -> bool:
        """A new config was saved: apply it without a restart. Raise to refuse it -
        ``PluginConfigRejected("why")`` says why to the operator - and the previous config
        stays live (returning False refuses it too, but is deprecated). The default
        re-initialises the plugin with the new config; override to apply changes in place."""
        self.config = config
        self.shutdown()
        return self.initialize()

    def health_check(self) -> HealthStatus:
        return HealthStatus.healthy()

    def get_metrics(self) -> dict[str, Any]:
        return {}

    @classmethod
    def migrate_config(cls, from_version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Convert ``data``, a stored config written for config schema ``from_version``, to
        the schema this version of the plugin declares (``configuration.version`` in its
        manifest). Override it as a classmethod or a staticmethod: it is called on the class,
        before any instance exists.

        ``plugins sync`` calls it when an upgrade raises the schema version, through the
        plugin's boundary and within ``PLUGINS_SYNC_LOAD_TIMEOUT``, with secrets decrypted.
        The result is validated against the new schema and stored as a new config version
        (secrets encrypted again). Raising (or returning a config the schema refuses) keeps
        the stored config as it was; if that does not fit the new schema either, the plugin
        is in error ``config_invalid`` until an operator fixes its config.

        It is never called when the versions match (the stored config is used unchanged).
        This default knows no older schema: it refuses, which the engine reports as "no
        migration"."""
        raise NotImplementedError(
            f"{cls.__name__} has no migrate_config: a config written for config schema "
            f"v{from_version} cannot be converted"
        )


def has_config_migration(cls: Any) -> bool:
    """Whether ``cls`` (a plugin's ``entry_points.main``) converts old configs itself: it
    defines ``migrate_config`` and does not merely inherit :meth:`BasePlugin.migrate_config`."""
    hook = getattr(cls, "migrate_config", None)
    if not callable(hook):
        return False
    default = BasePlugin.__dict__["migrate_config"].__func__
    return getattr(hook, "__func__", hook) is not default


class BaseBrokerPlugin(BasePlugin):
    """A broker: services for the legacy registry, and the config class they are built with.

    The defaults come from the manifest (``services`` and ``configuration.config_class``), as
    resolved by the loader; override to compute them in code.
    """

    plugin_type = "broker"

    def __init__(self, manifest: PluginManifest) -> None:
        super().__init__(manifest)
        self._services: dict[ServiceType, type] = {}
        self._config_class: type[BaseConfig] = BaseConfig

    def get_services(self) -> dict[ServiceType, type]:
        return dict(self._services)

    def get_config_class(self) -> type[BaseConfig]:
        return self._config_class


class BaseAggregatorPlugin(BasePlugin):
    """Combines data across every active broker into panels the host shows (home page
    "Insights"), e.g. allocation by currency, broker and product type."""

    plugin_type = "aggregator"

    def aggregate(self, portfolio: list[PortfolioEntry]) -> list[Panel]:
        """Panels computed from the portfolio of every active broker."""
        return []


class BaseViewPlugin(BasePlugin):
    """Contributes pages mounted under ``/plugins/<name>/``: URL patterns, templates (the
    package's ``templates/`` folder, addressed as ``plugins/<name>/<file>``), static files
    (the package's ``static/`` folder, served at ``/plugins/<name>/static/<file>``) and a
    navigation entry. A disabled view plugin's pages answer 404."""

    plugin_type = "view"
    nav_label: str = ""
    """Label of the navigation entry; empty: the plugin's display name."""
    nav_path: str = ""
    """Path under ``/plugins/<name>/`` the navigation entry opens."""

    def get_urlpatterns(self) -> list[Any]:
        """Django URL patterns, relative to ``/plugins/<name>/``."""
        return []


@dataclass(frozen=True)
class ServiceCall:
    """A call to a broker service method, as a middleware sees it."""

    broker: str
    service_type: ServiceType
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    interface_version: InterfaceVersion = V1
    """The version of the service interface the consumer called: ``V1`` returns v1 records
    (floats), ``V2`` - a ``get_service_v2`` consumer - v2 records with ``Decimal`` money. A
    middleware that rewrites results looks at it before touching them."""


class BaseMiddlewarePlugin(BasePlugin):
    """Intercepts broker service calls, in ``order`` (lower first), e.g. caching or
    converting values to a base currency. Enabled and disabled at runtime."""

    plugin_type = "middleware"
    order: int = 100

    def intercept(self, call: ServiceCall, proceed: Callable[[], Any]) -> Any:
        """Return the result of the call; ``proceed()`` runs the rest of the chain and the
        service itself. The default passes through."""
        return proceed()

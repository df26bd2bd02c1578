"""The PluginAdapter of the seed: a broker plugin appears in the legacy ``BrokerRegistry`` as
lazy providers, so the core serves it without knowing plugins exist.

What the registry holds for a plugin runs no plugin code when the core builds a config or a
service: :class:`LazyConfigClass` hands out a :class:`DeferredConfig` and
:class:`LazyService` a :class:`DeferredService`. They resolve to the plugin's real objects
only when used - on a lane thread, inside the caller's budget, when the runtime's service
wrapper (:mod:`stonks_plugins.runtime.calls`) stands in front, as it does for every service
the ``BrokerFactory`` builds. Which plugins are registered, and when, is the runtime's
business (:mod:`stonks_plugins.runtime.serving`).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType

from ..discovery import Candidate
from ..interface_adapters import Deferred, serve_v1
from ..registry import SERVICE_INTERFACES, LoadedPlugin
from ..runtime import loads
from ..sandbox.process import implementing


class DeferredConfig:
    """A plugin's config as the factory holds it: the plugin's own config object, built once
    per load or config change, read when first used."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin

    def resolve(self) -> Any:
        return loads.acquire(self.plugin).config

    def to_dict(self) -> dict[str, Any]:
        config = self.resolve()
        if hasattr(config, "to_dict"):
            data: dict[str, Any] = config.to_dict()
            return data
        return dict(vars(config))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __repr__(self) -> str:
        return f"<DeferredConfig {self.plugin}>"


class LazyConfigClass:
    """Stands in the registry for a plugin's config class."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin

    def from_dict(self, data: dict[str, Any] | None) -> DeferredConfig:
        # The data is the same effective config the plugin was loaded with (or is being
        # reconfigured to): it is built once, by the plugin's load, not again here.
        return DeferredConfig(self.plugin)

    def __repr__(self) -> str:
        return f"<LazyConfigClass {self.plugin}>"


class DeferredService(Deferred):
    """A plugin's service as the factory holds it: built from the loaded plugin when first
    called, again after each reload."""

    def __init__(self, plugin: str, service_type: ServiceType) -> None:
        self.plugin = plugin
        self.service_type = service_type
        self._lock = threading.Lock()
        self._built: tuple[LoadedPlugin, Any, Any] | None = None

    def prepare(self) -> None:
        """Start the plugin's load if nobody has (the caller's thread reads its config)."""
        loads.begin(self.plugin)

    def resolve(self) -> Any:
        loaded = loads.acquire(self.plugin)
        config = loaded.config  # replaced when a new config goes live: build afresh then
        built = self._built
        if built is not None and built[0] is loaded and built[1] is config:
            return built[2]
        service = serve_v1(
            loaded.create_service(self.service_type, config=config), self.service_type
        )
        with self._lock:
            self._built = (loaded, config, service)
        return service

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __repr__(self) -> str:
        return f"<DeferredService {self.plugin}:{self.service_type.value}>"


@functools.cache
def deferred_class(service_type: ServiceType) -> type[DeferredService]:
    """A DeferredService that is also the service type's v1 interface, as what the legacy
    registry handed out before always was (``isinstance`` checks, the version adapters)."""
    interface = SERVICE_INTERFACES.get(service_type)
    if interface is None:
        return DeferredService
    cls: type[DeferredService] = implementing(DeferredService, interface, _forwarding)
    return cls


def _forwarding(name: str) -> Any:
    def method(self: DeferredService, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.resolve(), name)(*args, **kwargs)

    method.__name__ = name
    return method


class LazyService:
    """Stands in the registry for a plugin's service class."""

    def __init__(self, plugin: str, service_type: ServiceType) -> None:
        self.plugin = plugin
        self.service_type = service_type

    def __call__(self, **kwargs: Any) -> DeferredService:
        return deferred_class(self.service_type)(self.plugin, self.service_type)

    def __repr__(self) -> str:
        return f"<LazyService {self.plugin}:{self.service_type.value}>"


def register_broker(candidate: Candidate) -> None:
    """Put a broker plugin's lazy providers into the legacy registry."""
    manifest = candidate.manifest
    assert manifest is not None
    name = candidate.name
    services = manifest.services or dict.fromkeys(manifest.capabilities.services)
    BrokerRegistry().register_complete_broker(
        name,
        LazyConfigClass(name),
        **{stype.value: LazyService(name, stype) for stype in services},
    )
    BrokerFactory().clear_cache(name)


def unregister_broker(name: str) -> None:
    BrokerRegistry().unregister_broker(name)
    BrokerFactory().clear_cache(name)

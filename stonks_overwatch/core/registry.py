"""The broker registry: which brokers exist, their config classes and their services.

Thread-safe singleton. A service may be registered as a class or as any callable that builds
the service from keyword arguments (the plugin system registers lazy proxies that way, so
nothing is imported until a service is first used). Observers added with
``add_refresh_hook`` run before reads, letting an outside source keep the registry current
without the registry knowing what that source is. Outside code reads the whole registry
through :meth:`BrokerRegistry.snapshot`, never through its private fields.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from .exceptions import BrokerRegistryError
from .service_types import ServiceType

ServiceProvider = Callable[..., Any]


@dataclass(frozen=True)
class BrokerEntry:
    """One broker as registered: what was passed in, exactly (a class, or the callable an
    outside system registered in its place), so a caller can tell who registered it."""

    name: str
    config_class: Any | None
    services: Mapping[ServiceType, ServiceProvider]

    @property
    def capabilities(self) -> list[ServiceType]:
        return sorted(self.services, key=lambda t: t.value)


@dataclass(frozen=True)
class RegistrySnapshot:
    """The registry at one moment, read in one go under its lock: consistent across brokers,
    and unchanged by later registrations."""

    brokers: Mapping[str, BrokerEntry]

    def names(self) -> list[str]:
        return sorted(self.brokers)

    def get(self, name: str) -> BrokerEntry | None:
        return self.brokers.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.brokers

    def __len__(self) -> int:
        return len(self.brokers)


class BrokerRegistry:
    _instance: ClassVar[BrokerRegistry | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __new__(cls) -> BrokerRegistry:
        found = cls._instance
        if found is not None:
            return found  # the class lock only to make the one instance (read on every lookup)
        with cls._instance_lock:
            if cls._instance is None:
                inst = super().__new__(cls)
                inst._lock = threading.RLock()
                inst._configs = {}
                inst._services = {}
                inst._refresh_hooks = []
                inst._in_refresh = threading.local()
                cls._instance = inst
            return cls._instance

    _lock: threading.RLock
    _configs: dict[str, Any]
    _services: dict[str, dict[ServiceType, ServiceProvider]]
    _refresh_hooks: list[Callable[[], None]]
    _in_refresh: threading.local

    # -- observers -------------------------------------------------------------------------
    def add_refresh_hook(self, hook: Callable[[], None]) -> None:
        with self._lock:
            if hook not in self._refresh_hooks:
                self._refresh_hooks.append(hook)

    def remove_refresh_hook(self, hook: Callable[[], None]) -> None:
        with self._lock:
            if hook in self._refresh_hooks:
                self._refresh_hooks.remove(hook)

    def _refresh(self) -> None:
        # A hook may itself register brokers; do not recurse into the hooks from there. Nor
        # run them again inside ``reading()``: they ran when it began.
        if getattr(self._in_refresh, "active", False):
            return
        self._in_refresh.active = True
        try:
            for hook in list(self._refresh_hooks):
                hook()
        finally:
            self._in_refresh.active = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Many lookups in a row by this thread (an aggregate over every broker): the
        refresh hooks run once, here, not before each lookup (a page asked them ~80 times
        with two dozen brokers registered)."""
        if getattr(self._in_refresh, "active", False):
            yield  # an enclosing reading (or a hook) already refreshed
            return
        self._refresh()
        self._in_refresh.active = True
        try:
            yield
        finally:
            self._in_refresh.active = False

    # -- registration ----------------------------------------------------------------------
    def register_broker_config(self, name: str, config_class: Any) -> None:
        name = _check_name(name)
        if config_class is None or not callable(getattr(config_class, "from_dict", None)):
            raise BrokerRegistryError(
                f"broker '{name}': config class must provide from_dict(), got {config_class!r}"
            )
        with self._lock:
            self._configs[name] = config_class

    def register_broker_services(self, name: str, **services: ServiceProvider) -> None:
        name = _check_name(name)
        if not services:
            raise BrokerRegistryError(f"broker '{name}': at least one service is required")
        parsed: dict[ServiceType, ServiceProvider] = {}
        for key, provider in services.items():
            try:
                stype = ServiceType(key)
            except ValueError:
                valid = ", ".join(t.value for t in ServiceType)
                raise BrokerRegistryError(
                    f"broker '{name}': unknown service type '{key}' (expected one of {valid})"
                ) from None
            if not callable(provider):
                raise BrokerRegistryError(
                    f"broker '{name}': service '{key}' must be a class or callable"
                )
            parsed[stype] = provider
        with self._lock:
            self._services[name] = parsed

    def register_complete_broker(
        self, name: str, config_class: Any, **services: ServiceProvider
    ) -> None:
        with self._lock:
            self.register_broker_config(name, config_class)
            self.register_broker_services(name, **services)

    def unregister_broker(self, name: str) -> bool:
        with self._lock:
            found = name in self._configs or name in self._services
            self._configs.pop(name, None)
            self._services.pop(name, None)
            return found

    # -- lookup ----------------------------------------------------------------------------
    def get_config_class(self, name: str) -> Any:
        self._refresh()
        with self._lock:
            try:
                return self._configs[name]
            except KeyError:
                raise BrokerRegistryError(f"broker '{name}' has no registered config") from None

    def get_service_class(self, name: str, service_type: ServiceType | str) -> ServiceProvider:
        self._refresh()
        stype = _service_type(service_type)
        with self._lock:
            try:
                return self._services[name][stype]
            except KeyError:
                raise BrokerRegistryError(
                    f"broker '{name}' does not provide the '{stype.value}' service"
                ) from None

    def broker_supports_service(self, name: str, service_type: ServiceType | str) -> bool:
        self._refresh()
        with self._lock:
            return _service_type(service_type) in self._services.get(name, {})

    def get_broker_capabilities(self, name: str) -> list[ServiceType]:
        self._refresh()
        with self._lock:
            return sorted(self._services.get(name, {}), key=lambda t: t.value)

    def get_registered_brokers(self) -> list[str]:
        self._refresh()
        with self._lock:
            return sorted(set(self._configs) | set(self._services))

    def snapshot(self) -> RegistrySnapshot:
        """Every registered broker as it stands. The refresh hooks are not run: an observer
        reads the snapshot from inside its own hook, while it is changing the registry."""
        with self._lock:
            names = sorted(set(self._configs) | set(self._services))
            entries = {
                name: BrokerEntry(
                    name,
                    self._configs.get(name),
                    MappingProxyType(dict(self._services.get(name, {}))),
                )
                for name in names
            }
        return RegistrySnapshot(MappingProxyType(entries))

    def has_config(self, name: str) -> bool:
        with self._lock:
            return name in self._configs

    def is_registered(self, name: str) -> bool:
        with self._lock:
            return name in self._services or name in self._configs


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BrokerRegistryError(f"broker name must be a non-empty string, got {name!r}")
    return name.strip()


def _service_type(value: ServiceType | str) -> ServiceType:
    # ServiceType(member) costs an enum lookup on every broker lookup of a page.
    return value if isinstance(value, ServiceType) else ServiceType(value)

"""Builds configs and services for registered brokers, caching instances per process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from .registry import BrokerRegistry
from .service_types import ServiceType

ConfigSource = Callable[[str], dict[str, Any] | None]
ServiceWrapper = Callable[[str, ServiceType, Any], Any]


def _settings_config_source(name: str) -> dict[str, Any] | None:
    from django.conf import settings

    configs: dict[str, dict[str, Any]] = getattr(settings, "BROKER_CONFIGS", {})
    return configs.get(name)


class BrokerFactory:
    """Singleton factory. ``config_sources`` are asked in order for a broker's raw settings;
    the first that answers (not None) wins, so an outside system can supply configs."""

    _instance: ClassVar[BrokerFactory | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    _lock: threading.RLock
    _config_cache: dict[str, Any]
    _service_cache: dict[tuple[str, ServiceType], Any]
    _config_sources: list[ConfigSource]
    _service_wrappers: list[ServiceWrapper]
    _generations: dict[str, int]
    """Per broker, bumped by ``clear_cache(name)``: a config or service built from what was
    read before is returned to its caller but not cached (a change made meanwhile would
    otherwise be lost until the next one)."""
    _everything: int
    """Bumped when every broker's cache is cleared (``clear_cache()``, a new wrapper)."""

    def __new__(cls) -> BrokerFactory:
        found = cls._instance
        if found is not None:
            return found  # the class lock only to make the one instance (read on every lookup)
        with cls._instance_lock:
            if cls._instance is None:
                inst = super().__new__(cls)
                inst._lock = threading.RLock()
                inst._config_cache = {}
                inst._service_cache = {}
                inst._config_sources = [_settings_config_source]
                inst._service_wrappers = []
                inst._generations = {}
                inst._everything = 0
                cls._instance = inst
            return cls._instance

    @property
    def registry(self) -> BrokerRegistry:
        return BrokerRegistry()

    def add_config_source(self, source: ConfigSource) -> None:
        with self._lock:
            if source not in self._config_sources:
                self._config_sources.insert(0, source)

    def add_service_wrapper(self, wrapper: ServiceWrapper) -> None:
        """``wrapper(broker, service_type, service)`` returns what consumers get instead of
        the service (e.g. a proxy that intercepts its calls); applied in order."""
        with self._lock:
            if wrapper not in self._service_wrappers:
                self._service_wrappers.append(wrapper)
                self._service_cache.clear()
                self._everything += 1

    def _generation(self, name: str) -> tuple[int, int]:
        return self._everything, self._generations.get(name, 0)

    def create_config(self, name: str) -> Any:
        config_class = self.registry.get_config_class(name)
        with self._lock:
            cached = self._config_cache.get(name)
            since = self._generation(name)
        if cached is not None:
            return cached
        data: dict[str, Any] | None = None
        for source in list(self._config_sources):
            data = source(name)
            if data is not None:
                break
        config = config_class.from_dict(data or {})
        with self._lock:
            if self._generation(name) == since:
                self._config_cache[name] = config
        return config

    def create_service(self, name: str, service_type: ServiceType | str) -> Any:
        stype = service_type if isinstance(service_type, ServiceType) else ServiceType(service_type)
        provider = self.registry.get_service_class(name, stype)
        key = (name, stype)
        with self._lock:
            cached = self._service_cache.get(key)
            since = self._generation(name)
        if cached is not None and cached[0] is provider:
            return cached[1]
        config = self.create_config(name) if self.registry.has_config(name) else None
        service = provider(config=config)
        for wrapper in list(self._service_wrappers):
            service = wrapper(name, stype, service)
        with self._lock:
            if self._generation(name) == since:
                self._service_cache[key] = (provider, service)
        return service

    def clear_cache(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._everything += 1
                self._config_cache.clear()
                self._service_cache.clear()
                return
            self._generations[name] = self._generations.get(name, 0) + 1
            self._config_cache.pop(name, None)
            for key in [k for k in self._service_cache if k[0] == name]:
                del self._service_cache[key]

"""This process's catalog of plugins it may serve, and of those whose code it has loaded
(the seed's PluginRegistry). Loading happens on first use and only once per process."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

from stonks_overwatch.core.config import BaseConfig
from stonks_overwatch.core.interfaces import (
    AccountServiceInterface,
    AuthenticationServiceInterface,
    DepositServiceInterface,
    DividendServiceInterface,
    FeeServiceInterface,
    PortfolioServiceInterface,
    TransactionServiceInterface,
    UpdateServiceInterface,
)
from stonks_overwatch.core.service_types import ServiceType

from . import loader
from .base import BaseBrokerPlugin, BasePlugin
from .discovery.candidate import Candidate
from .errors import PluginError, ReasonCode

SERVICE_INTERFACES: dict[ServiceType, type] = {
    ServiceType.PORTFOLIO: PortfolioServiceInterface,
    ServiceType.TRANSACTION: TransactionServiceInterface,
    ServiceType.DEPOSIT: DepositServiceInterface,
    ServiceType.DIVIDEND: DividendServiceInterface,
    ServiceType.FEE: FeeServiceInterface,
    ServiceType.ACCOUNT: AccountServiceInterface,
    ServiceType.AUTHENTICATION: AuthenticationServiceInterface,
    ServiceType.UPDATE: UpdateServiceInterface,
}


@dataclass
class LoadedPlugin:
    candidate: Candidate
    instance: BasePlugin | None
    services: dict[ServiceType, type] = field(default_factory=dict)
    config_class: Any = BaseConfig

    @property
    def name(self) -> str:
        return self.candidate.name


class PluginRegistry:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._known: dict[str, Candidate] = {}
        self._loaded: dict[str, LoadedPlugin] = {}

    def register(self, candidate: Candidate) -> None:
        with self._lock:
            old = self._known.get(candidate.name)
            if old is not None and (old.fingerprint, old.location) != (
                candidate.fingerprint,
                candidate.location,
            ):
                self.unload(candidate.name)
            self._known[candidate.name] = candidate

    def unregister(self, name: str) -> None:
        with self._lock:
            self.unload(name)
            self._known.pop(name, None)

    def known(self) -> dict[str, Candidate]:
        with self._lock:
            return dict(self._known)

    def loaded(self) -> dict[str, LoadedPlugin]:
        with self._lock:
            return dict(self._loaded)

    def load(self, name: str) -> LoadedPlugin:
        with self._lock:
            hit = self._loaded.get(name)
            if hit is not None:
                return hit
            candidate = self._known.get(name)
            if candidate is None or candidate.manifest is None:
                raise PluginError(
                    name, ReasonCode.IMPORT_ERROR, "is not registered in this process"
                )
            try:
                loaded = _load(candidate)
            except PluginError:
                loader.release(candidate)  # a half-imported plugin must not linger
                raise
            self._loaded[name] = loaded
            return loaded

    def unload(self, name: str) -> bool:
        with self._lock:
            loaded = self._loaded.pop(name, None)
        if loaded is None:
            return False
        if loaded.instance is not None:
            # A failing shutdown must not keep the plugin's modules around.
            with contextlib.suppress(Exception):
                loaded.instance.shutdown()
        loader.release(loaded.candidate)
        return True

    def clear(self) -> None:
        for name in list(self.known()):
            self.unregister(name)


def _load(candidate: Candidate) -> LoadedPlugin:
    manifest = candidate.manifest
    assert manifest is not None
    name = candidate.name
    instance: BasePlugin | None = None
    if manifest.entry_points.main:
        cls = loader.resolve(candidate, manifest.entry_points.main)
        if not (isinstance(cls, type) and issubclass(cls, BasePlugin)):
            raise PluginError(
                name,
                ReasonCode.IMPORT_ERROR,
                f"entry_points.main '{manifest.entry_points.main}' is not a "
                "subclass of stonks_plugins.sdk.BasePlugin",
            )
        try:
            instance = cls(manifest)
        except Exception as exc:
            raise PluginError(
                name,
                ReasonCode.INITIALIZE_FAILED,
                f"{cls.__name__}(manifest) raised {type(exc).__name__}: {exc}",
            ) from exc
    services: dict[ServiceType, type] = {}
    for stype, ref in manifest.services.items():
        cls = loader.resolve(candidate, ref)
        interface = SERVICE_INTERFACES[stype]
        if not (isinstance(cls, type) and issubclass(cls, interface)):
            raise PluginError(
                name,
                ReasonCode.IMPORT_ERROR,
                f"services.{stype.value} '{ref}' does not implement {interface.__name__}",
            )
        services[stype] = cls
    config_ref = manifest.configuration.config_class or manifest.entry_points.config
    config_class: Any = loader.resolve(candidate, config_ref) if config_ref else BaseConfig
    if isinstance(instance, BaseBrokerPlugin):
        if services:
            instance._services = dict(services)
        else:
            services = instance.get_services()
        if config_ref:
            instance._config_class = config_class
        else:
            config_class = instance.get_config_class()
    if instance is not None:
        try:
            ok = instance.initialize()
        except Exception as exc:
            raise PluginError(
                name,
                ReasonCode.INITIALIZE_FAILED,
                f"initialize() raised {type(exc).__name__}: {exc}",
            ) from exc
        if ok is False:
            raise PluginError(name, ReasonCode.INITIALIZE_FAILED, "initialize() returned False")
    return LoadedPlugin(candidate, instance, services, config_class)


plugin_registry = PluginRegistry()
"""The process-wide catalog (one per process, like Django's ``apps``)."""

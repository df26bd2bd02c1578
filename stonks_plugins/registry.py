"""This process's catalog of plugins it may serve, and of those whose code it has loaded
(the seed's PluginRegistry). Loading happens on first use and only once per process.

Every call into plugin code — import, construction, initialize, shutdown, service methods —
goes through the plugin's :class:`~stonks_plugins.sandbox.PluginSandbox`. Loading has its
own circuit with a threshold of one: a plugin that failed to load is not tried again on every
request but after an exponential backoff (Home Assistant's setup retry), so a hanging
``initialize`` costs one bounded wait per backoff period, not one per request.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

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
from .compat_adapters import accepted_interfaces
from .discovery.candidate import Candidate
from .errors import PluginError, ReasonCode
from .sandbox import CircuitBreaker, LeakReport, PluginSandbox, SandboxError

if TYPE_CHECKING:
    from .sandbox.process import ProcessHost

logger = logging.getLogger(__name__)

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
class Hooks:
    """What the registry tells the rest of the system; set once by the app (Django side)."""

    on_failure: Callable[[SandboxError], None] | None = None
    on_recover: Callable[[str, str], None] | None = None  # (plugin, operation)
    worker_exit: Callable[[], None] | None = None
    before_load: Callable[[Candidate], None] | None = None
    loaded: Callable[[LoadedPlugin], None] | None = None
    before_unload: Callable[[LoadedPlugin], None] | None = None
    unloaded: Callable[[str, LeakReport], None] | None = None
    on_crash: Callable[[SandboxError], None] | None = None
    """A process-isolated plugin's child died: put the plugin in error."""
    process_limits: dict[str, float] = field(default_factory=dict)
    config_provider: Callable[[str], dict[str, Any] | None] | None = None
    """The plugin's effective (flattened) config, for the object set on the plugin before
    initialize()."""
    timeouts: dict[str, float | None] = field(default_factory=dict)
    circuit_threshold: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 300.0


@dataclass
class LoadedPlugin:
    candidate: Candidate
    instance: BasePlugin | None
    services: dict[ServiceType, type] = field(default_factory=dict)
    config_class: Any = BaseConfig
    sandbox: PluginSandbox | None = None
    host: ProcessHost | None = None
    """The child process of a process-isolated plugin."""
    hooks: Hooks | None = None
    crashed: bool = False

    @property
    def name(self) -> str:
        return self.candidate.name

    def create_service(self, service_type: ServiceType, **kwargs: Any) -> Any:
        """A service instance whose every public method goes through the boundary."""
        cls = self.services.get(service_type)
        if cls is None:
            raise PluginError(
                self.name, ReasonCode.IMPORT_ERROR, f"provides no '{service_type.value}' service"
            )
        assert self.sandbox is not None
        if self.host is not None:
            assert self.hooks is not None
            proxy = self.host.service_proxy(service_type, kwargs.get("config"))
            return cls(self, service_type, proxy, self.hooks)  # an isolated_class
        instance = self.sandbox.run(f"{service_type.value}.__init__", cls, timeout=None, **kwargs)
        return self.sandbox.wrap(instance, service_type.value)


class PluginRegistry:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._known: dict[str, Candidate] = {}
        self._loaded: dict[str, LoadedPlugin] = {}
        self._sandboxes: dict[str, PluginSandbox] = {}
        self._load_circuits: dict[str, CircuitBreaker] = {}
        self.hooks = Hooks()

    # -- catalog ---------------------------------------------------------------------------
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
            self._sandboxes.pop(name, None)
            self._load_circuits.pop(name, None)

    def known(self) -> dict[str, Candidate]:
        with self._lock:
            return dict(self._known)

    def loaded(self) -> dict[str, LoadedPlugin]:
        with self._lock:
            return dict(self._loaded)

    def sandbox(self, name: str) -> PluginSandbox:
        """The plugin's boundary in this process (created on first use, kept across
        reloads so its metrics and circuit survive)."""
        with self._lock:
            box = self._sandboxes.get(name)
            if box is None:
                h = self.hooks
                recover = h.on_recover
                box = PluginSandbox(
                    name,
                    timeouts=h.timeouts,
                    circuit=CircuitBreaker(
                        threshold=h.circuit_threshold,
                        base_delay=h.backoff_base,
                        max_delay=h.backoff_max,
                    ),
                    on_failure=h.on_failure,
                    on_recover=(partial(_named, recover, name) if recover else None),
                    worker_exit=h.worker_exit,
                )
                self._sandboxes[name] = box
            return box

    def _load_circuit(self, name: str) -> CircuitBreaker:
        circuit = self._load_circuits.get(name)
        if circuit is None:
            circuit = self._load_circuits[name] = CircuitBreaker(
                threshold=1, base_delay=self.hooks.backoff_base, max_delay=self.hooks.backoff_max
            )
        return circuit

    # -- loading ---------------------------------------------------------------------------
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
            for dep in candidate.manifest.plugin_dependencies:
                if dep in self._known:
                    self.load(dep)  # needed plugins first
            circuit = self._load_circuit(name)
            if not circuit.allow():
                raise SandboxError(
                    name,
                    ReasonCode.CIRCUIT_OPEN,
                    "load",
                    f"loading failed before; next attempt in {circuit.retry_in():.1f} s",
                    retry_in=circuit.retry_in(),
                )
            retrying = circuit.failures > 0
            box = self.sandbox(name)
            if self.hooks.before_load:
                self.hooks.before_load(candidate)
            try:
                # Inside the child the plugin runs in-process: the child is the isolation.
                in_child = os.environ.get("STONKS_PLUGIN_ISOLATION") == "process"
                if candidate.manifest.isolation == "process" and not in_child:
                    loaded = _load_isolated(candidate, box, self.hooks)
                else:
                    loaded = _load(candidate, box, self.hooks.config_provider)
            except PluginError:
                circuit.record_failure()
                box.close(join_timeout=0.5)
                loader.release(candidate)  # a half-imported plugin must not linger
                raise
            circuit.record_success()
            self._loaded[name] = loaded
        if retrying and self.hooks.on_recover:
            self.hooks.on_recover(name, "load")
        if self.hooks.loaded:
            self.hooks.loaded(loaded)
        return loaded

    def unload(self, name: str) -> LeakReport | None:
        with self._lock:
            loaded = self._loaded.pop(name, None)
        if loaded is None:
            return None
        if self.hooks.before_unload:
            self.hooks.before_unload(loaded)
        box = loaded.sandbox
        assert box is not None
        if loaded.host is not None:
            loaded.host.close()
        if loaded.instance is not None:
            try:
                box.run("shutdown", loaded.instance.shutdown)
            except SandboxError as err:  # a failing shutdown must not keep the plugin around
                logger.warning("%s", err)
        report = box.close()
        loader.release(loaded.candidate)
        if not report.ok:
            logger.warning("plugin %s leaked on unload: %s", name, report.as_dict())
        if self.hooks.unloaded:
            self.hooks.unloaded(name, report)
        return report

    def clear(self) -> None:
        for name in list(self.known()):
            self.unregister(name)


def _load(
    candidate: Candidate,
    box: PluginSandbox,
    config_provider: Callable[[str], dict[str, Any] | None] | None = None,
) -> LoadedPlugin:
    manifest = candidate.manifest
    assert manifest is not None
    name = candidate.name

    def resolve(ref: str) -> Any:
        return box.run("import", loader.resolve, candidate, ref)

    instance: BasePlugin | None = None
    if manifest.entry_points.main:
        cls = resolve(manifest.entry_points.main)
        if not (isinstance(cls, type) and issubclass(cls, BasePlugin)):
            raise PluginError(
                name,
                ReasonCode.IMPORT_ERROR,
                f"entry_points.main '{manifest.entry_points.main}' is not a subclass of "
                "stonks_plugins.sdk.BasePlugin",
            )
        instance = box.run("initialize", cls, manifest, timeout=None)
        instance.context = box.context
    services: dict[ServiceType, type] = {}
    for stype, ref in manifest.services.items():
        cls = resolve(ref)
        # API v1 or v2 of its interface (stonks_plugins.versioning); the bridge adapts.
        accepted = accepted_interfaces(stype)
        if not (isinstance(cls, type) and issubclass(cls, accepted)):
            wanted = " or ".join(i.__name__ for i in accepted)
            raise PluginError(
                name,
                ReasonCode.IMPORT_ERROR,
                f"services.{stype.value} '{ref}' does not implement {wanted}",
            )
        services[stype] = cls
    config_ref = manifest.configuration.config_class or manifest.entry_points.config
    config_class: Any = resolve(config_ref) if config_ref else BaseConfig
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
        data = config_provider(name) if config_provider else None
        instance.config = box.run(
            "config.from_dict", config_class.from_dict, data or {}, timeout=None
        )
        ok = box.run("initialize", instance.initialize)
        if ok is False:
            raise PluginError(name, ReasonCode.INITIALIZE_FAILED, "initialize() returned False")
    return LoadedPlugin(candidate, instance, services, config_class, box)


def _load_isolated(candidate: Candidate, box: PluginSandbox, hooks: Hooks) -> LoadedPlugin:
    # Imported here: the process host's child side imports this module.
    from .isolation import ForwardedConfig, isolated_class, start_host

    manifest = candidate.manifest
    assert manifest is not None
    host = start_host(candidate, hooks)  # started: the child has said what each class implements
    declared = list(manifest.services) or list(manifest.capabilities.services)
    services: dict[ServiceType, type] = {
        s: isolated_class(host.service_interface(s)) for s in declared
    }
    return LoadedPlugin(candidate, None, services, ForwardedConfig, box, host, hooks)


def _named(hook: Callable[[str, str], None], name: str, operation: str) -> None:
    hook(name, operation)


plugin_registry = PluginRegistry()
"""The process-wide catalog (one per process, like Django's ``apps``)."""

"""This process's catalog of plugins it may serve, and of those whose code it has loaded
(the seed's PluginRegistry). Loading happens once per process, off the request path (the
runtime's loads call :meth:`PluginRegistry.load` from a background thread).

Every call into plugin code - import, construction, initialize, shutdown, service methods -
goes through the plugin's :class:`~stonks_plugins.sandbox.PluginSandbox`. Loading has its
own circuit with a threshold of one: a plugin that failed to load is not tried again at
once but after an exponential backoff (Home Assistant's setup retry). The registry's lock
guards its dictionaries only; loading a plugin holds that plugin's own lock, so a plugin
that hangs while loading never delays the loading of another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from stonks_overwatch.core.service_types import ServiceType

from . import generation, loader
from .discovery.candidate import Candidate
from .errors import PluginError, ReasonCode
from .interface_adapters import SERVICE_INTERFACES as SERVICE_INTERFACES
from .isolated_plugins import ForwardedConfig, isolated_class, runs_isolated, start_host
from .loaded import LoadedPlugin, unload_in_process
from .loaded import load_in_process as _load
from .sandbox import CircuitBreaker, LeakReport, PluginSandbox, SandboxError
from .sandbox.timeouts import Pending

logger = logging.getLogger(__name__)


class NotRegistered(SandboxError):
    """The plugin is not (or no longer) served by this process: a change made elsewhere (a
    disable) withdrew it while a load was on its way. Not a failure of the plugin's code, so
    it is never recorded on the plugin's row."""

    def __init__(self, name: str, why: str = "is not registered in this process") -> None:
        super().__init__(name, ReasonCode.IMPORT_ERROR, "load", why)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.plugin, self.message), dict(self.__dict__))


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
    load_retry_base: float = 5.0
    """First wait before a failed load is tried again (a load is costly: imports, a child
    process); doubles like the calls' backoff."""


class PluginRegistry:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._known: dict[str, Candidate] = {}
        self._loaded: dict[str, LoadedPlugin] = {}
        self._sandboxes: dict[str, PluginSandbox] = {}
        self._load_circuits: dict[str, CircuitBreaker] = {}
        self._load_locks: dict[str, threading.RLock] = {}
        self.hooks = Hooks()
        self.build_config = True
        """Build a services-only plugin's config object at load (the kit turns it off)."""

    # -- catalog ---------------------------------------------------------------------------
    def register(self, candidate: Candidate) -> None:
        with self._lock:
            old = self._known.get(candidate.name)
            replaced = old is not None and (old.fingerprint, old.location) != (
                candidate.fingerprint,
                candidate.location,
            )
            self._known[candidate.name] = candidate
        if replaced:
            self.unload(candidate.name)  # outside the lock: shutdown is plugin code

    def unregister(self, name: str, *, wait: bool = True) -> None:
        loaded = self.detach(name)
        if loaded is not None:
            self.release(loaded, wait=wait)

    def detach(self, name: str) -> LoadedPlugin | None:
        """Forget the plugin at once (no plugin code runs); returns its loaded code, which
        the caller hands to :meth:`release` - outside any lock of its own."""
        with self._lock:
            self._known.pop(name, None)
            self._sandboxes.pop(name, None)
            self._load_circuits.pop(name, None)
            self._load_locks.pop(name, None)
            detached = self._loaded.pop(name, None)
        generation.bump()
        return detached

    def known(self) -> dict[str, Candidate]:
        with self._lock:
            return dict(self._known)

    def loaded(self) -> dict[str, LoadedPlugin]:
        with self._lock:
            return dict(self._loaded)

    def peek(self, name: str) -> LoadedPlugin | None:
        """The plugin's loaded code, if this process has it (never loads)."""
        return self._loaded.get(name)

    def forgive(self, name: str) -> None:
        """Forget earlier failed loads (an operator's retry): the next load may run now."""
        with self._lock:
            self._load_circuits.pop(name, None)

    def load_failure(self, name: str) -> tuple[int, float]:
        """(consecutive failed loads, seconds until the next may be tried)."""
        circuit = self._load_circuits.get(name)
        if circuit is None:
            return 0, 0.0
        return circuit.failures, circuit.retry_in()

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
            h = self.hooks
            base = min(max(h.backoff_base, h.load_retry_base), h.backoff_max)
            circuit = self._load_circuits[name] = CircuitBreaker(
                threshold=1, base_delay=base, max_delay=h.backoff_max
            )
        return circuit

    # -- loading ---------------------------------------------------------------------------
    def load(self, name: str, configs: Mapping[str, Any] | None = None) -> LoadedPlugin:
        """Load the plugin's code (its dependencies first). ``configs`` holds effective
        configs by plugin name, read by the caller (who may be the only thread that sees
        the database); for a plugin not in it, the config provider hook is asked."""
        hit = self._loaded.get(name)
        if hit is not None:
            return hit
        with self._lock:
            candidate = self._known.get(name)
            lock = self._load_locks.setdefault(name, threading.RLock())
        if candidate is None or candidate.manifest is None:
            raise NotRegistered(name)
        for dep in candidate.manifest.plugin_dependencies:
            if dep in self._known:
                self.load(dep, configs)  # needed plugins first
        with lock:  # this plugin's own: loading another plugin never waits on it
            hit = self._loaded.get(name)
            if hit is not None:
                return hit
            with self._lock:
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
            if configs is not None and name in configs:
                config = configs[name]
            else:
                provider = self.hooks.config_provider
                config = provider(name) if provider else None
            isolated = runs_isolated(candidate)
            try:
                if isolated:
                    loaded = _load_isolated(candidate, box, self.hooks, config)
                else:
                    loaded = _load(candidate, box, config, self.build_config)
            except PluginError:
                circuit.record_failure()
                box.close(join_timeout=0.5)
                if not isolated:  # its child imported it; this process imported nothing
                    loader.release(candidate)  # a half-imported plugin must not linger
                raise
            circuit.record_success()
            with self._lock:
                if self._known.get(name) is not candidate:
                    # Unregistered or replaced while it loaded: what loaded is not served.
                    stale = True
                else:
                    stale = False
                    self._loaded[name] = loaded
            generation.bump()
        if stale:
            # A change made elsewhere (a disable, a new version) won: shut down what loaded,
            # off this thread, and record nothing against the plugin.
            self.release(loaded, wait=False)
            raise NotRegistered(name, "was replaced while it loaded")
        if retrying and self.hooks.on_recover:
            self.hooks.on_recover(name, "load")
        if self.hooks.loaded:
            self.hooks.loaded(loaded)
        return loaded

    def unload(self, name: str, *, wait: bool = True) -> LeakReport | None:
        """Stop serving the plugin's loaded code and shut it down; with ``wait=False`` the
        shutdown (plugin code) runs on a background thread and nobody waits for it."""
        with self._lock:
            loaded = self._loaded.pop(name, None)
        generation.bump()
        return self.release(loaded, wait=wait) if loaded is not None else None

    def release(self, loaded: LoadedPlugin, *, wait: bool = True) -> LeakReport | None:
        """Shut detached code down; with ``wait=False`` on a background thread."""
        if not wait:
            Pending.start(self._release, (loaded,), name=f"plugin:{loaded.name}:shutdown")
            return None
        return self._release(loaded)

    def _release(self, loaded: LoadedPlugin) -> LeakReport:
        name = loaded.name
        if self.hooks.before_unload:
            self.hooks.before_unload(loaded)
        if loaded.host is not None:
            loaded.host.close()
        report = unload_in_process(loaded)
        if self.hooks.unloaded:
            self.hooks.unloaded(name, report)
        return report

    def clear(self) -> None:
        for name in list(self.known()):
            self.unregister(name)


def _load_isolated(
    candidate: Candidate, box: PluginSandbox, hooks: Hooks, data: dict[str, Any] | None
) -> LoadedPlugin:
    manifest = candidate.manifest
    assert manifest is not None
    host = start_host(candidate, hooks)  # started: the child has said what each class implements
    declared = list(manifest.services) or list(manifest.capabilities.services)
    services: dict[ServiceType, type] = {
        s: isolated_class(host.service_interface(s)) for s in declared
    }
    return LoadedPlugin(
        candidate, None, services, ForwardedConfig, box, host, hooks, config=ForwardedConfig(data)
    )


def _named(hook: Callable[[str, str], None], name: str, operation: str) -> None:
    hook(name, operation)


plugin_registry = PluginRegistry()
"""The process-wide catalog (one per process, like Django's ``apps``)."""

"""The PluginAdapter of the seed: active broker plugins appear in the legacy
``BrokerRegistry`` as lazy providers, so the core serves them without knowing plugins exist.

Nothing is imported until a service is first built. The registry calls ``refresh`` before
each read; it compares the propagation stamp (cheap, throttled) and, when plugins changed,
re-registers exactly the broker plugins the database says are active.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType

from .. import metrics_store, propagation
from ..discovery import Candidate, discover
from ..errors import PluginError, ReasonCode
from ..lifecycle.states import PluginState
from ..registry import LoadedPlugin, plugin_registry
from ..sandbox import SandboxError
from .adapter import LegacyRow, LegacyServing, legacy_rows
from .modes import registry_mode

logger = logging.getLogger(__name__)


def _load(name: str) -> LoadedPlugin:
    """The plugin's code, loaded on first use; a failure is recorded on the plugin's row and
    reaches the consumer as a ``SandboxError`` (a ``BrokerUnavailableError``)."""
    try:
        return plugin_registry.load(name)
    except SandboxError as err:
        if err.code is not ReasonCode.CIRCUIT_OPEN:  # a refused retry is no news
            _record(err)
        raise
    except PluginError as err:
        _record(err)
        raise SandboxError(err.plugin, err.code, "load", err.message) from err


def _record(err: PluginError) -> None:
    from ..store import mark_failed

    logger.warning("plugin %s failed to load: %s", err.plugin, err)
    try:
        mark_failed(err)
    except Exception:  # recording must never hide the original failure
        logger.exception("could not record the failure of plugin %s", err.plugin)
    bridge.invalidate()


class LazyService:
    """Stands in the registry for a plugin's service class until first use."""

    def __init__(self, plugin: str, service_type: ServiceType) -> None:
        self.plugin = plugin
        self.service_type = service_type

    def __call__(self, **kwargs: Any) -> Any:
        service = _load(self.plugin).create_service(self.service_type, **kwargs)
        # API v2: the legacy registry serves v1; a v2 service is adapted (compat_adapters).
        from ..compat_adapters import serve_v1

        return serve_v1(service, self.service_type)

    def __repr__(self) -> str:
        return f"<LazyService {self.plugin}:{self.service_type.value}>"


class LazyConfigClass:
    """Stands in the registry for a plugin's config class until first use."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin

    def from_dict(self, data: dict[str, Any] | None) -> Any:
        loaded = _load(self.plugin)
        assert loaded.sandbox is not None
        return loaded.sandbox.run(
            "config.from_dict", loaded.config_class.from_dict, data, timeout=None
        )

    def __repr__(self) -> str:
        return f"<LazyConfigClass {self.plugin}>"


class LegacyBridge:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._applied: str | None = None
        self._checked_at = 0.0
        self._registered: dict[str, str] = {}  # broker name -> _identity(candidate)
        self._config_versions: dict[str, int] = {}
        self._types: dict[str, str] = {}
        self._hook_done: set[str] = set()
        self.legacy = LegacyServing()  # legacy brokers served as plugins (adapter.py)

    @property
    def registered(self) -> list[str]:
        return sorted(self._registered)

    def invalidate(self) -> None:
        """Refresh on the next registry read, whatever the throttle says."""
        self._applied = None
        self._checked_at = 0.0

    def refresh(self, force: bool = False) -> None:
        if settings.PLUGINS_SAFE_MODE:
            return  # no plugin is served, whoever asks (views, tasks, the CLI)
        interval = float(getattr(settings, "PLUGINS_REFRESH_INTERVAL", 0.25))
        now = time.monotonic()
        if not force and now - self._checked_at < interval:
            return
        metrics_store.flush()  # throttled on its own; never raises
        with self._lock:
            self._checked_at = now
            stamp = propagation.read()
            if stamp is None or (stamp == self._applied and not force):
                return
            mode = registry_mode()
            try:
                active = _serving_rows() if mode != "legacy" else {}
                legacy = legacy_rows() if mode != "legacy" else {}
            except Exception:
                logger.exception("could not read plugin states; keeping the current set")
                return
            self._apply(active, legacy, mode)
            self._applied = stamp

    def _apply(
        self,
        active: dict[str, Serving],
        legacy: dict[str, LegacyRow] | None = None,
        mode: str = "alongside",
    ) -> None:
        registry, factory = BrokerRegistry(), BrokerFactory()
        catalog = discover().by_name() if active else {}
        wanted: dict[str, Candidate] = {}
        for name in active:
            cand = catalog.get(name)
            if cand is not None and cand.ok:
                wanted[name] = cand
            else:
                logger.warning(
                    "plugin %s is active in the database but not found or not "
                    "valid on this host; run 'manage.py plugins sync'",
                    name,
                )
        for name in list(self._registered):
            stale = (
                name in wanted
                and _identity(wanted[name], active[name].revision) != self._registered[name]
            )
            if name not in wanted or stale:
                if self._types.pop(name, "broker") == "broker":
                    registry.unregister_broker(name)
                plugin_registry.unregister(name)
                factory.clear_cache(name)
                del self._registered[name]
                self._config_versions.pop(name, None)
        # Then the legacy brokers: after the plugins that leave (a legacy broker coming back
        # under a plugin's name, on a switch to 'legacy' or 'alongside', must not be
        # unregistered as that plugin), before the plugins that arrive (disabled legacy
        # brokers, or all in 'plugins' mode, leave first so a plugin may take the name).
        self.legacy.apply(legacy or {}, mode, set(self._registered))
        for name, cand in wanted.items():
            if name in self._registered:
                version = active[name].config_version
                if self._config_versions.get(name) != version:
                    self._config_versions[name] = version
                    self._config_changed(name)
                continue
            assert cand.manifest is not None
            is_broker = cand.manifest.type == "broker"
            if is_broker and registry.is_registered(name):
                logger.warning(
                    "plugin %s not registered: a legacy broker of that name exists", name
                )
                continue
            plugin_registry.register(cand)
            if is_broker:
                services = cand.manifest.services or dict.fromkeys(
                    cand.manifest.capabilities.services
                )
                registry.register_complete_broker(
                    name,
                    LazyConfigClass(name),
                    **{stype.value: LazyService(name, stype) for stype in services},
                )
                factory.clear_cache(name)
            self._types[name] = cand.manifest.type
            self._registered[name] = _identity(cand, active[name].revision)
            self._config_versions[name] = active[name].config_version

    def _config_changed(self, name: str) -> None:
        """A new config version is live: rebuild the plugin's services with it, and hand it
        to the loaded plugin's hook (unless this process already did, when applying it);
        a plugin that refuses it here is unloaded and re-initialised on next use."""
        BrokerFactory().clear_cache(name)
        if name in self._hook_done:
            self._hook_done.discard(name)
            return
        loaded = plugin_registry.loaded().get(name)
        if loaded is None or loaded.instance is None or loaded.sandbox is None:
            return
        try:
            from ..config.system import config_system

            box = loaded.sandbox
            config = box.run(
                "config.from_dict",
                loaded.config_class.from_dict,
                config_system.effective_flat(name),
                timeout=None,
            )
            if box.run("config_change", loaded.instance.on_config_change, config) is False:
                raise ValueError("on_config_change() returned False")
        except Exception as exc:  # re-initialise from scratch on next use instead
            logger.warning(
                "plugin %s could not take its new config in place (%s); "
                "unloading it to re-initialise",
                name,
                exc,
            )
            plugin_registry.unload(name)

    def serving(self, plugin_type: str) -> list[str]:
        """Plugins of a type this process serves now (after a cheap freshness check)."""
        self.refresh()
        return sorted(n for n, t in self._types.items() if t == plugin_type)

    def note_config_applied(self, name: str) -> None:
        """The apply task already ran the plugin's hook in this process."""
        self._hook_done.add(name)

    def config_source(self, name: str) -> dict[str, Any] | None:
        """Effective config of a plugin this bridge serves (the BrokerFactory asks)."""
        if name not in self._registered and name not in self.legacy.wrapped():
            return None
        from ..config.system import config_system

        return config_system.effective_flat(name)

    def reset(self) -> None:
        """Drop everything this bridge registered (tests, safe mode)."""
        with self._lock:
            registry = BrokerRegistry()
            for name in list(self._registered):
                if self._types.get(name, "broker") == "broker":
                    registry.unregister_broker(name)
                plugin_registry.unregister(name)
                BrokerFactory().clear_cache(name)
            self._registered.clear()
            self._config_versions.clear()
            self._types.clear()
            self._hook_done.clear()
            self.legacy.restore()
            self.invalidate()


def load_serving(plugin_type: str) -> list[tuple[str, LoadedPlugin]]:
    """Loaded instances of the plugins of a type served here; one that fails to load is
    recorded (state error) and left out."""
    out = []
    for name in bridge.serving(plugin_type):
        try:
            out.append((name, _load(name)))
        except SandboxError:
            continue
    return out


def _identity(cand: Candidate, revision: int) -> str:
    """What makes a registration stale: other manifest contents, another folder or package,
    or a reload (the row's revision)."""
    return f"{cand.fingerprint}|{cand.location}|{revision}"


@dataclass(frozen=True)
class Serving:
    revision: int
    config_version: int


def _serving_rows() -> dict[str, Serving]:
    """Plugins this process should serve: active ones, and ones in a failure that may
    pass (retried with backoff on use) — for a process-isolated plugin that includes a crash
    of its child, which is restarted."""
    from ..models import Plugin, PluginConfig
    from ..store import RETRYABLE_CODES

    retryable = [c.value for c in RETRYABLE_CODES]
    serving = (
        Q(state=PluginState.ACTIVE.value)
        | Q(state=PluginState.ERROR.value, error_code__in=retryable)
        | Q(
            state=PluginState.ERROR.value,
            error_code=ReasonCode.HEALTH_FAILED.value,
            manifest__isolation="process",
        )
    )
    live_config = PluginConfig.objects.filter(plugin=OuterRef("pk"), is_active=True).values(
        "version"
    )[:1]
    rows = (
        Plugin.objects.filter(serving, enabled=True, missing=False)
        .exclude(source="legacy")
        .annotate(config_version=Subquery(live_config))
        .values_list("name", "revision", "config_version")
    )
    return {name: Serving(rev, cv or 0) for name, rev, cv in rows}


bridge = LegacyBridge()


def _refresh_hook() -> None:
    bridge.refresh()


def install_bridge() -> None:
    """Called from ``AppConfig.ready``: warm the discovery cache (no database, no plugin
    code) and hook the bridge into the registry's reads."""
    from .. import reporting

    reporting.configure(plugin_registry)
    BrokerFactory().add_config_source(bridge.config_source)
    from ..hosting.middleware import wrap_service

    BrokerFactory().add_service_wrapper(wrap_service)
    discover()
    BrokerRegistry().add_refresh_hook(_refresh_hook)

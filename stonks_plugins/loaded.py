"""A plugin whose code is loaded in this process: the record (:class:`LoadedPlugin`), the one
way to build it (:func:`load_in_process`) and to take it down (:func:`unload_in_process`).

Two callers share this code: the registry (this process's catalog, Django side) and the child
of a process-isolated plugin (:mod:`stonks_plugins.sandbox.process.child`), so a load fails
with the same reason codes (``import_error``, ``initialize_failed``) in both modes. It sits
below both: it imports the loader, the plugin base classes, the interface tables and the
sandbox, never the registry - the child must start without the registry, Django or the
database.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stonks_overwatch.core.config import BaseConfig
from stonks_overwatch.core.service_types import ServiceType

from . import loader
from .base import BaseBrokerPlugin, BasePlugin
from .discovery.candidate import Candidate, Source
from .errors import PluginError, ReasonCode
from .interface_adapters import accepted_interfaces
from .logs import capture
from .sandbox import LeakReport, PluginSandbox, SandboxError

if TYPE_CHECKING:
    from .registry import Hooks
    from .sandbox.process import ProcessHost

logger = logging.getLogger(__name__)


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
    config: Any = None
    """The plugin's config object, built once per load or config change (the services and
    the factory get this one)."""
    logs: capture.Capture | None = None
    """What this load attached to keep the plugin's log records (none for a plugin in a
    child process: its child captures them)."""

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


def _from_dict(config_class: Any, data: dict[str, Any]) -> Any:
    return config_class.from_dict(data)  # inside the boundary: a missing from_dict is its fault


def make_config(box: PluginSandbox, config_class: Any, data: dict[str, Any] | None) -> Any:
    """The plugin's config object from its effective (flattened) config, built through its
    boundary and bounded like ``initialize`` (at load, and on each config change)."""
    return box.run(
        "config.from_dict",
        _from_dict,
        config_class,
        data or {},
        timeout=box.timeout_for("initialize"),
    )


def log_names(candidate: Candidate) -> list[str]:
    """The loggers whose records are the plugin's: its own, and the package its code
    imports under (a directory plugin's mounted package, an installed one's top-level one)."""
    names = [capture.plugin_logger(candidate.name).name]
    if candidate.source is Source.DIRECTORY:
        names.append(loader.package_prefix(candidate.name))
    elif candidate.entry_point:
        top = loader.split_ref(candidate.entry_point)[0].split(".", 1)[0]
        if capture.code_logger_allowed(top):
            names.append(top)
    return names


def _resolve_all(candidate: Candidate, refs: list[str]) -> list[Any]:
    """Import each object ``refs`` names, in order (the first failure raises)."""
    return [loader.resolve(candidate, ref) for ref in refs]


def load_in_process(
    candidate: Candidate,
    box: PluginSandbox,
    data: dict[str, Any] | None = None,
    build_config: bool = True,
) -> LoadedPlugin:
    """Import the plugin's classes, check them, build its config from ``data`` (its
    effective, flattened config; ``None`` for none) and initialise it, every step through
    ``box``. ``build_config=False`` leaves a plugin without a class of its own unconfigured
    (the test kit builds its config itself). Raises :class:`PluginError` (``import_error``,
    ``initialize_failed``, or the sandbox's ``timeout``...); the caller cleans up."""
    manifest = candidate.manifest
    assert manifest is not None
    name = candidate.name
    # Before any of its code runs: what it logs while it imports and initialises is its.
    logs = capture.attach(name, log_names(candidate))

    # Every class the manifest names, imported in one call through the boundary (one hop to
    # a bounded thread, not one per class: an enable waits for this in every process).
    config_ref = manifest.configuration.config_class or manifest.entry_points.config
    refs = [r for r in (manifest.entry_points.main, *manifest.services.values(), config_ref) if r]
    imported = (
        dict(zip(refs, box.run("import", _resolve_all, candidate, refs), strict=True))
        if refs
        else {}
    )

    instance: BasePlugin | None = None
    if manifest.entry_points.main:
        cls = imported[manifest.entry_points.main]
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
        cls = imported[ref]
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
    config_class: Any = imported[config_ref] if config_ref else BaseConfig
    if isinstance(instance, BaseBrokerPlugin):
        if services:
            instance._services = dict(services)
        else:
            services = instance.get_services()
        if config_ref:
            instance._config_class = config_class
        else:
            config_class = instance.get_config_class()
    # Built once here; the services and the factory are handed this object. A plugin
    # without a class of its own gets it built too unless the caller builds it itself (the
    # test kit, which checks the config class in detail).
    config = None
    if instance is not None or build_config:
        config = make_config(box, config_class, data)
    if instance is not None:
        instance.config = config
        ok = box.run("initialize", instance.initialize)
        if ok is False:
            warn_false_return(name, "initialize")
            raise PluginError(name, ReasonCode.INITIALIZE_FAILED, "initialize() returned False")
    return LoadedPlugin(candidate, instance, services, config_class, box, config=config, logs=logs)


_warned_false: set[tuple[str, str]] = set()


def warn_false_return(name: str, hook: str) -> None:
    """``initialize()``/``on_config_change()`` returning False still fails as it always did,
    but says nothing about why: warn (once per plugin and hook and process, in the plugin's
    log - which reaches the host's - and as a ``DeprecationWarning``) that it should raise
    instead."""
    if (name, hook) in _warned_false:
        return
    _warned_false.add((name, hook))
    message = (
        f"plugin '{name}': {hook}() returned False; return False is deprecated: raise "
        "PluginNotReady (retry later), PluginAuthFailed (credentials refused) or "
        "PluginConfigRejected (config unusable) from stonks_plugins.sdk, so the operator "
        "sees why"
    )
    warnings.warn(message, DeprecationWarning, stacklevel=2)
    capture.plugin_logger(name).warning("%s", message)  # reaches the host's log too


def unload_in_process(loaded: LoadedPlugin) -> LeakReport:
    """Let the plugin shut down (a failing shutdown is logged: it must not keep the plugin
    around), close its sandbox and forget its modules. Returns what it leaked."""
    box = loaded.sandbox
    assert box is not None
    if loaded.instance is not None:
        try:
            box.run("shutdown", loaded.instance.shutdown)
        except SandboxError as err:
            logger.warning("%s", err)
    report = box.close()
    if loaded.logs is not None:  # this load's own: a newer load of it keeps its own
        capture.detach(loaded.name, loaded.logs)
    loader.release(loaded.candidate)
    if not report.ok:
        logger.warning("plugin %s leaked on unload: %s", loaded.name, report.as_dict())
    return report

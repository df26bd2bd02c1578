"""Where the boundary's news goes: failures become events (with their traceback) and, when
they change what a plugin can do, state; recoveries bring the plugin back; load and unload
become lifecycle signals. Installed once per process into the registry's hooks."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections

from . import store
from .discovery.candidate import Candidate
from .lifecycle import signals
from .registry import Hooks, LoadedPlugin, PluginRegistry
from .sandbox import LeakReport, SandboxError

logger = logging.getLogger(__name__)
TRACEBACK_LIMIT = 8000


def on_failure(err: SandboxError) -> None:
    """Every failure is an event with its traceback; a failure that opened the circuit also
    puts the plugin in ``circuit_open`` (a load failure is recorded by the bridge)."""
    details = err.as_dict()
    details["traceback"] = details["traceback"][-TRACEBACK_LIMIT:]
    details["stack"] = details["stack"][-TRACEBACK_LIMIT:]
    store.record_failure(err.plugin, f"{err.operation} failed: {err.message}", details)
    signals.emit(signals.plugin_failed, PluginRegistry, name=err.plugin, error=err, code=err.code)
    if err.tripped:
        store.mark_failed(err)


def on_recover(name: str, operation: str) -> None:
    store.recover(name, f"recovered: {operation} succeeded after earlier failures")


def worker_exit() -> None:
    # Bounded calls run in their own thread; its database connection would otherwise leak.
    connections.close_all()


def before_load(candidate: Candidate) -> None:
    signals.emit(
        signals.plugin_before_load, PluginRegistry, name=candidate.name, candidate=candidate
    )


def loaded(plugin: LoadedPlugin) -> None:
    signals.emit(signals.plugin_loaded, PluginRegistry, name=plugin.name, plugin=plugin)


def before_unload(plugin: LoadedPlugin) -> None:
    signals.emit(signals.plugin_before_unload, PluginRegistry, name=plugin.name, plugin=plugin)


def unloaded(name: str, report: LeakReport) -> None:
    leaks = {} if report.ok else report.as_dict()
    if leaks:
        try:
            store.record_failure(name, f"leaked resources on unload: {leaks}", {"leaks": leaks})
        except Exception:  # unloading happens in odd places (shutdown, tests); never fail it
            logger.exception("could not record the leaks of plugin %s", name)
    signals.emit(signals.plugin_unloaded, PluginRegistry, name=name, leaks=leaks)


def _config_provider(name: str) -> dict[str, object] | None:
    from .config.system import config_system

    try:
        return config_system.effective_flat(name)
    except Exception:  # no row (tests, a plugin not synced yet): the class defaults apply
        logger.debug("no stored config for plugin %s", name, exc_info=True)
        return None


def configure(registry: PluginRegistry) -> None:
    registry.hooks = Hooks(
        on_failure=on_failure,
        on_recover=on_recover,
        worker_exit=worker_exit,
        before_load=before_load,
        loaded=loaded,
        before_unload=before_unload,
        unloaded=unloaded,
        config_provider=_config_provider,
        on_crash=store.mark_failed,
        process_limits=dict(getattr(settings, "PLUGINS_PROCESS_LIMITS", {})),
        timeouts=dict(getattr(settings, "PLUGINS_TIMEOUTS", {})),
        circuit_threshold=int(getattr(settings, "PLUGINS_CIRCUIT_THRESHOLD", 5)),
        backoff_base=float(getattr(settings, "PLUGINS_BACKOFF_BASE", 1.0)),
        backoff_max=float(getattr(settings, "PLUGINS_BACKOFF_MAX", 300.0)),
    )

"""Where the boundary's news goes: failures become events (with their traceback) and, when
they change what a plugin can do, state; recoveries bring the plugin back; load and unload
become lifecycle signals. Installed once per process into the registry's hooks.

News found on a thread that runs plugin code for someone else (a lane, a load), or in a
request of a process whose background runtime writes for it, is posted to the runtime's
outbox instead of written: those threads never write to the database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.signals import setting_changed
from django.db import connections

from . import store
from .conf import plugin_settings
from .discovery.candidate import Candidate
from .errors import OPERATOR_CODES
from .lifecycle import signals
from .registry import Hooks, LoadedPlugin, PluginRegistry
from .runtime import budget, outbox, repeats
from .runtime.threads import in_plugin_thread
from .sandbox import LeakReport, SandboxError

logger = logging.getLogger(__name__)
TRACEBACK_LIMIT = 8000


def deliver(what: str, write: Callable[[], None]) -> None:
    """Write now, or post to the outbox where this thread must not write."""
    if in_plugin_thread() or (outbox.in_background() and budget.current() is not None):
        outbox.post(what, write)
    else:
        write()


def on_failure(err: SandboxError) -> None:
    """A failure is an event with its traceback; a failure that opened the circuit also
    puts the plugin in ``circuit_open``, and a service call that failed for a reason only the
    operator can fix (the plugin raised ``PluginAuthFailed`` or ``PluginConfigRejected``)
    puts it in error with that code at once. A load failure is recorded by the runtime, a
    health check's by the check. What repeats the last failure this process reported for the
    plugin is not recorded again: a load failure of a background retry (the runtime logs
    load failures), or a call failing as the one before it did with no answer between
    (:func:`_repeats_its_streak`). The signal is sent for every failure."""
    if repeats.during_load(err.plugin):
        # The runtime logs a failed load itself, once per kind (loads._post_failure).
        if repeats.first_time("event", err):
            _record_failure(err)
    elif _repeats_its_streak(err):
        logger.debug("%s (as the call before it; not recorded again)", err)
    else:
        logger.warning("%s", err)
        _record_failure(err)
    signals.emit(signals.plugin_failed, PluginRegistry, name=err.plugin, error=err, code=err.code)


def _repeats_its_streak(err: SandboxError) -> bool:
    """Did a call fail as the call before it did, with no answer between (the circuit's count
    of failures in a row says there was none)? A broker failing on every page was an event
    with its traceback on every page, in every process, until its circuit opened. The
    failure that opens the circuit, and one only an operator can fix, change the plugin's
    state: always news. A failed trial of the open circuit re-opens it and changes nothing
    the first opening did not say: when it fails as the streak did, it is a repeat too (each
    was a warning, an event and a state write, at every trial of every process)."""
    if err.code in OPERATOR_CODES or _configured is None:
        return False
    circuit = _configured.sandbox(err.plugin).circuit
    if err.tripped:
        reopened = circuit.opens > 1
        return reopened and not repeats.first_time("call", err)
    first = repeats.first_time("call", err)  # remembered either way: the streak's failure
    return circuit.failures > 1 and not first


def _record_failure(err: SandboxError) -> None:
    details = err.as_dict()
    details["traceback"] = details["traceback"][-TRACEBACK_LIMIT:]
    details["stack"] = details["stack"][-TRACEBACK_LIMIT:]
    needs_operator = err.service and err.code in OPERATOR_CODES

    def write() -> None:
        store.record_failure(err.plugin, f"{err.operation} failed: {err.message}", details)
        if err.tripped or needs_operator:
            store.mark_failed(err)

    deliver(f"a failure of plugin {err.plugin}", write)


def on_recover(name: str, operation: str) -> None:
    deliver(
        f"the recovery of plugin {name}",
        lambda: store.recover(name, f"recovered: {operation} succeeded after earlier failures"),
    )


def on_crash(err: SandboxError) -> None:
    deliver(f"the crash of plugin {err.plugin}", lambda: store.mark_failed(err))


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

        def write() -> None:
            try:
                store.record_failure(name, f"leaked resources on unload: {leaks}", {"leaks": leaks})
            except Exception:  # unloading happens in odd places (shutdown, tests)
                logger.exception("could not record the leaks of plugin %s", name)

        deliver(f"the leaks of plugin {name}", write)
    signals.emit(signals.plugin_unloaded, PluginRegistry, name=name, leaks=leaks)


def _config_provider(name: str) -> dict[str, object] | None:
    from .config.system import config_system

    try:
        return config_system.effective_flat(name)
    except Exception:  # no row (tests, a plugin not synced yet): the class defaults apply
        logger.debug("no stored config for plugin %s", name, exc_info=True)
        return None


_configured: PluginRegistry | None = None


def configure(registry: PluginRegistry) -> None:
    global _configured
    _configured = registry
    registry.hooks = Hooks(
        on_failure=on_failure,
        on_recover=on_recover,
        worker_exit=worker_exit,
        before_load=before_load,
        loaded=loaded,
        before_unload=before_unload,
        unloaded=unloaded,
        config_provider=_config_provider,
        on_crash=on_crash,
        process_limits=dict(plugin_settings.PROCESS_LIMITS),
        timeouts=dict(plugin_settings.TIMEOUTS),
        circuit_threshold=int(plugin_settings.CIRCUIT_THRESHOLD),
        backoff_base=float(plugin_settings.BACKOFF_BASE),
        backoff_max=float(plugin_settings.BACKOFF_MAX),
        load_retry_base=float(plugin_settings.LOAD_RETRY_BASE),
    )


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    """The hooks copy the limits a sandbox is made with: a changed ``PLUGINS_*`` setting
    (``override_settings``, pytest-django's ``settings``) reaches the next load at once,
    without a second call of :func:`configure` that a test could forget - its plugin would
    then hang for the limit the test meant to lift (0.5 s, not 60)."""
    if setting.startswith("PLUGINS_") and _configured is not None:
        plugin_settings.forget()  # whichever receiver runs first
        configure(_configured)


setting_changed.connect(_setting_changed, dispatch_uid="stonks_plugins.reporting")

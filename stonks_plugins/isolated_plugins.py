"""Process-isolated plugins in the registry: a ``ProcessHost`` stands where the imported code
would be, and each service is a forwarder whose calls cross the pipe.

A crash of the child (exit, signal, memory, CPU, timeout) is reported — an event with the
crash's traceback and the plugin in error — and the child is restarted with backoff by the
next call; the first call that succeeds after a crash brings the plugin back to active.
Every failure reaches the caller as a ``SandboxError`` (the process family derives from it),
like in-process plugins.

Which plugins run in a child is decided in one place, :func:`runs_isolated`: those whose
manifest asks for it, and - with ``PLUGINS_ISOLATE_UNTRUSTED`` - every plugin not signed by a
trusted key. A child holds its plugin to the manifest's ``permissions``
(:mod:`stonks_plugins.sandbox.permissions`); what it refuses reaches the host as a failure
with the reason ``permission_denied``: a failed load (the plugin ends in error) or a failed
call, recorded as an event like any other failure (``Hooks.on_failure``).

A service stands in the registry as an instance of the interface its class implements in the
child - v1 or v2 (see ``ProcessHost.service_interface``) - so the version adapters treat it
like an in-process service: the legacy pages get v1 records through ``serve_v1``, a v2
consumer gets the plugin's own v2 records.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from stonks_overwatch.core.service_types import ServiceType

from .conf import plugin_settings
from .discovery.candidate import Candidate
from .sandbox import PluginSandbox
from .sandbox.process import (
    ProcessCircuitOpen,
    ProcessCrashed,
    ProcessHost,
    ProcessIsolationError,
    implementing,
)
from .trust import gate, verdict

if TYPE_CHECKING:
    from .registry import Hooks, LoadedPlugin


class ForwardedConfig:
    """Config object of a process-isolated plugin: its real config class lives in the child,
    so the host keeps every key and forwards them as a dict."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ForwardedConfig:
        return cls(data)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None


def runs_isolated(candidate: Candidate) -> bool:
    """Whether the plugin runs in a child process: its manifest says ``"isolation":
    "process"``, or ``PLUGINS_ISOLATE_UNTRUSTED`` is on and the plugin is not signed by a
    trusted key (``stonks_plugins.trust.verdict``), whatever its manifest says."""
    manifest = candidate.manifest
    if manifest is not None and manifest.isolation == "process":
        return True
    try:
        isolate_untrusted = bool(plugin_settings.ISOLATE_UNTRUSTED)
    except ImproperlyConfigured:  # a registry without Django settings (the benchmarks)
        return False
    if not isolate_untrusted:
        return False
    return not verdict(candidate).trusted


def database_files(databases: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[str, ...]:
    """The SQLite database files (and their journals) of ``databases`` (default: the host's
    ``DATABASES``): a plugin process may never open them, whatever its manifest declares."""
    if databases is None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        try:
            databases = dict(settings.DATABASES)
        except ImproperlyConfigured:  # no Django settings (the benchmarks): none to protect
            return ()
    found: list[str] = []
    for db in databases.values():
        name = db.get("NAME") if "sqlite" in str(db.get("ENGINE", "")) else None
        if not name or str(name) == ":memory:" or str(name).startswith("file:"):
            continue
        path = os.path.abspath(os.fspath(name))
        found += [path + suffix for suffix in ("", "-journal", "-wal", "-shm")]
    return tuple(found)


def start_host(candidate: Candidate, hooks: Hooks) -> ProcessHost:
    # The child verifies the plugin's files itself, but has no settings: the signature
    # policy is applied here, before a child is started for the plugin.
    gate.before_import(candidate)
    limits = hooks.process_limits
    host = ProcessHost(
        candidate,
        memory_mb=int(limits.get("memory_mb", 512)),
        cpu_seconds=int(limits.get("cpu_seconds", 60)),
        call_timeout=float(limits.get("call_timeout", 30.0)),
        start_timeout=float(limits.get("start_timeout", 20.0)),
        base_delay=hooks.backoff_base,
        max_delay=hooks.backoff_max,
        deny_paths=database_files(),
    )
    try:
        host.start()
    except ProcessIsolationError:  # a SandboxError already, with the child's code
        host.close()
        raise
    return host


class IsolatedService:
    """Forwards a service's methods to the child, reporting crashes and recoveries.

    Used through :func:`isolated_class`: a subclass that is also the interface the plugin's
    class implements (``implementing``, as the proxy is), so ``isinstance`` against
    ``PortfolioServiceV2`` or ``PortfolioServiceInterface`` tells the adapters what they
    hold, as it does for an in-process service.
    """

    interface: ClassVar[type | None] = None

    def __init__(
        self, loaded: LoadedPlugin, service_type: ServiceType, proxy: Any, hooks: Hooks
    ) -> None:
        self._loaded = loaded
        self._prefix = service_type.value
        self._proxy = proxy
        self._hooks = hooks
        self.config = getattr(proxy, "config", None)

    @property
    def import_report(self) -> dict[str, Any] | None:
        """The service's import report, read from the child's instance as plain data (the
        plugin's report object never crosses); None when it keeps none."""
        host = self._loaded.host
        assert host is not None
        operation = f"{self._prefix}.import_report"
        read = functools.partial(host.import_report, self._prefix, self.config)
        report: dict[str, Any] | None = self._call(operation, read, (), {})
        return report

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        target = getattr(self._proxy, name)
        operation = f"{self._prefix}.{name}"

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(operation, target, args, kwargs)

        return call

    def _call(
        self,
        operation: str,
        target: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        box: PluginSandbox = self._loaded.sandbox  # type: ignore[assignment]
        stats = box.metrics.stats(operation)
        stats.calls += 1
        start = time.perf_counter_ns()
        try:
            result = target(*args, **kwargs)
        except ProcessIsolationError as exc:
            stats.errors += 1
            stats.observe(time.perf_counter_ns() - start)
            self._failed(exc)
            raise
        stats.observe(time.perf_counter_ns() - start)
        if self._loaded.crashed:
            self._loaded.crashed = False
            if self._hooks.on_recover:
                self._hooks.on_recover(self._loaded.name, "call after a restart of its process")
        return result

    def _failed(self, exc: ProcessIsolationError) -> None:
        """Route the failure to the hooks (the error itself is what the caller gets)."""
        if isinstance(exc, ProcessCircuitOpen):
            return  # waiting out the backoff: no news
        exc.service = True  # a service call's failure, as on the in-process fast path
        if self._hooks.on_failure:
            self._hooks.on_failure(exc)
        if isinstance(exc, ProcessCrashed):
            self._loaded.crashed = True
            if self._hooks.on_crash:
                self._hooks.on_crash(exc)


def isolated_class(interface: type) -> type[IsolatedService]:
    """The class standing, in the host, for a process-isolated service of ``interface``."""
    cls: type[IsolatedService] = implementing(IsolatedService, interface, _forwarding)
    return cls


def _forwarding(name: str) -> Callable[..., Any]:
    def method(self: IsolatedService, *args: Any, **kwargs: Any) -> Any:
        return self._call(f"{self._prefix}.{name}", getattr(self._proxy, name), args, kwargs)

    method.__name__ = name
    return method

"""The host side of one process-isolated plugin: what the registry and the runtime call.

Why a child process: the in-process boundary can catch exceptions and abandon a slow call, but
it cannot survive ``os._exit``, a segfault in a C extension, a memory hog that takes the worker
down with it, or an endless loop holding the GIL. A child under resource limits can: it dies
alone, the host reports why, and the plugin gets a fresh process later.

One pipe, one call at a time per plugin, under a lock, so concurrent request threads never
interleave on it; waiting for the lock is bounded too (``call_timeout`` plus
``start_timeout``), so a caller is never held hostage by another caller's stuck call. Config
crosses as a plain dict; the child builds the service instance from it and keeps it, and the
host sends a config again only when it changed, so a proxy that passes its config on every
call costs a dict comparison, not a rebuild.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from typing import Any, ClassVar

from stonks_overwatch.core.service_types import ServiceType

from ...discovery.candidate import Candidate
from ...errors import ReasonCode
from ...health import HealthStatus
from ...versioning import InterfaceVersion
from .backoff import RESTART_PENDING, Backoff
from .errors import ProcessCallError, ProcessCircuitOpen
from .exits import CrashRecord
from .proxies import ServiceProxy, forwarder, implementing
from .supervisor import Supervisor
from .wire import OP_CALL, OP_HEALTH, OP_METRICS, OP_PING, OP_REPORT, Limits

Config = dict[str, Any] | Any | None
"""A config as callers pass it: a dict, an object with ``to_dict()``, or None (keep the
child's instance)."""


class ProcessHost:
    """Runs one plugin in a child process and forwards calls to it. Thread-safe.

    The host's own PID never changes; a crashed child is replaced by a new one (a new
    ``pid``) after the backoff. Other hosts share nothing with this one.
    """

    background_restarts: ClassVar[bool] = False
    """Set while this process runs the serving runtime's background thread: a crashed child
    is then restarted by that thread (:meth:`revive`) once its backoff is over, never by a
    call - a call is a user's page, which must not wait for an interpreter to start."""

    def __init__(
        self,
        candidate: Candidate,
        *,
        memory_mb: int = 512,
        cpu_seconds: int = 60,
        call_timeout: float = 30.0,
        start_timeout: float = 20.0,
        shutdown_grace: float = 5.0,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        jitter: float = 0.2,
        max_restarts: int | None = None,
        crash_history: int = 20,
        deny_paths: tuple[str, ...] = (),
    ) -> None:
        if candidate.manifest is None or candidate.problem is not None:
            reason = candidate.problem.message if candidate.problem else "no manifest"
            raise ValueError(f"plugin '{candidate.name}' cannot run: {reason}")
        self.candidate = candidate
        self.name = candidate.name
        self.limits = Limits(memory_mb=memory_mb, cpu_seconds=cpu_seconds)
        self._child = Supervisor(
            candidate,
            limits=self.limits,
            call_timeout=call_timeout,
            start_timeout=start_timeout,
            shutdown_grace=shutdown_grace,
            deny_paths=tuple(deny_paths),
            backoff=Backoff(
                base_delay=base_delay,
                max_delay=max_delay,
                jitter=jitter,
                max_restarts=max_restarts,
                history=crash_history,
            ),
        )
        self._lock = threading.Lock()
        self._busy_after = call_timeout + start_timeout
        self._restarting = False
        """The background runtime is restarting the child (:meth:`revive`, under the lock)."""
        _track(self)

    # -- introspection -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the current child, or None when none runs."""
        return self._child.pid

    @property
    def alive(self) -> bool:
        channel = self._child.channel
        return channel is not None and channel.alive

    @property
    def restarts(self) -> int:
        """How many times a child was started after the first one."""
        return max(0, self._child.starts - 1)

    @property
    def calls(self) -> int:
        return self._child.calls

    @property
    def errors(self) -> int:
        return self._child.errors

    @property
    def interface_versions(self) -> dict[str, str]:
        """Service type -> version of the interface the plugin's class implements
        (``{"portfolio": "2.0.0"}``), as the child reported when it last started; empty
        before the first start."""
        return dict(self._child.interfaces)

    @property
    def crashes(self) -> list[CrashRecord]:
        """The most recent crashes, oldest first (bounded by ``crash_history``)."""
        return list(self._child.backoff.history)

    @property
    def revivable(self) -> bool:
        """The child crashed, its backoff is over, and it may be restarted now."""
        child = self._child
        return not child.closed and child.channel is None and child.backoff.due()

    @property
    def restart_in(self) -> float | None:
        """Seconds until the background runtime may restart a crashed child (0: now, or a
        restart runs); None when none is to come (a child runs, never crashed, the host is
        closed, or it gave up)."""
        child = self._child
        if self._restarting:
            return 0.0
        backoff = child.backoff
        if child.closed or child.channel is not None or backoff.failures == 0 or backoff.gave_up:
            return None
        return self.retry_in

    @property
    def retry_in(self) -> float:
        """Seconds until a crashed child may be restarted (0 when it may be now)."""
        return max(0.0, self._child.backoff.wait()) if self._child.channel is None else 0.0

    def status(self) -> dict[str, Any]:
        """A JSON-able summary for metrics, health details and events."""
        return {
            "pid": self.pid,
            "alive": self.alive,
            "restarts": self.restarts,
            "consecutive_crashes": self._child.backoff.failures,
            "retry_in": round(self.retry_in, 3),
            "calls": self.calls,
            "errors": self.errors,
            "closed": self._child.closed,
            "limits": asdict(self.limits),
            "recent_crashes": [c.as_dict() for c in self._child.backoff.history],
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> int:
        """Start the child now (ignoring any backoff, and re-opening a closed host); returns
        its PID. Raises :class:`ProcessCrashed` when the plugin cannot start."""
        with self._locked("start"):
            self._child.closed = False
            self._child.backoff.reset()
            if self._child.channel is None:
                self._child.spawn()
            pid = self._child.pid
            assert pid is not None
            return pid

    def revive(self) -> int | None:
        """Restart a crashed child whose backoff is over (the background runtime's job; see
        :attr:`background_restarts`); its PID, or None when there was nothing to do. A child
        that fails to start is a crash like any other: recorded, with a longer backoff."""
        self._restarting = True
        try:
            with self._locked("restart"):
                if not self.revivable:
                    return None
                self._child.spawn()
                return self._child.pid
        finally:
            self._restarting = False

    def cancel(self, reason: str) -> bool:
        """Stop the call the child is running by killing the child (the only way to stop a
        runaway call): the caller gets a ``timeout`` naming ``reason``, and the child is
        restarted with backoff. Safe from another thread; False when no child runs."""
        return self._child.cancel(reason)

    def demote(self) -> None:
        """Its caller gave up on the call the child runs: until the child answers again it
        runs only on idle CPU (``SCHED_IDLE``), so what it still does costs no page. Safe
        from another thread."""
        self._child.demote()

    def close(self, grace: float | None = None) -> None:
        """Ask the child to shut down (the plugin's ``shutdown`` hook runs), then terminate
        and kill it if it does not exit within ``grace`` seconds. Idempotent."""
        grace = self._child.shutdown_grace if grace is None else grace
        self._child.closed = True
        got = self._lock.acquire(timeout=grace)
        try:
            if not got:
                # A call is stuck in the child: end it; that call sees EOF and lets go.
                self._child.kill()
                self._lock.acquire()
            self._child.stop(grace)
        finally:
            self._lock.release()
        self._child.crash_log.remove()

    def __enter__(self) -> ProcessHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------------

    def call(
        self,
        service_type: ServiceType | str,
        method: str,
        *args: Any,
        config: Config = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``method`` on the plugin's ``service_type`` service in the child.

        ``config`` (a dict, or an object with ``to_dict()``) is what the service instance is
        built with; ``None`` keeps the instance the child has (built with defaults if none).
        """
        stype: str = service_type.value if isinstance(service_type, ServiceType) else service_type
        return self._on_service(
            stype,
            f"{stype}.{method}",
            config,
            lambda sent: (OP_CALL, stype, method, args, kwargs, sent),
        )

    def import_report(
        self, service_type: ServiceType | str, config: Config = None
    ) -> dict[str, Any] | None:
        """The ``import_report`` of the plugin's ``service_type`` service in the child - the
        instance :meth:`call` uses, so it holds what the last calls read - as plain data made
        in the child (``stonks_plugins.import_report.plain``); None when it keeps none."""
        stype: str = service_type.value if isinstance(service_type, ServiceType) else service_type
        report: dict[str, Any] | None = self._on_service(
            stype, f"{stype}.import_report", config, lambda sent: (OP_REPORT, stype, sent)
        )
        return report

    def _on_service(
        self,
        stype: str,
        operation: str,
        config: Config,
        request: Callable[[dict[str, Any] | None], tuple[Any, ...]],
    ) -> Any:
        """Send ``request(config to send)`` about the ``stype`` service instance; the config
        goes along only when it differs from what that instance was built with."""
        if config is not None and not isinstance(config, dict):
            config = config.to_dict()
        with self._locked(operation):
            sent = self._child.ensure(operation, self.background_restarts).sent_config
            send_config: dict[str, Any] | None = None
            if config is not None and (stype not in sent or sent[stype] != config):
                send_config = dict(config)
            try:
                result = self._child.request(request(send_config), operation)
            except ProcessCallError:
                sent.pop(stype, None)  # the instance may not have been built
                raise
            if send_config is not None:
                sent[stype] = send_config
            return result

    def health_check(self, timeout: float | None = None) -> HealthStatus:
        """The plugin's own ``health_check`` in the child, with the process's status in its
        details. A crash, a timeout (``timeout``, default ``call_timeout``) or the backoff
        raises like :meth:`call` does."""
        with self._locked("health_check"):
            self._child.ensure("health_check", self.background_restarts)
            status = self._child.request((OP_HEALTH,), "health_check", timeout)
            pid = self.pid
        if not isinstance(status, HealthStatus):
            return HealthStatus.unhealthy(
                f"health_check() returned {type(status).__name__}, not a HealthStatus",
                process={"pid": pid, "restarts": self.restarts},
            )
        details = {**status.details, "process": {"pid": pid, "restarts": self.restarts}}
        return replace(status, details=details)

    def metrics(self) -> dict[str, Any]:
        """The plugin's ``get_metrics()``, the child's peak RSS and CPU time, and the host's
        counters (calls, errors, restarts, recent crashes)."""
        with self._locked("metrics"):
            self._child.ensure("metrics", self.background_restarts)
            data: dict[str, Any] = self._child.request((OP_METRICS,), "metrics")
        data["host"] = self.status()
        return data

    def ping(self) -> int:
        """A no-op round trip (returns the child's PID): the cheapest liveness check."""
        with self._locked("ping"):
            self._child.ensure("ping", self.background_restarts)
            pid: int = self._child.request((OP_PING,), "ping")
            return pid

    def service_proxy(self, service_type: ServiceType | str, config: Config = None) -> ServiceProxy:
        """An object that stands for the plugin's service: an instance of the interface its
        class implements (:meth:`service_interface`; ``isinstance`` checks pass) whose
        methods run in the child."""
        stype = ServiceType(service_type)
        proxy: type[ServiceProxy] = implementing(
            ServiceProxy, self.service_interface(stype), forwarder
        )
        return proxy(self, stype, config)

    def service_interface(self, service_type: ServiceType | str) -> type:
        """The interface the plugin's ``service_type`` class implements: its v2 interface
        when the class implements v2, else the v1 one. The child's word (sent when it
        starts) decides, so a host that never ran its child starts it first."""
        from ...interface_adapters import VERSIONS, accepted_interfaces

        stype = ServiceType(service_type)
        pair = VERSIONS.get(stype)
        if pair is None:
            return accepted_interfaces(stype)[0]  # v1-only
        if not self._child.interfaces:
            with self._locked("start"):
                self._child.ensure("start", self.background_restarts)
        reported = self._child.interfaces.get(stype.value)
        major = InterfaceVersion.parse(reported).major if reported is not None else 1
        return pair.v2 if major == 2 else pair.v1

    @contextlib.contextmanager
    def _locked(self, operation: str) -> Iterator[None]:
        """The pipe's lock, waited for no longer than another call may legitimately hold it -
        and not at all while the background runtime restarts the child: a call is a page's,
        which must not wait for an interpreter to start."""
        if self._restarting and operation not in ("start", "restart"):
            raise ProcessCircuitOpen(
                self.name,
                "its process is being restarted in the background",
                operation=operation,
                retry_in=RESTART_PENDING,
            )
        if not self._lock.acquire(timeout=self._busy_after + 1.0):
            raise ProcessCallError(
                self.name,
                ReasonCode.TIMEOUT,
                f"{operation}: the plugin's process was busy with another call for more "
                f"than {self._busy_after:.0f} s",
                operation=operation,
                cause="busy",
            )
        try:
            yield
        finally:
            self._lock.release()

    def _forget_inherited(self) -> None:
        """In a forked copy of the host: the child and pipe belong to the parent, and the
        lock may have been held by one of its threads."""
        self._lock = threading.Lock()
        self._restarting = False
        self._child.forget()


# -- forked copies of the host process -----------------------------------------------------------

_hosts: weakref.WeakSet[ProcessHost] = weakref.WeakSet()
_tracking = threading.Lock()
_fork_hook_registered = False


def _track(host: ProcessHost) -> None:
    """Remember ``host`` for a fork; the first host registers the fork hook."""
    global _fork_hook_registered
    with _tracking:
        if not _fork_hook_registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_registered = True
        _hosts.add(host)


def _after_fork_in_child() -> None:
    """A forked copy of the host process (gunicorn --preload, Celery prefork) must not share
    its parent's pipes or wait on locks held by its parent's threads: it starts afresh."""
    for host in list(_hosts):
        host._forget_inherited()

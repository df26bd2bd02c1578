"""Process isolation: a plugin whose manifest says ``"isolation": "process"`` runs in a child.

Why a child process: the in-process boundary can catch exceptions and abandon a slow call,
but it cannot survive ``os._exit``, a segfault in a C extension, a memory hog that takes the
worker down with it, or an endless loop holding the GIL. A child process under resource
limits can: it dies alone, the host reports why, and the plugin gets a fresh process later.

The parts
---------
- :class:`ProcessHost` (this module) owns one child per plugin: ``start``, ``call``,
  ``health_check``, ``metrics``, ``import_report``, ``service_proxy``, ``close``; ``pid``,
  ``alive``, ``restarts``, ``crashes``, ``interface_versions`` and ``status()`` for events and
  metrics.
- :func:`stonks_plugins.sandbox.child.serve` is the child: limits, the same loading code
  path as in-process (``PluginRegistry.register`` + ``load``), then a request loop.

Decisions, and why
------------------
- **spawn**, never fork: the host is a threaded web or Celery worker, and a forked child
  inherits locks held by other threads (logging, the import lock, DB drivers) in their locked
  state. Spawn costs a fresh interpreter (~0.2-0.4 s to ready, paid once per start).
  ``daemon=True`` so the children die with the host; the price is that plugin code cannot
  itself use ``multiprocessing`` children (``subprocess`` is fine).
- **One pipe, one call at a time** per plugin, under a lock: concurrent request threads
  never interleave on the pipe. Waiting for the lock is bounded too (``call_timeout`` plus
  ``start_timeout``): a caller is never held hostage by another caller's stuck call.
- **Framing**: ``Connection.send_bytes``/``recv_bytes`` with ``pickle`` at the highest
  protocol and a ``select.poll`` object per child for the deadline. Measured on the dev box
  (2 vCPU EPYC), a call returning three ``PortfolioEntry`` costs ~30 us p50 this way against
  ~35 us with ``send``/``recv`` + ``Connection.poll`` (which builds a selector per call); see
  ``benchmarks/bench_process.py``. Target: <= 100 us p50.
- **Results are unpickled with an allowlist** (the SDK's data classes - v1's and v2's
  ``Money``, ``PortfolioEntryV2``... -, ``HealthStatus``, builtin containers, ``datetime``,
  ``Decimal``...): a plugin that returns an object of its own class would otherwise make the
  host import the plugin's modules - the very thing the isolation is for. Such a result fails
  that call with a :class:`ProcessCallError` that says to return the SDK's data classes.
  Exceptions cross as text (type name, message, traceback), for the same reason. Pickle
  rebuilds a ``Decimal`` from its text, so ``Decimal("0.10")`` arrives as ``"0.10"``, not
  ``0.1``: v2 money keeps its exactness across the boundary.
- **Interface versions**: a service class may implement v1 or v2 of its interface
  (:mod:`stonks_plugins.interfaces_v2`). Only the child can look at the class, so its
  ``ready`` message says which version each service implements, and
  :meth:`ProcessHost.service_proxy` builds the proxy as a subclass of *that* interface. The
  registry's version adapters (``serve_v1``, ``get_service_v2``) recognise services by
  ``isinstance``, so a v2 plugin in a child is adapted for the v1 pages exactly like one
  in-process, and a v2 consumer gets its records natively.
- **Config** crosses as a plain dict; the child builds ``config_class.from_dict(data)`` and
  caches one service instance per service type. The host remembers the last config it sent
  per service type and sends it again only when it changes, so a proxy that passes its config
  on every call costs a dict comparison, not a rebuild.
- **Permissions**: the child starts with the environment its manifest's ``permissions``
  allow (``permissions.child_environment``: what Python needs and the declared ``env:``
  variables, never the project's secrets), not a copy of the host's: multiprocessing has no
  way to pass one, so :func:`_install_env_hook` gives it to the ``fork_exec`` call that starts
  our children. In the child an audit hook refuses what the permissions do not allow
  (:mod:`.permissions`); a refused load or call fails with ``permission_denied``.
- **Limits**: ``memory_mb`` is applied as ``RLIMIT_DATA`` on Linux >= 4.7, not ``RLIMIT_AS``:
  measured, ``RLIMIT_AS`` = 200 MB stops a child from starting 16 threads (stack and malloc
  arena *reservations* count as address space), while ``RLIMIT_DATA`` counts memory the plugin
  can actually write and still stops a hog at ~192 MB (``child.memory_resource``; ``RLIMIT_AS``
  elsewhere). A hog's allocation fails with ``MemoryError`` inside the child, which reports it
  and exits (its state after a failed allocation cannot be trusted); a hog the kernel's OOM
  killer gets first is reported as SIGKILL. ``RLIMIT_CPU`` is a lifetime counter in the kernel;
  the child re-arms it before every request, so ``cpu_seconds`` is a budget *per call* and a
  busy, long-lived plugin is not killed for its total. A CPU hog dies of SIGXCPU. The wall-clock
  ``call_timeout`` catches what CPU limits cannot (sleeping, blocking I/O, a loop shorter than
  the CPU budget but longer than the caller can wait): the host sends SIGUSR1 (faulthandler
  dumps every thread's stack to the crash log, so the report says where it was stuck), then
  kills the child.
- **Crash reports** say what happened: the exit status, the signal's name (SIGSEGV,
  SIGXCPU, SIGKILL...), ``MemoryError`` with the limit, or the timeout, plus the operation
  that was running and, when faulthandler caught it, the Python stack of the crash.
- **Restart with backoff**: after a crash the child is not restarted at once. The next call
  after ``base_delay * 2**(n-1)`` (capped at ``max_delay``, +/- ``jitter``) starts a fresh
  one; calls before that fail fast with ``circuit_open`` and the remaining wait. ``n`` counts
  consecutive crashes and goes back to 0 when a call completes (even one where the plugin
  raised: the process was fine). ``max_restarts`` (default: no limit, as Home Assistant's
  setup retry) gives up after that many consecutive crashes until ``start()`` is called.
  Restarts are lazy - no thread, no timer - so a plugin nobody uses costs nothing; in a
  process that runs the serving runtime (:attr:`ProcessHost.background_restarts`) its
  background thread restarts the child instead (:meth:`ProcessHost.revive`), so a call - a
  user's page - never waits for an interpreter to start.

Reason codes (``.code`` on every exception here, a :class:`~stonks_plugins.errors.ReasonCode`)
---------------------------------------------------------------------------------------------
====================================================  ===================================
what happened                                         code
====================================================  ===================================
the plugin failed to load in the child                its own: ``import_error`` or
                                                      ``initialize_failed`` (as in-process)
the child died or ran out of memory while starting    ``initialize_failed``
the child did not get ready within ``start_timeout``  ``timeout``
a call or health check overran ``call_timeout``       ``timeout`` (:class:`ProcessTimeout`)
the child died during a call (exit, signal, memory)   ``health_failed`` - the stable list has
                                                      no "crashed" code; a dead process is
                                                      the plainest failed health check
a call during the backoff, or on a closed host        ``circuit_open``
the plugin did what its permissions do not allow      ``permission_denied``
the plugin's code raised; the child lives on          ``health_failed`` for a health check,
                                                      else the code a ``PluginError`` raised
                                                      in the child carries, else
                                                      ``health_failed`` (see
                                                      :class:`ProcessCallError`)
====================================================  ===================================

Every exception is a ``SandboxError`` (:class:`ProcessIsolationError`), the type callers of
an in-process plugin see: a ``BrokerUnavailableError`` (aggregators skip the broker and
render the rest) carrying ``plugin``, ``code``, ``operation``, ``message`` and
``traceback``, so one ``except`` and one mapping serve both modes. What a plugin raises to
say why it cannot run (``PluginNotReady``, ``PluginAuthFailed``, ``PluginConfigRejected``)
crosses as its code (``not_ready``, ``auth_failed``, ``config_invalid``). ``cause`` is a
short tag for events: ``exit``, ``signal``, ``memory``, ``cpu``, ``timeout``, ``load``,
``raised``, ``backoff``, ``closed``, ``busy``, ``transfer``.

Nothing here imports Django: the child must start without settings.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import multiprocessing
import os
import pickle
import random
import re
import select
import signal
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, is_dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, NoReturn

from stonks_overwatch.core.service_types import ServiceType

from ..discovery.candidate import Candidate
from ..errors import ReasonCode
from ..health import HealthStatus
from ..versioning import InterfaceVersion
from . import log_relay
from .boundary import SandboxError
from .child import (
    CHILD_NICENESS,
    EXIT_OUT_OF_MEMORY,
    ISOLATION_ENV,
    OP_CALL,
    OP_HEALTH,
    OP_METRICS,
    OP_PING,
    OP_REPORT,
    OP_SHUTDOWN,
    PROTOCOL,
    ChildSpec,
    Limits,
    serve,
)
from .permissions import child_environment

__all__ = [
    "CrashRecord",
    "ProcessCallError",
    "ProcessCircuitOpen",
    "ProcessCrashed",
    "ProcessHost",
    "ProcessIsolationError",
    "ProcessTimeout",
    "ServiceProxy",
]

# -- exceptions ---------------------------------------------------------------------------------


class ProcessIsolationError(SandboxError):
    """Any failure of a process-isolated plugin; see the module docstring for the codes.

    A :class:`~stonks_plugins.sandbox.boundary.SandboxError` - the one type callers of an
    in-process plugin see - with the same fields (``plugin``, ``code``, ``operation``,
    ``message``, ``traceback``), so callers and hooks treat both modes alike; ``cause`` says
    what happened to the process."""

    def __init__(
        self,
        plugin: str,
        code: ReasonCode,
        message: str,
        *,
        operation: str = "call",
        traceback: str = "",
        cause: str = "",
    ) -> None:
        super().__init__(plugin, code, operation, message, traceback)
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        # Each subclass has its own signature: rebuild from the state, not the arguments.
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))


def _rebuilt(
    cls: type[ProcessIsolationError], args: tuple[Any, ...], state: dict[str, Any]
) -> ProcessIsolationError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class ProcessCrashed(ProcessIsolationError):
    """The child is gone (it exited, was killed, ran out of memory) or never got ready.

    ``exitcode`` is the child's exit status (negative: the signal number), ``signal`` the
    signal's name, ``pid`` the child that died. The host restarts it after the backoff.
    """

    def __init__(
        self,
        plugin: str,
        code: ReasonCode,
        message: str,
        *,
        operation: str = "call",
        traceback: str = "",
        cause: str = "",
        exitcode: int | None = None,
        signal: str | None = None,
        pid: int | None = None,
    ) -> None:
        super().__init__(
            plugin, code, message, operation=operation, traceback=traceback, cause=cause
        )
        self.exitcode = exitcode
        self.signal = signal
        self.pid = pid


class ProcessTimeout(ProcessCrashed):
    """A call overran its deadline; the child was killed (code ``timeout``)."""


class ProcessCallError(ProcessIsolationError):
    """The plugin's code raised (or its result could not cross); the child lives on.

    ``exc_type`` is the name of the exception the plugin raised; ``traceback`` its text.
    """

    def __init__(
        self,
        plugin: str,
        code: ReasonCode,
        message: str,
        *,
        operation: str = "call",
        traceback: str = "",
        cause: str = "raised",
        exc_type: str = "",
    ) -> None:
        super().__init__(
            plugin, code, message, operation=operation, traceback=traceback, cause=cause
        )
        self.exc_type = exc_type


class ProcessCircuitOpen(ProcessIsolationError):
    """Failing fast: the child crashed and its restart is not due yet (``retry_in`` seconds;
    ``None`` when the host gave up or was closed)."""

    def __init__(
        self,
        plugin: str,
        message: str,
        *,
        operation: str = "call",
        retry_in: float | None = None,
        cause: str = "backoff",
    ) -> None:
        super().__init__(plugin, ReasonCode.CIRCUIT_OPEN, message, operation=operation, cause=cause)
        self.retry_in = retry_in


@dataclass(frozen=True)
class CrashRecord:
    """One crash, as data for an event row."""

    at: float
    """Wall-clock time (``time.time()``)."""
    operation: str
    code: str
    cause: str
    message: str
    pid: int | None
    exitcode: int | None
    signal: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- results: what a plugin process may send back -------------------------------------------

_PROJECT_MODULES = frozenset(
    {"stonks_overwatch.core.data", "stonks_overwatch.core.service_types", "stonks_plugins.health"}
)
"""Modules whose public *classes* may cross: the SDK's data classes, ``ServiceType``,
``HealthStatus``/``Health``."""
_SAFE_NAMES: dict[str, frozenset[str]] = {
    "builtins": frozenset(
        {
            *("bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int"),
            *("list", "range", "set", "slice", "str", "tuple"),
        }
    ),
    "collections": frozenset({"OrderedDict", "defaultdict", "deque"}),
    "datetime": frozenset({"date", "datetime", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
    "uuid": frozenset({"UUID", "SafeUUID"}),
}
"""Everything else, name by name: a module-wide allowance would let a dotted name such as
``datetime.sys.modules`` reach anything. (``ZoneInfo`` is left out: it pickles through
``builtins.getattr``, which would open every attribute of every allowed class.)"""


@functools.cache
def _record_modules() -> frozenset[str]:
    """Modules of the v2 interfaces, whose record dataclasses (``Money``,
    ``PortfolioEntryV2``...) may cross. Derived from ``SERVICE_INTERFACES_V2`` so a v2
    interface added there has its records accepted with no change here. Computed on first
    use: the child side imports this module and never unpickles a result."""
    from ..compat_adapters import SERVICE_INTERFACES_V2

    return frozenset(i.__module__ for i in SERVICE_INTERFACES_V2.values())


class _ResultUnpickler(pickle.Unpickler):
    """Rebuild only data types the host already has: never import a plugin's module."""

    def find_class(self, module: str, name: str) -> Any:
        if name in _SAFE_NAMES.get(module, ()):
            return super().find_class(module, name)
        records = module in _record_modules()
        if (records or module in _PROJECT_MODULES) and "." not in name and not name.startswith("_"):
            found = super().find_class(module, name)
            # From the v2 module, records only: it also holds the service interfaces and the
            # names it imports, none of which a result has any business instantiating.
            if isinstance(found, type) and (
                not records or (is_dataclass(found) and found.__module__ == module)
            ):
                return found
        raise pickle.UnpicklingError(
            f"{module}.{name} is not a type the host accepts from a plugin process"
        )


def _loads(data: bytes) -> Any:
    return _ResultUnpickler(io.BytesIO(data)).load()


# -- describing a dead child --------------------------------------------------------------------

_SIGNAL_TEXT = {
    "SIGSEGV": "crashed with SIGSEGV (segmentation fault: invalid memory access, typically in "
    "a C extension or ctypes)",
    "SIGBUS": "crashed with SIGBUS (bus error: invalid memory access)",
    "SIGFPE": "crashed with SIGFPE (arithmetic fault in native code)",
    "SIGILL": "crashed with SIGILL (illegal instruction in native code)",
    "SIGABRT": "aborted (SIGABRT: native code called abort())",
    "SIGKILL": "was killed by SIGKILL (by the kernel's out-of-memory killer or by someone else)",
    "SIGTERM": "was terminated by SIGTERM",
}


def _describe_exit(exitcode: int | None, limits: Limits) -> tuple[str, str, str | None]:
    """(cause tag, text, signal name) for a child's exit status."""
    if exitcode is None:
        return "exit", "closed its end of the pipe and did not exit (it was killed)", None
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if name == "SIGXCPU":
            budget = f" of {limits.cpu_seconds} s per call" if limits.cpu_seconds else ""
            return "cpu", f"was killed by SIGXCPU: it used up its CPU time limit{budget}", name
        return "signal", _SIGNAL_TEXT.get(name, f"was killed by {name}"), name
    if exitcode == EXIT_OUT_OF_MEMORY:
        limit = f" ({limits.memory_mb} MB)" if limits.memory_mb else ""
        return "memory", f"ran out of memory{limit}: MemoryError, and exited", None
    if exitcode == 0:
        return "exit", "exited with status 0 (sys.exit() or the process ended by itself)", None
    return "exit", f"exited with status {exitcode} (os._exit() or sys.exit() in plugin code)", None


# -- spawning without the host's __main__ --------------------------------------------------------

_CHILD_NAME_PREFIX = "stonks-plugin:"
RESTART_PENDING = 0.25
"""Seconds a call is told to wait while the background runtime restarts a crashed child."""


def _install_spawn_hook() -> None:
    """Make our ``spawn`` children skip re-importing the host's ``__main__``.

    ``spawn`` normally re-runs the parent's main module in the child (as ``__mp_main__``), so
    that functions defined there can be targets. Ours is ``child.serve``, an importable
    function, and re-running the host's main would cost start-up time, fail outright when the
    main module is not a file (``python - < script``, a deleted script), and, for
    ``python -m stonks_overwatch``, import Django into a child that must not need it. The
    wrapper changes nothing for processes that are not ours (matched by name).
    """
    from multiprocessing import spawn

    original = spawn.get_preparation_data
    if getattr(original, "_stonks_plugins_hook", False):
        return

    def get_preparation_data(name: str) -> dict[str, Any]:
        data: dict[str, Any] = original(name)
        if isinstance(name, str) and name.startswith(_CHILD_NAME_PREFIX):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    setattr(get_preparation_data, "_stonks_plugins_hook", True)  # noqa: B010
    spawn.get_preparation_data = get_preparation_data


_install_spawn_hook()


# -- launching the child with its own environment ------------------------------------------------

_launching = threading.local()
"""``env``: the environment (``KEY=VALUE`` bytes) of the plugin process this thread starts."""
_SPAWN_CHILD_FLAG = "--multiprocessing-fork"


def _install_env_hook() -> None:
    """Start our ``spawn`` children with the environment :func:`_start_niced` was given, not
    a copy of the host's.

    multiprocessing cannot pass an environment: ``spawn`` launches through
    ``multiprocessing.util.spawnv_passfds``, which calls ``_posixsubprocess.fork_exec`` with
    ``env=None`` (inherit). Emptying ``os.environ`` around the start would take it from every
    other thread of the host for that moment; scrubbing in the child would leave the secrets
    in its initial environment block (``/proc/PID/environ``, the top of its stack). So that
    call is wrapped: on a thread starting one of our children (the thread-local is set) and
    for a spawn child's command line - not the resource tracker the same start may launch
    first - its ``env`` argument becomes ours. ``fork_exec``'s first six arguments (args,
    executable_list, close_fds, pass_fds, cwd, env) are the same from 3.2 to 3.14; the rest
    pass through untouched. Where the wrapper is not reached (a library that replaced
    ``spawnv_passfds`` and starts from another thread), the child still drops what it was not
    given, and its audit hook refuses reads of ``/proc``.
    """
    import _posixsubprocess

    original = _posixsubprocess.fork_exec
    if getattr(original, "_stonks_plugins_env", False):
        return

    def fork_exec(*args: Any, **kwargs: Any) -> Any:
        env = getattr(_launching, "env", None)
        if env is not None and len(args) > 5 and args[5] is None:
            argv = args[0] or ()
            if _SPAWN_CHILD_FLAG in argv:
                args = (*args[:5], env, *args[6:])
        return original(*args, **kwargs)

    setattr(fork_exec, "_stonks_plugins_env", True)  # noqa: B010
    setattr(_posixsubprocess, "fork_exec", fork_exec)  # noqa: B010


_install_env_hook()


def plugin_environment(candidate: Candidate) -> list[bytes]:
    """The environment a plugin's process starts with, in ``fork_exec``'s form."""
    declared = candidate.manifest.permissions if candidate.manifest is not None else ()
    env = child_environment(declared, os.environ)
    env[ISOLATION_ENV] = "process"
    return [os.fsencode(key) + b"=" + os.fsencode(value) for key, value in env.items()]


# -- the host -----------------------------------------------------------------------------------

_hosts: weakref.WeakSet[ProcessHost] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked copy of the host process (gunicorn --preload, Celery prefork) must not share
    its parent's pipes or wait on locks held by its parent's threads: it starts afresh."""
    for host in list(_hosts):
        host._forget_inherited()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ProcessHost:
    """Runs one plugin in a child process and forwards calls to it. Thread-safe.

    The host's own PID never changes; a crashed child is replaced by a new one (a new
    ``pid``) on the first call after the backoff. Other hosts share nothing with this one.
    """

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
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.shutdown_grace = shutdown_grace
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.max_restarts = max_restarts
        self.deny_paths = tuple(deny_paths)
        """Paths the plugin may never open, whatever its manifest declares (the host's
        database files)."""

        self._lock = threading.Lock()
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._poll: Any = None  # select.poll object watching self._conn
        self._sent_config: dict[str, dict[str, Any] | None] = {}
        self._interfaces: dict[str, str] = {}  # service type -> version, from the child
        self._starts = 0
        self._failures = 0
        self._retry_at = 0.0
        self._last_crash: ProcessCrashed | None = None
        self._crashes: deque[CrashRecord] = deque(maxlen=crash_history)
        self._closed = False
        self._cancelled: str | None = None
        self._crash_log: str | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.calls = 0
        self.errors = 0
        _hosts.add(self)

    # -- introspection -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the current child, or None when none runs."""
        proc = self._proc
        return proc.pid if proc is not None else None

    @property
    def alive(self) -> bool:
        proc = self._proc
        return proc is not None and proc.is_alive()

    @property
    def restarts(self) -> int:
        """How many times a child was started after the first one."""
        return max(0, self._starts - 1)

    @property
    def interface_versions(self) -> dict[str, str]:
        """Service type -> version of the interface the plugin's class implements
        (``{"portfolio": "2.0.0"}``), as the child reported when it last started; empty
        before the first start."""
        return dict(self._interfaces)

    @property
    def crashes(self) -> list[CrashRecord]:
        """The most recent crashes, oldest first (bounded by ``crash_history``)."""
        return list(self._crashes)

    background_restarts: ClassVar[bool] = False
    """Set while this process runs the serving runtime's background thread: a crashed child
    is then restarted by that thread (:meth:`revive`) once its backoff is over, never by a
    call - a call is a user's page, which must not wait for an interpreter to start."""

    @property
    def revivable(self) -> bool:
        """The child crashed, its backoff is over, and it may be restarted now."""
        return (
            not self._closed
            and self._proc is None
            and self._failures > 0
            and time.monotonic() >= self._retry_at
            and (self.max_restarts is None or self._failures <= self.max_restarts)
        )

    def revive(self) -> int | None:
        """Restart a crashed child whose backoff is over (the background runtime's job; see
        :attr:`background_restarts`); its PID, or None when there was nothing to do. A child
        that fails to start is a crash like any other: recorded, with a longer backoff."""
        with self._locked("restart"):
            if not self.revivable:
                return None
            self._spawn()
            return self._proc.pid if self._proc is not None else None

    @property
    def retry_in(self) -> float:
        """Seconds until a crashed child may be restarted (0 when it may be now)."""
        return max(0.0, self._retry_at - time.monotonic()) if self._proc is None else 0.0

    def status(self) -> dict[str, Any]:
        """A JSON-able summary for metrics, health details and events."""
        return {
            "pid": self.pid,
            "alive": self.alive,
            "restarts": self.restarts,
            "consecutive_crashes": self._failures,
            "retry_in": round(self.retry_in, 3),
            "calls": self.calls,
            "errors": self.errors,
            "closed": self._closed,
            "limits": asdict(self.limits),
            "recent_crashes": [c.as_dict() for c in self._crashes],
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> int:
        """Start the child now (ignoring any backoff, and re-opening a closed host); returns
        its PID. Raises :class:`ProcessCrashed` when the plugin cannot start."""
        with self._locked("start"):
            self._closed = False
            self._failures = 0
            self._retry_at = 0.0
            if self._proc is None:
                self._spawn()
            assert self._proc is not None and self._proc.pid is not None
            return self._proc.pid

    def close(self, grace: float | None = None) -> None:
        """Ask the child to shut down (the plugin's ``shutdown`` hook runs), then terminate
        and kill it if it does not exit within ``grace`` seconds. Idempotent."""
        grace = self.shutdown_grace if grace is None else grace
        self._closed = True
        got = self._lock.acquire(timeout=grace)
        try:
            if not got:
                # A call is stuck in the child: end it; that call sees EOF and lets go.
                proc = self._proc
                if proc is not None:
                    with contextlib.suppress(Exception):
                        proc.kill()
                self._lock.acquire()
            self._stop_child(grace)
        finally:
            self._lock.release()
        if self._finalizer is not None:
            self._finalizer()  # removes the crash log
            self._finalizer = self._crash_log = None

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
        config: dict[str, Any] | Any | None = None,
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
        self, service_type: ServiceType | str, config: dict[str, Any] | Any | None = None
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
        config: dict[str, Any] | Any | None,
        request: Callable[[dict[str, Any] | None], tuple[Any, ...]],
    ) -> Any:
        """Send ``request(config to send)`` about the ``stype`` service instance; the config
        goes along only when it differs from what that instance was built with."""
        if config is not None and not isinstance(config, dict):
            config = config.to_dict()
        with self._locked(operation):
            self._ensure(operation)
            send_config: dict[str, Any] | None = None
            if config is not None and (
                stype not in self._sent_config or self._sent_config[stype] != config
            ):
                send_config = dict(config)
            try:
                result = self._request(request(send_config), operation)
            except ProcessCallError:
                self._sent_config.pop(stype, None)  # the instance may not have been built
                raise
            if send_config is not None:
                self._sent_config[stype] = send_config
            return result

    def health_check(self, timeout: float | None = None) -> HealthStatus:
        """The plugin's own ``health_check`` in the child, with the process's status in its
        details. A crash, a timeout (``timeout``, default ``call_timeout``) or the backoff
        raises like :meth:`call` does."""
        with self._locked("health_check"):
            self._ensure("health_check")
            status = self._request((OP_HEALTH,), "health_check", timeout)
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
            self._ensure("metrics")
            data: dict[str, Any] = self._request((OP_METRICS,), "metrics")
        data["host"] = self.status()
        return data

    def ping(self) -> int:
        """A no-op round trip (returns the child's PID): the cheapest liveness check."""
        with self._locked("ping"):
            self._ensure("ping")
            pid: int = self._request((OP_PING,), "ping")
            return pid

    def service_proxy(
        self, service_type: ServiceType | str, config: dict[str, Any] | Any | None = None
    ) -> ServiceProxy:
        """An object that stands for the plugin's service: an instance of the interface its
        class implements (:meth:`service_interface`; ``isinstance`` checks pass) whose
        methods run in the child."""
        stype = ServiceType(service_type)
        proxy: type[ServiceProxy] = implementing(
            ServiceProxy, self.service_interface(stype), _forwarder
        )
        return proxy(self, stype, config)

    def service_interface(self, service_type: ServiceType | str) -> type:
        """The interface the plugin's ``service_type`` class implements: its v2 interface
        when the class implements v2, else the v1 one. The child's word (sent when it
        starts) decides, so a host that never ran its child starts it first."""
        from ..compat_adapters import VERSIONS, accepted_interfaces

        stype = ServiceType(service_type)
        pair = VERSIONS.get(stype)
        if pair is None:
            return accepted_interfaces(stype)[0]  # v1-only
        if not self._interfaces:
            with self._locked("start"):
                self._ensure("start")
        reported = self._interfaces.get(stype.value)
        major = InterfaceVersion.parse(reported).major if reported is not None else 1
        return pair.v2 if major == 2 else pair.v1

    # -- internals -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, operation: str) -> Iterator[None]:
        """The pipe's lock, waited for no longer than another call may legitimately hold it."""
        if not self._lock.acquire(timeout=self.call_timeout + self.start_timeout + 1.0):
            raise ProcessCallError(
                self.name,
                ReasonCode.TIMEOUT,
                f"{operation}: the plugin's process was busy with another call for more "
                f"than {self.call_timeout + self.start_timeout:.0f} s",
                operation=operation,
                cause="busy",
            )
        try:
            yield
        finally:
            self._lock.release()

    def _ensure(self, operation: str) -> None:
        """A running child, or the reason there is none. Called with the lock held."""
        if self._closed:
            raise ProcessCircuitOpen(
                self.name,
                "its process host is closed (the plugin was unloaded); start or reload it",
                operation=operation,
                cause="closed",
            )
        if self._proc is not None:
            return
        last = self._last_crash.message if self._last_crash is not None else "none"
        if self.max_restarts is not None and self._failures > self.max_restarts:
            raise ProcessCircuitOpen(
                self.name,
                f"gave up after {self._failures} consecutive crashes of its process "
                f"(last: {last}); reload the plugin to try again",
                operation=operation,
            )
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise ProcessCircuitOpen(
                self.name,
                f"its process is restarting after a crash: next attempt in {wait:.1f} s "
                f"(last crash: {last})",
                operation=operation,
                retry_in=wait,
            )
        if self.background_restarts and self._failures > 0:
            raise ProcessCircuitOpen(
                self.name,
                f"its process is being restarted in the background (last crash: {last})",
                operation=operation,
                retry_in=RESTART_PENDING,
            )
        self._spawn()

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        spec = ChildSpec(
            self.candidate,
            self._crash_log_path(),
            self.deny_paths,
            log_level=log_relay.host_level(),
        )
        proc = ctx.Process(
            target=serve,
            args=(child_conn, spec, self.limits),
            name=f"{_CHILD_NAME_PREFIX}{self.name}",
            daemon=True,
        )
        try:
            _start_niced(proc, plugin_environment(self.candidate))
        except Exception as exc:
            parent_conn.close()
            raise self._crashed(
                ReasonCode.INITIALIZE_FAILED,
                f"could not start a process for the plugin: {type(exc).__name__}: {exc}",
                operation="start",
                cause="load",
            ) from exc
        finally:
            child_conn.close()  # the child has its own copy; ours would hide its EOF
        poller = select.poll()
        poller.register(parent_conn.fileno(), select.POLLIN)
        self._proc, self._conn, self._poll = proc, parent_conn, poller
        self._starts += 1
        self._sent_config.clear()
        reply = self._receive(self.start_timeout, "start")
        if reply[0] == "ready":
            # Kept across crashes: a restarted child loads the same code and says the same.
            self._interfaces = dict(reply[2])
            return
        _, code, _exc_type, message, tb = reply
        self._reap(proc, self.shutdown_grace)
        raise self._crashed(
            ReasonCode(code) if code else ReasonCode.INITIALIZE_FAILED,
            f"failed to load in its process: {message}",
            operation="start",
            traceback=tb,
            cause="load",
            exitcode=proc.exitcode,
            pid=proc.pid,
        )

    def _request(self, msg: tuple[Any, ...], operation: str, timeout: float | None = None) -> Any:
        """Send one request and wait for its reply. Called with the lock held."""
        conn = self._conn
        assert conn is not None
        self.calls += 1
        try:
            payload = pickle.dumps(msg, PROTOCOL)
        except Exception as exc:
            self.errors += 1
            raise ProcessCallError(
                self.name,
                ReasonCode.HEALTH_FAILED,
                f"{operation}: the arguments cannot be sent to the plugin's process: "
                f"{type(exc).__name__}: {exc}",
                operation=operation,
                cause="transfer",
                exc_type=type(exc).__name__,
            ) from exc
        try:
            conn.send_bytes(payload)
        except OSError:
            self._died(operation)
        reply = self._receive(self.call_timeout if timeout is None else timeout, operation)
        tag = reply[0]
        if tag == "ok":
            self._failures = 0
            return reply[1]
        self.errors += 1
        if tag == "err":
            self._failures = 0
            _, code, exc_type, message, tb = reply
            reason = ReasonCode(code) if code else ReasonCode.HEALTH_FAILED
            if reason is not ReasonCode.PERMISSION_DENIED:  # that message says it all
                message = f"{operation} raised {exc_type}: {message}"
            raise ProcessCallError(
                self.name,
                reason,
                message,
                operation=operation,
                traceback=tb,
                exc_type=exc_type,
            )
        # "fatal": the child reported why it is about to exit (out of memory).
        _, cause, message, tb = reply
        proc = self._proc
        assert proc is not None
        self._reap(proc, self.shutdown_grace)
        raise self._crashed(
            ReasonCode.HEALTH_FAILED,
            f"its process (pid {proc.pid}) {message}",
            operation=operation,
            traceback=tb,
            cause=cause,
            exitcode=proc.exitcode,
            pid=proc.pid,
        )

    def _receive(self, timeout: float, operation: str) -> tuple[Any, ...]:
        conn, poller = self._conn, self._poll
        assert conn is not None and poller is not None
        try:
            if not poller.poll(math.ceil(timeout * 1000)):
                self._overran(timeout, operation)
            data = conn.recv_bytes()
        except (EOFError, OSError):
            self._died(operation)
        try:
            reply: tuple[Any, ...] = log_relay.unwrap(self.name, _loads(data))
        except Exception as exc:
            self.errors += 1
            self._failures = 0  # the process answered; only this result is unusable
            raise ProcessCallError(
                self.name,
                ReasonCode.HEALTH_FAILED,
                f"{operation}: the plugin's result cannot be received: {type(exc).__name__}: "
                f"{exc}; return the SDK's data classes (PortfolioEntry, ...) and builtin types",
                operation=operation,
                cause="transfer",
                exc_type=type(exc).__name__,
            ) from exc
        return reply

    def _doing(self, operation: str) -> str:
        if operation == "start":
            return "while starting (importing and initialising the plugin)"
        return f"during {operation}"

    def cancel(self, reason: str) -> bool:
        """Stop the call the child is running by killing the child (the only way to stop a
        runaway call): the caller gets a ``timeout`` naming ``reason``, and the child is
        restarted with backoff. Safe from another thread; False when no child runs."""
        proc = self._proc
        if proc is None or proc.pid is None or not proc.is_alive():
            return False
        self._cancelled = reason
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def _died(self, operation: str) -> NoReturn:
        """The pipe broke: find out how the child ended and raise :class:`ProcessCrashed`."""
        proc = self._proc
        assert proc is not None
        self._reap(proc, 1.0)
        cancelled, self._cancelled = self._cancelled, None
        if cancelled is not None and not self._closed:
            raise self._crashed(
                ReasonCode.TIMEOUT,
                f"{operation} was stopped: {cancelled}; its process (pid {proc.pid}) was killed",
                operation=operation,
                cause="timeout",
                exitcode=proc.exitcode,
                pid=proc.pid,
                kind=ProcessTimeout,
            )
        if self._closed:
            self._drop()
            raise ProcessCircuitOpen(
                self.name,
                f"{operation} was cut short: the plugin was unloaded",
                operation=operation,
                cause="closed",
            )
        cause, text, signame = _describe_exit(proc.exitcode, self.limits)
        code = ReasonCode.INITIALIZE_FAILED if operation == "start" else ReasonCode.HEALTH_FAILED
        raise self._crashed(
            code,
            f"its process (pid {proc.pid}) {text} {self._doing(operation)}",
            operation=operation,
            traceback=self._read_crash_log(),
            cause=cause,
            exitcode=proc.exitcode,
            signal=signame,
            pid=proc.pid,
        )

    def _overran(self, timeout: float, operation: str) -> NoReturn:
        """A call or the start-up overran its deadline: capture where it was, kill it."""
        proc = self._proc
        assert proc is not None
        stack = self._dump_stack(proc)
        self._reap(proc, 0.0)
        what = "did not get ready" if operation == "start" else "did not return"
        raise self._crashed(
            ReasonCode.TIMEOUT,
            f"{operation} {what} within {timeout:g} s (an endless loop or a hang?); its "
            f"process (pid {proc.pid}) was killed",
            operation=operation,
            traceback=stack,
            cause="timeout",
            exitcode=proc.exitcode,
            pid=proc.pid,
            kind=ProcessTimeout,
        )

    def _crashed(
        self,
        code: ReasonCode,
        message: str,
        *,
        operation: str,
        cause: str,
        traceback: str = "",
        exitcode: int | None = None,
        signal: str | None = None,
        pid: int | None = None,
        kind: type[ProcessCrashed] = ProcessCrashed,
    ) -> ProcessCrashed:
        """Record a crash, schedule the restart, drop the dead child; returns the exception."""
        self._drop()
        self._failures += 1
        self.errors += 1
        delay = min(self.max_delay, self.base_delay * 2 ** (self._failures - 1))
        delay *= 1 + self.jitter * (2 * random.random() - 1)
        self._retry_at = time.monotonic() + max(0.0, delay)
        err = kind(
            self.name,
            code,
            message,
            operation=operation,
            traceback=traceback,
            cause=cause,
            exitcode=exitcode,
            signal=signal,
            pid=pid,
        )
        self._last_crash = err
        self._crashes.append(
            CrashRecord(time.time(), operation, code.value, cause, message, pid, exitcode, signal)
        )
        return err

    def _drop(self) -> None:
        conn = self._conn
        self._proc = self._conn = self._poll = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    @staticmethod
    def _reap(proc: BaseProcess, wait: float) -> None:
        """Wait up to ``wait`` s for the child to exit, then kill it; always reaped."""
        proc.join(wait)
        if proc.exitcode is None:
            with contextlib.suppress(Exception):
                proc.kill()
            proc.join(5.0)

    def _stop_child(self, grace: float) -> None:
        proc, conn, poller = self._proc, self._conn, self._poll
        if proc is None or conn is None:
            self._drop()
            return
        try:
            conn.send_bytes(pickle.dumps((OP_SHUTDOWN,), PROTOCOL))
            if poller.poll(math.ceil(grace * 1000)):
                with contextlib.suppress(Exception):
                    log_relay.unwrap(self.name, _loads(conn.recv_bytes()))  # its last records
        except (EOFError, OSError):
            pass
        self._drop()  # closing our end makes a child still in its loop see EOF
        proc.join(grace)
        if proc.exitcode is None:
            proc.terminate()
            proc.join(1.0)
        if proc.exitcode is None:
            proc.kill()
            proc.join(5.0)

    def _forget_inherited(self) -> None:
        """In a forked copy of the host: the child and pipe belong to the parent."""
        self._lock = threading.Lock()
        conn = self._conn
        self._proc = self._conn = self._poll = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()  # our copy of the fd only; the parent's pipe is untouched
        self._sent_config = {}

    # -- the crash log (faulthandler output of the child) --------------------------------------

    def _crash_log_path(self) -> str | None:
        if self._crash_log is None:
            slug = re.sub(r"[^0-9A-Za-z_.-]", "_", self.name)
            try:
                fd, path = tempfile.mkstemp(prefix=f"stonks-plugin-{slug}-", suffix=".log")
            except OSError:
                return None
            os.close(fd)
            self._crash_log = path
            self._finalizer = weakref.finalize(self, _remove_file, path)
        return self._crash_log

    def _read_crash_log(self, limit: int = 16_000) -> str:
        path = self._crash_log
        if path is None:
            return ""
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return ""
        return text[-limit:]

    def _dump_stack(self, proc: BaseProcess) -> str:
        """Ask the child's faulthandler for every thread's stack (SIGUSR1): it is written from
        the signal handler, so it works even when a loop holds the GIL."""
        path = self._crash_log
        if path is None or proc.pid is None:
            return ""
        try:
            before = os.path.getsize(path)
            os.kill(proc.pid, signal.SIGUSR1)
        except OSError:
            return ""
        deadline = time.monotonic() + 0.5
        size = before
        while time.monotonic() < deadline:
            time.sleep(0.01)
            with contextlib.suppress(OSError):
                size = os.path.getsize(path)
            if size > before:
                time.sleep(0.02)  # let it finish the other threads
                break
        return self._read_crash_log()


def _remove_file(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# -- service proxies ----------------------------------------------------------------------------


class ServiceProxy:
    """Stands for a plugin's service in the host; every public method runs in the child.

    Built by :meth:`ProcessHost.service_proxy` as a subclass of the interface the service's
    class implements (v1 or v2), so the core and the version adapters can use it like the
    service instance it would have built in-process.
    """

    interface: ClassVar[type | None] = None
    """The interface this proxy class implements."""

    def __init__(
        self, host: ProcessHost, service_type: ServiceType, config: dict[str, Any] | Any | None
    ) -> None:
        if config is not None and not isinstance(config, dict):
            config = config.to_dict()
        self.host = host
        self.service_type = service_type
        self.config = config

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """Methods the interface does not declare, forwarded all the same."""
        if name.startswith("_"):
            raise AttributeError(name)
        method = _forwarder(name).__get__(self)
        setattr(self, name, method)
        return method

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of plugin '{self.host.name}' (pid {self.host.pid})>"


def _forwarder(name: str) -> Callable[..., Any]:
    def forward(self: ServiceProxy, *args: Any, **kwargs: Any) -> Any:
        return self.host.call(self.service_type.value, name, *args, config=self.config, **kwargs)

    forward.__name__ = name
    return forward


def _start_niced(proc: BaseProcess, env: list[bytes] | None = None) -> None:
    """Start ``proc`` from a short-lived thread that runs at a lower CPU priority: on Linux
    priority is per thread and a child inherits its starter's, so the child's whole start
    (a fresh interpreter, the plugin's imports) yields the CPU to the threads serving pages
    - the starter's own priority could not be raised back without privileges. ``env`` is
    the child's environment (see :func:`_install_env_hook`); None: the host's."""
    failure: list[BaseException] = []

    def start() -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHILD_NICENESS)
        _launching.env = env
        try:
            proc.start()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
        finally:
            _launching.env = None

    starter = threading.Thread(target=start, name=f"start:{proc.name}", daemon=True)
    starter.start()
    starter.join()
    if failure:
        raise failure[0]


def implementing(base: type, interface: type, forwarder: Callable[[str], Any]) -> type:
    """A class of ``base`` that is also an ``interface`` (so ``isinstance`` checks, and the
    version adapters, treat it as the service it stands for), whose abstract methods are
    ``forwarder(name)`` - an ABC needs them defined to be instantiated. Generated once per
    pair; the class attribute ``interface`` names what it implements."""
    methods = sorted(getattr(interface, "__abstractmethods__", ()))
    namespace: dict[str, Any] = {m: forwarder(m) for m in methods}
    namespace.update(
        interface=interface,
        __init__=vars(base)["__init__"],  # not the interface's: the base's own arguments
        __module__=base.__module__,
    )
    name = f"{base.__name__}[{interface.__name__}]"
    return type(interface)(name, (base, interface), namespace)

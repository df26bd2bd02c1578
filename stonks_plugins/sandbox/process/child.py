"""The child side of process isolation: the loop a process-isolated plugin runs in.

The host starts a child whose target is :func:`serve`: forked from the fork server
(:mod:`.forkserver`), which imported this module once, or spawned. The child

1. puts itself under its resource limits (:mod:`.rlimits`), ignores SIGINT (a Ctrl-C in the
   terminal is the host's to handle), and points :mod:`faulthandler` at the host's crash log
   (:mod:`.exits`);
2. puts itself under the plugin's declared permissions (:mod:`..permissions`): drops any
   environment variable the plugin was not given, stops writing bytecode (a write in the
   plugin's folder), and installs the audit hook - after its own imports, before any of the
   plugin's code. What the hook refuses fails that load or request with
   ``permission_denied``, even when the plugin caught the ``PermissionError``;
3. loads the plugin with the in-process code path
   (:func:`stonks_plugins.loaded.load_in_process`), so a failed load has the same reason codes
   in both modes;
4. answers requests (:mod:`.wire`) until the host says ``shutdown`` or goes away.

Nothing here imports Django (the child has no settings), nor the registry, this process's
catalog of every plugin: the child serves one plugin (``tests/test_import_rules.py``).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pickle
import resource
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import IO, Any

from stonks_overwatch.core.service_types import ServiceType

from ... import loader
from ...discovery.candidate import Candidate
from ...errors import PluginError, PluginStateError, ReasonCode, carried_code
from ...health import HealthStatus
from ...import_report import plain as plain_report
from ...interface_adapters import implemented_interface
from ...loaded import LoadedPlugin, load_in_process, unload_in_process
from ...versioning import interface_version_of
from ..boundary import PluginSandbox
from ..permissions import Guard, Policy, describe_refusals, scrub_environment
from . import log_relay, rlimits
from .spawn import CHILD_NICENESS, ISOLATION_ENV
from .wire import (
    EXIT_OUT_OF_MEMORY,
    OP_CALL,
    OP_HEALTH,
    OP_METRICS,
    OP_PING,
    OP_REPORT,
    OP_SHUTDOWN,
    PROTOCOL,
    ChildSpec,
    Limits,
)

_crash_log: IO[str] | None = None  # faulthandler writes to its fd: it must stay open


def serve(conn: Connection, spec: ChildSpec, limits: Limits) -> None:
    """Entry point of the child process (the ``target`` of its ``Process``)."""
    _prepare_process(spec, limits)
    log_relay.start_in_child(spec.log_level)
    try:
        guard = _guard(spec)
    except Exception as exc:  # no plugin code may run unchecked: give up before any does
        message = f"its permissions cannot be applied: {type(exc).__name__}: {exc}"
        _send(conn, ("err", ReasonCode.INITIALIZE_FAILED.value, type(exc).__name__, message, ""))
        return
    failed: tuple[Any, ...] | None = None
    try:
        loaded = _load(spec.candidate)
        interfaces = interface_versions(loaded)
    except PluginError as err:
        failed = ("err", err.code.value, type(err).__name__, err.message, _tb_text(err))
    except MemoryError as exc:
        _free(exc)
        _send(
            conn,
            (
                "err",
                ReasonCode.INITIALIZE_FAILED.value,
                "MemoryError",
                _memory_message(limits, "loading the plugin"),
                _tb_text(exc),
            ),
        )
        raise SystemExit(EXIT_OUT_OF_MEMORY) from None
    except Exception as exc:
        failed = (
            "err",
            ReasonCode.INITIALIZE_FAILED.value,
            type(exc).__name__,
            f"loading the plugin raised {type(exc).__name__}: {exc}",
            _tb_text(exc),
        )
    # A refusal is the cause of whatever else went wrong (an import that found no file...),
    # and fails the load even when the plugin caught it.
    reply = _denied_reply(guard) or failed
    if reply is not None:
        _send(conn, reply)
        return
    _send(conn, ("ready", os.getpid(), interfaces))
    _Server(conn, loaded, limits, guard).run()


def interface_versions(loaded: LoadedPlugin) -> dict[str, str]:
    """Service type -> version of the interface its class implements, as text.

    Text, not ``InterfaceVersion``: the host accepts only plain data from a plugin process.
    """
    return {
        stype.value: str(interface_version_of(implemented_interface(stype, cls)))
        for stype, cls in loaded.services.items()
    }


def _prepare_process(spec: ChildSpec, limits: Limits) -> None:
    global _crash_log
    with contextlib.suppress(OSError):  # usually inherited already (spawn.at_child_priority)
        if os.getpriority(os.PRIO_PROCESS, 0) < CHILD_NICENESS:
            os.setpriority(os.PRIO_PROCESS, 0, CHILD_NICENESS)
    if spec.idle:  # a forked child has the fork server's policy; lowering needs no privilege
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    if spec.environment is not None:
        _set_environment(spec.environment)
    os.environ[ISOLATION_ENV] = "process"
    with contextlib.suppress(ValueError):  # not the main thread: cannot happen in a child
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.crash_log:
        try:
            _crash_log = open(spec.crash_log, "w", encoding="utf-8")  # noqa: SIM115
        except OSError:
            _crash_log = None
        if _crash_log is not None:
            faulthandler.enable(_crash_log, all_threads=True)
            faulthandler.register(signal.SIGUSR1, _crash_log, all_threads=True)
    rlimits.apply(limits)


def _set_environment(environment: dict[str, str]) -> None:
    """Make ``os.environ`` exactly ``environment``: a forked child starts with the fork
    server's (what every plugin gets) and adds its declared variables."""
    for key in [key for key in os.environ if key not in environment]:
        del os.environ[key]
    os.environ.update(environment)


def _guard(spec: ChildSpec) -> Guard:
    """Put this process under the plugin's permissions; from here on no plugin code runs
    unchecked. Called after the child's own imports, before the plugin's first import."""
    candidate = spec.candidate
    declared = candidate.manifest.permissions if candidate.manifest is not None else ()
    scrub_environment(declared, keep=(ISOLATION_ENV,))
    # A bytecode cache written next to the plugin's modules would be a write in its folder,
    # refused like any other; the child compiles in memory instead.
    sys.dont_write_bytecode = True
    folder = candidate.root
    guard = Guard(
        Policy.build(
            candidate.name,
            declared,
            os.fspath(folder) if folder is not None else None,
            deny=spec.deny,
        )
    )
    guard.install()
    return guard


def _denied_reply(guard: Guard) -> tuple[Any, ...] | None:
    """The reply for the refusals recorded since the last one, or None when there were none."""
    refusals = guard.take()
    if not refusals:
        return None
    return (
        "err",
        ReasonCode.PERMISSION_DENIED.value,
        "PermissionError",
        describe_refusals(guard.policy.plugin, refusals),
        "Refused here:\n" + refusals[0].stack,
    )


def _load(candidate: Candidate) -> LoadedPlugin:
    """Load the one plugin this child serves, as the registry would in-process (a fresh
    sandbox with the default timeouts and circuit). A failed load leaves nothing behind."""
    if candidate.manifest is None:
        raise PluginError(candidate.name, ReasonCode.IMPORT_ERROR, "has no valid manifest")
    box = PluginSandbox(candidate.name)
    try:
        return load_in_process(candidate, box)
    except PluginError:
        box.close(join_timeout=0.5)
        loader.release(candidate)  # a half-imported plugin must not linger
        raise


def _send(conn: Connection, reply: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):  # the host went away: nothing left to tell
        conn.send_bytes(pickle.dumps(log_relay.wrap(reply), PROTOCOL))


def _tb_text(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except MemoryError:
        return f"{type(exc).__name__} (no traceback: out of memory while formatting it)\n"


def _free(exc: BaseException) -> None:
    """Drop the locals of the frames ``exc`` went through, so what a memory hog allocated is
    released before anything else is attempted (the traceback keeps the frames alive)."""
    with contextlib.suppress(Exception):
        traceback.clear_frames(exc.__traceback__)
    context = exc.__context__
    while context is not None:
        with contextlib.suppress(Exception):
            traceback.clear_frames(context.__traceback__)
        context = context.__context__


def _memory_message(limits: Limits, doing: str) -> str:
    limit = f"its {limits.memory_mb} MB memory limit" if limits.memory_mb else "memory"
    return f"ran out of memory ({limit}) while {doing}: MemoryError"


class _Server:
    """The request loop. One request at a time: the host serialises calls per plugin."""

    def __init__(
        self, conn: Connection, loaded: LoadedPlugin, limits: Limits, guard: Guard
    ) -> None:
        self.conn = conn
        self.loaded = loaded
        self.limits = limits
        self.guard = guard
        self.instances: dict[str, Any] = {}

    def run(self) -> None:
        recv, send, loads, dumps = (
            self.conn.recv_bytes,
            self.conn.send_bytes,
            pickle.loads,
            pickle.dumps,
        )
        cpu, arm_cpu = self.limits.cpu_seconds, rlimits.arm_cpu
        guard = self.guard
        while True:
            try:
                msg = loads(recv())
            except (EOFError, OSError):
                return  # the host closed the pipe or died: nobody left to serve
            op = msg[0]
            try:
                if cpu > 0:
                    arm_cpu(cpu)
                if op == OP_CALL:
                    result = self._call(msg[1], msg[2], msg[3], msg[4], msg[5])
                elif op == OP_PING:
                    result = os.getpid()
                elif op == OP_HEALTH:
                    result = self._health()
                elif op == OP_METRICS:
                    result = self._metrics()
                elif op == OP_REPORT:
                    result = self._import_report(msg[1], msg[2])
                elif op == OP_SHUTDOWN:
                    self._shutdown(send, dumps)
                    return
                else:
                    raise ValueError(f"unknown request {op!r}")
                reply: tuple[Any, ...] = ("ok", result)
            except MemoryError as exc:
                self._out_of_memory(exc, msg)
            except Exception as exc:
                reply = _error_reply(exc)
            if guard.refused:  # the usual case costs one truth test
                reply = _denied_reply(guard) or reply
            try:
                payload = dumps(log_relay.wrap(reply), PROTOCOL)
            except MemoryError as exc:
                self._out_of_memory(exc, msg)
            except Exception as exc:
                payload = dumps(
                    (
                        "err",
                        "",
                        type(exc).__name__,
                        f"the result ({type(reply[1]).__name__}) cannot be sent to the host: "
                        f"{type(exc).__name__}: {exc}; return the SDK's data classes",
                        _tb_text(exc),
                    ),
                    PROTOCOL,
                )
            send(payload)

    def _service(self, stype: str, config: dict[str, Any] | None) -> Any:
        """The service instance for ``stype``; rebuilt when the host sends a (new) config."""
        inst = self.instances.get(stype) if config is None else None
        if inst is None:
            cls = self.loaded.services.get(ServiceType(stype))
            if cls is None:
                offered = ", ".join(sorted(s.value for s in self.loaded.services)) or "none"
                raise LookupError(
                    f"the plugin provides no '{stype}' service (it provides: {offered})"
                )
            inst = cls(config=self.loaded.config_class.from_dict(config or {}))
            self.instances[stype] = inst
        return inst

    def _call(
        self,
        stype: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        config: dict[str, Any] | None,
    ) -> Any:
        if method.startswith("_"):
            raise AttributeError(f"'{method}' is private: only public service methods are called")
        return getattr(self._service(stype, config), method)(*args, **kwargs)

    def _import_report(self, stype: str, config: dict[str, Any] | None) -> Any:
        """The service's report, made plain here: the plugin's objects stay in the child."""
        return plain_report(getattr(self._service(stype, config), "import_report", None))

    def _health(self) -> Any:
        instance = self.loaded.instance
        if instance is None:
            return HealthStatus.healthy("no plugin class; the plugin process answers")
        return instance.health_check()

    def _metrics(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        instance = self.loaded.instance
        return {
            "plugin": instance.get_metrics() if instance is not None else {},
            "process": {
                "pid": os.getpid(),
                "max_rss_kb": usage.ru_maxrss,
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            },
        }

    def _shutdown(self, send: Any, dumps: Any) -> None:
        """Let the plugin clean up (its own shutdown hook), then say goodbye and return."""
        try:
            unload_in_process(self.loaded)
            reply: tuple[Any, ...] = ("ok", None)
        except Exception as exc:
            reply = _error_reply(exc)
        with contextlib.suppress(OSError):
            send(dumps(log_relay.wrap(reply), PROTOCOL))

    def _out_of_memory(self, exc: MemoryError, msg: tuple[Any, ...]) -> None:
        """Report a MemoryError, then exit: the plugin's state after a failed allocation
        cannot be trusted, and what it holds may not be freeable, so a fresh process is the
        only safe recovery."""
        _free(exc)
        doing = f"running {msg[1]}.{msg[2]}" if msg and msg[0] == OP_CALL else "serving a request"
        text = _tb_text(exc)
        del exc
        _send(self.conn, ("fatal", "memory", _memory_message(self.limits, doing), text))
        raise SystemExit(EXIT_OUT_OF_MEMORY)


def _error_reply(exc: BaseException) -> tuple[Any, ...]:
    # What the plugin raised to say why (PluginNotReady...) crosses as its code: the host
    # never imports the plugin's exception classes.
    carried = exc.code if isinstance(exc, PluginError) else carried_code(exc)
    code = carried.value if carried is not None else ""
    message = exc.message if isinstance(exc, (PluginError, PluginStateError)) else str(exc)
    return ("err", code, type(exc).__name__, message, _tb_text(exc))

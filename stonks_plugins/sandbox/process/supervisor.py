"""One plugin's child, supervised: started, asked one request at a time, and every way it can
fail turned into the exception that says so.

A child that dies or overruns is reaped and dropped; the crash is recorded and its restart
scheduled (:mod:`.backoff`). A call that overruns ``call_timeout`` - sleeping, blocked I/O, a
loop shorter than the CPU budget but longer than the caller can wait - is cut off by killing
the child, after SIGUSR1 had its faulthandler write every thread's stack to the crash log, so
the report says where it was stuck.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from typing import Any, NoReturn

from ...discovery.candidate import Candidate
from ...errors import ReasonCode
from . import log_relay
from . import spawn as priority
from .backoff import Backoff
from .channel import Channel
from .errors import ProcessCallError, ProcessCircuitOpen, ProcessCrashed, ProcessTimeout
from .exits import CrashLog, CrashRecord, describe_exit
from .spawn import plugin_environment
from .wire import PROTOCOL, ChildSpec, Limits, load_reply


class Supervisor:
    """One plugin's child and its crash history. Not thread-safe: the host calls it under its
    lock, but for :meth:`cancel` and :meth:`kill`, which only signal the child."""

    def __init__(
        self,
        candidate: Candidate,
        *,
        limits: Limits,
        call_timeout: float,
        start_timeout: float,
        shutdown_grace: float,
        deny_paths: tuple[str, ...],
        backoff: Backoff,
    ) -> None:
        self.candidate = candidate
        self.name = candidate.name
        self.limits = limits
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.shutdown_grace = shutdown_grace
        self.deny_paths = deny_paths
        """Paths the plugin may never open, whatever its manifest declares (the host's
        database files)."""
        self.backoff = backoff
        self.crash_log = CrashLog(self.name)
        self.channel: Channel | None = None
        self.interfaces: dict[str, str] = {}
        """Service type -> interface version, as the child said when it last got ready."""
        self.starts = 0
        self.closed = False
        self.cancelled: str | None = None
        self.calls = 0
        self.errors = 0
        self.idle = False
        """The running child is under ``SCHED_IDLE`` (see :mod:`.spawn`)."""

    @property
    def pid(self) -> int | None:
        channel = self.channel
        return channel.pid if channel is not None else None

    def ensure(self, operation: str, background: bool) -> Channel:
        """A running child, started if none runs and the backoff allows, or the reason there
        is none. ``background``: only the serving runtime's thread restarts a crashed one."""
        if self.closed:
            raise ProcessCircuitOpen(
                self.name,
                "its process host is closed (the plugin was unloaded); start or reload it",
                operation=operation,
                cause="closed",
            )
        if self.channel is None:
            refusal = self.backoff.refusal(self.name, operation, background)
            if refusal is not None:
                raise refusal
            self.spawn()
        assert self.channel is not None
        return self.channel

    def spawn(self) -> None:
        """Start a child and wait until it is ready (no child may be running)."""
        # A start is background work: idle priority where the child can be lifted once
        # ready, and always for a plugin whose last child crashed.
        crashing = priority.is_crashing(self.name)
        idle = crashing or priority.lift_allowed()
        try:
            spec = ChildSpec(
                self.candidate,
                self.crash_log.ensure(),
                self.deny_paths,
                log_level=log_relay.host_level(),
                environment=plugin_environment(self.candidate),
                idle=idle,
            )
            channel = Channel.start(self.name, spec, self.limits)
        except Exception as exc:
            raise self._crashed(
                ReasonCode.INITIALIZE_FAILED,
                f"could not start a process for the plugin: {type(exc).__name__}: {exc}",
                operation="start",
                cause="load",
            ) from exc
        self.channel = channel
        self.starts += 1
        self.idle = idle
        wait = self.start_timeout
        if idle and not crashing:
            # On a machine kept busy, idle CPU may never come: a healthy plugin's start is
            # background work for a while, not for ever.
            grace = min(priority.IDLE_START_GRACE, wait)
            if not channel.wait(grace):
                self._lift()
                wait -= grace
        reply = self._receive(wait, "start", stated=self.start_timeout)
        if reply[0] == "ready":
            # Kept across crashes: a restarted child loads the same code and says the same.
            self.interfaces = dict(reply[2])
            if idle and not crashing:
                self._lift()  # a healthy plugin's calls are pages' work
            return
        _, code, _exc_type, message, tb = reply
        channel.reap(self.shutdown_grace)
        raise self._crashed(
            ReasonCode(code) if code else ReasonCode.INITIALIZE_FAILED,
            f"failed to load in its process: {message}",
            operation="start",
            traceback=tb,
            cause="load",
            exitcode=channel.exitcode,
            pid=channel.pid,
        )

    def request(self, msg: tuple[Any, ...], operation: str, timeout: float | None = None) -> Any:
        """Send one request to the running child and return its result."""
        channel = self.channel
        assert channel is not None
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
            channel.send(payload)
        except OSError:
            self._died(operation)
        reply = self._receive(self.call_timeout if timeout is None else timeout, operation)
        tag = reply[0]
        if tag == "ok":
            self.backoff.succeeded()
            self._answered()
            return reply[1]
        self.errors += 1
        if tag == "err":
            self.backoff.succeeded()
            self._answered()
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
        channel.reap(self.shutdown_grace)
        raise self._crashed(
            ReasonCode.HEALTH_FAILED,
            f"its process (pid {channel.pid}) {message}",
            operation=operation,
            traceback=tb,
            cause=cause,
            exitcode=channel.exitcode,
            pid=channel.pid,
        )

    def _receive(
        self, timeout: float, operation: str, stated: float | None = None
    ) -> tuple[Any, ...]:
        channel = self.channel
        assert channel is not None
        try:
            if not channel.wait(timeout):
                self._overran(timeout if stated is None else stated, operation)
            data = channel.receive()
        except (EOFError, OSError):
            self._died(operation)
        try:
            reply: tuple[Any, ...] = log_relay.unwrap(self.name, load_reply(data))
        except Exception as exc:
            self.errors += 1
            self.backoff.succeeded()  # the process answered; only this result is unusable
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

    def _answered(self) -> None:
        """The child answered: a crash streak is over, and its calls are pages' work again."""
        priority.answered(self.name)
        if self.idle:
            self._lift()

    def _lift(self) -> None:
        if priority.lift(self.pid):
            self.idle = False

    def demote(self) -> None:
        pid = self.pid
        if pid is not None:
            self.idle = True
            priority.demote(pid)

    def cancel(self, reason: str) -> bool:
        """Kill the child to stop the call it runs; that call fails with ``timeout`` naming
        ``reason``. False when no child runs."""
        channel = self.channel
        if channel is None or channel.pid is None or not channel.alive:
            return False
        self.cancelled = reason
        try:
            os.kill(channel.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        channel = self.channel
        if channel is not None:
            channel.kill()

    def stop(self, grace: float) -> None:
        """Ask the child to shut down, then terminate and kill it if it does not exit within
        ``grace`` seconds."""
        channel = self.channel
        if channel is None:
            return
        channel.say_goodbye(grace, self.name)
        self._drop()  # closing our end makes a child still in its loop see EOF
        channel.wind_down(grace)

    def forget(self) -> None:
        """In a forked copy of the host: the child and pipe belong to the parent."""
        self._drop()

    def _died(self, operation: str) -> NoReturn:
        """The pipe broke: find out how the child ended and raise :class:`ProcessCrashed`."""
        channel = self.channel
        assert channel is not None
        channel.reap(1.0)
        cancelled, self.cancelled = self.cancelled, None
        if cancelled is not None and not self.closed:
            raise self._crashed(
                ReasonCode.TIMEOUT,
                f"{operation} was stopped: {cancelled}; its process (pid {channel.pid}) was killed",
                operation=operation,
                cause="timeout",
                exitcode=channel.exitcode,
                pid=channel.pid,
                kind=ProcessTimeout,
            )
        if self.closed:
            self._drop()
            raise ProcessCircuitOpen(
                self.name,
                f"{operation} was cut short: the plugin was unloaded",
                operation=operation,
                cause="closed",
            )
        cause, text, signame = describe_exit(channel.exitcode, self.limits)
        code = ReasonCode.INITIALIZE_FAILED if operation == "start" else ReasonCode.HEALTH_FAILED
        raise self._crashed(
            code,
            f"its process (pid {channel.pid}) {text} {_doing(operation)}",
            operation=operation,
            traceback=self.crash_log.read(),
            cause=cause,
            exitcode=channel.exitcode,
            signal=signame,
            pid=channel.pid,
        )

    def _overran(self, timeout: float, operation: str) -> NoReturn:
        """A call or the start-up overran its deadline: capture where it was, kill it."""
        channel = self.channel
        assert channel is not None
        stack = self.crash_log.dump_stack(channel.pid)
        channel.reap(0.0)
        what = "did not get ready" if operation == "start" else "did not return"
        raise self._crashed(
            ReasonCode.TIMEOUT,
            f"{operation} {what} within {timeout:g} s (an endless loop or a hang?); its "
            f"process (pid {channel.pid}) was killed",
            operation=operation,
            traceback=stack,
            cause="timeout",
            exitcode=channel.exitcode,
            pid=channel.pid,
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
        self.errors += 1
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
        priority.crashed(self.name)
        at = time.time()
        record = CrashRecord(at, operation, code.value, cause, message, pid, exitcode, signal)
        self.backoff.crashed(err, record)
        return err

    def _drop(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.close()


def _doing(operation: str) -> str:
    if operation == "start":
        return "while starting (importing and initialising the plugin)"
    return f"during {operation}"

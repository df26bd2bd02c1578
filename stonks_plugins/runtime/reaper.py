"""Stopping abandoned calls that keep a CPU busy.

A call its caller gave up on keeps running (Python cannot kill a thread): one that sleeps
or waits costs nothing and may still leave a last good answer, so it is left alone. One
that spins - an endless loop in the plugin's code, in this process or in its child - would
take CPU from every request the process serves. The background runtime sweeps the
abandoned calls a few times a second, measures the CPU each used since it was abandoned (from
``/proc``; CPU time, not a share of the wall clock, so a loaded machine does not hide a
spinner), and stops one that used ``SPIN_CPU`` seconds of it:

- in process, by raising :class:`CallStopped` in its thread (``PyThreadState_SetAsyncExc``;
  it takes effect at the thread's next bytecode, so a busy loop stops at once);
- process-isolated, by killing the child (``ProcessHost.cancel``), restarted with backoff.

Either way the plugin's circuit opens at once (``CircuitBreaker.trip``): its calls are
refused for a backoff that doubles each time it happens again, instead of spinning anew on
the next request. A call abandoned for longer than ``PLUGINS_CALL_TIMEOUT`` is stopped
whatever it does.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..conf import plugin_settings
from ..loader import PKG_ROOT, package_prefix
from ..registry import plugin_registry
from ..sandbox.timeouts import Pending

logger = logging.getLogger(__name__)

SPIN_CPU = 0.25  # CPU seconds a call may still use after its caller gave up
SPUN_SHARE = 0.5  # on a CPU at least this share of the time its caller waited: it spun
SPIN_WINDOW = 0.1  # seconds watched at least before a call is judged on its CPU share
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CallStopped(BaseException):
    """Raised inside a plugin call that was stopped for spinning after its caller left. A
    ``BaseException``, so a plugin's ``except Exception`` does not swallow it."""


@dataclass
class Abandoned:
    plugin: str
    operation: str
    pending: Pending
    since: float
    first_cpu: float | None = None
    stopped: bool = False


_abandoned: list[Abandoned] = []
_Unattended = tuple[float, Abandoned, Callable[[], object]]
_unattended: list[_Unattended] = []
"""Calls nobody waits for (background refreshes): abandoned when their time is up."""
_lock = threading.Lock()


def abandon(plugin: str, operation: str, pending: Pending, started: float) -> None:
    """The caller gave up on this call: stop it now if it spun all along (an in-process
    endless loop starves every thread of the process, the sweep's included, so it must not
    wait for one), else watch it from now on."""
    with _lock:
        if any(a.pending is pending for a in _abandoned):
            return  # a call several callers waited for is watched once
    entry = Abandoned(plugin, operation, pending, time.monotonic())
    loaded = plugin_registry.peek(plugin)
    if loaded is not None and loaded.host is not None:
        loaded.host.demote()  # its child spins or waits on idle CPU only from now on
    cpu = call_cpu(pending)
    ran = entry.since - started
    # On a busy machine (a process's start, every plugin warming up) a spinner gets less than
    # its share: one that already used twice what it may still use after now spun anyway.
    if cpu is not None and cpu >= 0.1 and (cpu >= SPUN_SHARE * ran or cpu >= 2 * SPIN_CPU):
        _stop(entry, f"it kept a CPU busy for {cpu:.1f} s of the {ran:.1f} s it ran")
        return
    entry.first_cpu = _cpu(entry)
    with _lock:
        _abandoned.append(entry)


def unattended(
    plugin: str,
    operation: str,
    pending: Pending,
    started: float,
    after: float,
    on_abandon: Callable[[], object],
) -> None:
    """A call nobody waits for: the sweep treats it as abandoned ``after`` seconds from
    ``started`` if it still runs then (``on_abandon`` first: the lane marks it)."""
    with _lock:
        _unattended.append(
            (started + after, Abandoned(plugin, operation, pending, started), on_abandon)
        )


def _give_up_unattended(now: float) -> None:
    with _lock:
        due: list[_Unattended] = []
        kept: list[_Unattended] = []
        for item in _unattended:
            (due if item[0] <= now or item[1].pending.done.is_set() else kept).append(item)
        _unattended[:] = kept
    for _, entry, on_abandon in due:
        if entry.pending.done.is_set():
            continue
        on_abandon()
        abandon(entry.plugin, entry.operation, entry.pending, entry.since)


def watched() -> list[Abandoned]:
    with _lock:
        return list(_abandoned)


def _cpu_of(stat_path: str) -> float | None:
    """utime + stime of a /proc stat file, in seconds (None when it is gone)."""
    try:
        with open(stat_path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw.rsplit(b")", 1)[-1].split()
    try:
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (IndexError, ValueError):
        return None


def _thread_cpu(pending: Pending) -> float | None:
    """The whole CPU time of the thread that runs ``pending`` (None when it is gone)."""
    native = pending.thread.native_id
    return _cpu_of(f"/proc/self/task/{native}/stat") if native is not None else None


def child_pid(plugin: str) -> int | None:
    """The pid of the plugin's child when it runs process-isolated (else None)."""
    loaded = plugin_registry.peek(plugin)
    host = loaded.host if loaded is not None else None
    return host.pid if host is not None else None


def call_cpu(pending: Pending) -> float | None:
    """CPU seconds the call's thread used since the call began on it (0 when it has not
    yet; None when the thread is gone). Not the thread's whole CPU time: a lane's parked
    thread served earlier calls, and a healthy plugin busy for an hour would look like a
    spinner at its first call that waits."""
    now = _thread_cpu(pending)
    if now is None:
        return None
    began = pending.cpu_start
    return max(0.0, now - began) if began is not None else 0.0


def _cpu(entry: Abandoned) -> float | None:
    """CPU seconds used so far by what runs the call: its thread, plus the plugin's child
    process when the plugin is isolated (the thread itself only waits on the pipe)."""
    total = _thread_cpu(entry.pending)
    child = child_pid(entry.plugin)
    if child is not None:
        child_cpu = _cpu_of(f"/proc/{child}/stat")
        if child_cpu is not None:
            total = (total or 0.0) + child_cpu
    return total


def sweep(now: float | None = None) -> list[Abandoned]:
    """Check every abandoned call once; stop those that spin. Returns the ones stopped."""
    now = time.monotonic() if now is None else now
    _give_up_unattended(now)
    hard_limit = float(plugin_settings.CALL_TIMEOUT)
    stopped: list[Abandoned] = []
    with _lock:
        _abandoned[:] = [a for a in _abandoned if not a.pending.done.is_set() and not a.stopped]
        entries = list(_abandoned)
    for entry in entries:
        cpu = _cpu(entry)
        if entry.first_cpu is None:
            entry.first_cpu = cpu
        used = cpu - entry.first_cpu if cpu is not None and entry.first_cpu is not None else 0.0
        watched = now - entry.since
        # A share, not only a total: a spinner found at the first sweeps is stopped then,
        # rather than after SPIN_CPU more of every page's GIL and CPU.
        spinning = watched >= SPIN_WINDOW and used >= 0.05 and used >= SPUN_SHARE * watched
        if used >= SPIN_CPU or spinning:
            _stop(
                entry,
                f"it used {used:.1f} s of CPU in the {watched:.1f} s after its caller gave up",
            )
            stopped.append(entry)
        elif now - entry.since >= hard_limit:
            _stop(entry, f"it was still running {hard_limit:g} s after its caller gave up")
            stopped.append(entry)
    return stopped


def _culprit(entry: Abandoned) -> str:
    """The plugin whose code the thread runs now: a middleware's call runs the broker's
    code in its thread (``proceed()``), and the one to blame is the innermost plugin on the
    stack, not the lane's owner."""
    ident = entry.pending.thread.ident
    frame = sys._current_frames().get(ident) if ident is not None else None
    owners = {package_prefix(name): name for name in plugin_registry.known()}
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(PKG_ROOT + "."):
            owner = owners.get(".".join(module.split(".", 2)[:2]))
            if owner is not None:
                return owner
        frame = frame.f_back
    return entry.plugin  # a process-isolated plugin's thread only waits on its child


def _stop(entry: Abandoned, reason: str) -> None:
    entry.stopped = True
    culprit = _culprit(entry)
    logger.warning("plugin %s: stopping %s: %s", culprit, entry.operation, reason)
    loaded = plugin_registry.peek(culprit)
    host = loaded.host if loaded is not None else None
    if host is not None:
        host.cancel(reason)
    ident = entry.pending.thread.ident
    if ident is not None and entry.pending.thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(ident), ctypes.py_object(CallStopped)
        )
    # Refused for a backoff from now on, rather than spinning again on the next request.
    plugin_registry.sandbox(culprit).circuit.trip()


def reset() -> None:
    with _lock:
        _abandoned.clear()
        _unattended.clear()

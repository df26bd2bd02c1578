"""The fork server plugin children are forked from: a child's start without an interpreter's.

A child started by ``spawn`` is a new interpreter that imports the child's own modules (the
loader, the boundary, the manifest model: about 0.3 s of CPU) before the plugin's first
line, and pays it again on every restart and background retry, on the CPUs that serve
pages. multiprocessing's ``forkserver`` pays it once per host process: a server started with
those modules imported (``set_forkserver_preload``) forks each child, which then imports
only the plugin.

What ``spawn`` guaranteed still holds:

- **No inherited locks.** The server is a fresh, single-threaded interpreter that runs no
  plugin code; it only forks. (``spawn`` was chosen because the *host* is threaded.)
- **No secrets.** The server starts with the environment every plugin process gets
  (:func:`.spawn.server_environment`), never the host's, and that is checked from
  ``/proc/PID/environ`` before the first child is forked: where the check cannot pass (the
  launch hook was not reached, or there is no ``/proc``), children are spawned as before.
  A child sets its declared variables from its ``ChildSpec``.
- **Priority.** The server runs at ``CHILD_NICENESS``, launched from a thread at that
  priority; a child that must start idle puts itself under ``SCHED_IDLE`` first thing.
- **One per host process.** A host forked after its server started (gunicorn ``--preload``,
  Celery prefork) forgets its parent's server and starts its own on its first child.

This module owns multiprocessing's fork server in this process: plugin code that wanted one
of its own (it may not start ``multiprocessing`` children, see :mod:`.spawn`) would share it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing import forkserver as mp_forkserver
from multiprocessing.context import ForkServerContext, SpawnContext

from ..permissions import child_environment
from . import spawn
from .spawn import ISOLATION_ENV

logger = logging.getLogger(__name__)

PRELOAD = ["stonks_plugins.sandbox.process.child"]
"""What the server imports once, so a forked child has it: the child's entry point and all
it imports (everything but the plugin)."""

EXEC_WAIT = 10.0
"""Seconds a newly launched server may take to become itself (its ``exec``) before it is
given up for ``spawn``; normally a few milliseconds."""

_lock = threading.Lock()
_checked: int | None = None
"""The pid of the server whose environment was checked and found clean."""
_refused: str | None = None
"""Why this process spawns its children: the fork server cannot be used."""
_fork_hook_registered = False


def context() -> ForkServerContext | SpawnContext:
    """The multiprocessing context a plugin's child starts from: ``forkserver``, its server
    running and checked; ``spawn`` where that cannot be (:func:`refused`)."""
    with _lock:
        if _refused is None:
            try:
                _ensure_server()
            except Exception as exc:  # the server could not start: spawn, and say why once
                _refuse(f"the fork server did not start: {type(exc).__name__}: {exc}")
        if _refused is None:
            return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def refused() -> str | None:
    """Why children are spawned rather than forked in this process; None while they are
    forked (or none was started yet)."""
    return _refused


def server_pid() -> int | None:
    """The pid of the fork server this process checked and forks its children from."""
    return _checked


def _ensure_server() -> None:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        _refuse("this platform has no fork server")
        return
    global _checked
    _register_fork_hook()
    spawn.install()
    mp_forkserver.set_forkserver_preload(list(PRELOAD))
    # Launched, if it is not running (or died), from a thread at the children's priority: the
    # server and every child forked from it inherit it.
    spawn.at_child_priority(mp_forkserver.ensure_running, name="stonks-plugins-forkserver")
    pid = spawn.launched_server()
    if pid is None:
        _refuse("the fork server was not launched through the environment hook")
        return
    if pid == _checked:
        return
    problem = _environment_problem(pid)
    if problem is not None:
        with contextlib.suppress(OSError):  # and reaped: it is this process's child
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        _refuse(problem)
        return
    _checked = pid


def _environment_problem(pid: int) -> str | None:
    """What the server's initial environment holds that a plugin without grants may not see;
    None when it holds nothing more."""
    try:
        _wait_for_exec(pid)
        with open(f"/proc/{pid}/environ", "rb") as file:
            block = file.read()
    except (OSError, TimeoutError) as exc:
        return f"its environment cannot be checked: {exc}"
    names = {os.fsdecode(item.partition(b"=")[0]) for item in block.split(b"\0") if item}
    extra = names - set(child_environment((), dict.fromkeys(names, ""))) - {ISOLATION_ENV}
    if extra:
        # Names only: the values may be the very secrets kept from plugins.
        return f"its environment holds {', '.join(sorted(extra))}, which plugins may not see"
    return None


def _wait_for_exec(pid: int, within: float = EXEC_WAIT) -> None:
    """Until ``pid`` runs the server's command line: before its ``exec`` it is a copy of this
    process, whose environment (or none, under ``vfork``) says nothing about the server's."""
    deadline = time.monotonic() + within
    while True:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            if b"multiprocessing.forkserver" in file.read():
                return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the fork server (pid {pid}) did not start within {within:g} s")
        time.sleep(0.005)


def _refuse(reason: str) -> None:
    global _refused
    _refused = reason
    logger.warning("Plugin processes are spawned, not forked from a fork server: %s", reason)


def _register_fork_hook() -> None:
    global _fork_hook_registered
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_forget_parents_server)
        _fork_hook_registered = True


def _forget_parents_server() -> None:
    """In a forked copy of the host: the server is the parent's (its pid is not our child,
    its lock may have been held by one of the parent's threads), so this process starts its
    own. Our copy of the server's "alive" pipe is closed, or the parent's server would live
    as long as this process."""
    global _checked, _refused, _lock
    server = mp_forkserver._forkserver
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        with contextlib.suppress(OSError):
            os.close(alive)
    # multiprocessing has no public reset; a fresh instance's state is "never started".
    server.__init__()  # type: ignore[misc]
    _lock = threading.Lock()
    _checked = None
    _refused = None

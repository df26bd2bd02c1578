"""How a plugin's child is started: forked from a fork server (:mod:`.forkserver`), or by
``spawn`` where none can run, at a lower CPU priority, with only the environment its manifest
allows. Its start, and every child of a plugin whose last child crashed, run at idle priority
(``SCHED_IDLE``): a plugin that keeps crashing costs the pages no CPU however often it is
restarted (see the end of this module).

Never a fork of the host: the host is a threaded web or Celery worker, and a forked child
would inherit locks held by other threads (logging, the import lock, database drivers) in
their locked state. The fork server is a separate, single-threaded interpreter that runs no
plugin code; ``spawn`` starts a new interpreter per child. Children are daemons, so they die
with the host; the price is that plugin code cannot itself start ``multiprocessing`` children
(``subprocess`` is fine).

multiprocessing needs two changes for our children, made by :func:`install`: called by the
app's ``ready()``, and again (a no-op by then) before each child starts, so a host made
without Django (tests, benchmarks, the plugin test kit) gets them too; never on import. Both
leave processes that are not ours as they were.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from ...discovery.candidate import Candidate
from ..permissions import child_environment

CHILD_NAME_PREFIX = "stonks-plugin:"
"""Names our children's ``Process`` objects: how the hooks tell them from anyone else's."""

CHILD_NICENESS = 10
"""A plugin's child yields the CPU to the web and worker processes that serve pages: its
start (an interpreter and the plugin's imports), a retry or a runaway call then slows the
plugin, not the site."""

_penalised: set[str] = set()
"""Plugins whose last child in this process crashed (exit, signal, memory, overrun, a failed
start): their next children run at idle priority (``SCHED_IDLE``) until one answers a call."""
_lift_allowed: bool | None = None

IDLE_START_GRACE = 3.0
"""Seconds a healthy plugin's child starts at idle priority; then (a busy machine) it goes on
at ``CHILD_NICENESS``. A crashing plugin's children stay idle."""

ISOLATION_ENV = "STONKS_PLUGIN_ISOLATION"
"""Set to ``process`` in the child, so plugin code (and fault fixtures) can tell it runs
isolated."""

_SPAWN_CHILD_FLAG = "--multiprocessing-fork"
_FORK_SERVER_MAIN = "from multiprocessing.forkserver import main"
_launching = threading.local()
"""``env``: the environment (``KEY=VALUE`` bytes) of the plugin process this thread starts."""
_server_pid: int | None = None
"""The fork server this process launched last (through the hook): :mod:`.forkserver` checks
the environment it got."""
_install_lock = threading.Lock()


def install() -> None:
    """Install both hooks; idempotent, and safe from any thread."""
    with _install_lock:
        _install_spawn_hook()
        _install_env_hook()


def _install_spawn_hook() -> None:
    """Make our children skip re-importing the host's ``__main__``.

    ``spawn`` normally re-runs the parent's main module in the child (as ``__mp_main__``), so
    that functions defined there can be targets. Ours is ``child.serve``, an importable
    function, and re-running the host's main would cost start-up time, fail outright when the
    main module is not a file (``python - < script``, a deleted script), and, for
    ``python -m stonks_overwatch``, import Django into a child that must not need it.
    """
    from multiprocessing import spawn

    original = spawn.get_preparation_data
    if getattr(original, "_stonks_plugins_hook", False):
        return

    def get_preparation_data(name: str) -> dict[str, Any]:
        data: dict[str, Any] = original(name)
        if isinstance(name, str) and name.startswith(CHILD_NAME_PREFIX):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    setattr(get_preparation_data, "_stonks_plugins_hook", True)  # noqa: B010
    spawn.get_preparation_data = get_preparation_data


def _install_env_hook() -> None:
    """Start our children, and the fork server they are forked from, with the environment a
    plugin process may have, not a copy of the host's (whose secrets the plugin must not see).

    multiprocessing cannot pass an environment: ``spawn`` and the fork server launch through
    ``multiprocessing.util.spawnv_passfds``, which calls ``_posixsubprocess.fork_exec`` with
    ``env=None`` (inherit). Emptying ``os.environ`` around the start would take it from every
    other thread of the host for that moment; scrubbing in the child would leave the secrets
    in its initial environment block (``/proc/PID/environ``). So that call is wrapped, for
    two command lines only - not the resource tracker the same start may launch first:

    - a spawn child's, on a thread starting one of our children (the thread-local is set): its
      ``env`` argument becomes the one :func:`start_child` was given;
    - the fork server's, on any thread (it serves only our children): :func:`server_environment`,
      what every plugin process gets and nothing a manifest must declare. Its pid is kept for
      :mod:`.forkserver`, which checks that environment before it forks a child.

    ``fork_exec``'s first six arguments (args, executable_list, close_fds, pass_fds, cwd, env)
    are the same from 3.2 to 3.14; the rest pass through. Where the wrapper is not reached,
    a spawn child still drops what it was not given, its audit hook refuses reads of
    ``/proc``, and the fork server's check fails, so children are spawned.
    """
    import _posixsubprocess

    original = _posixsubprocess.fork_exec
    if getattr(original, "_stonks_plugins_env", False):
        return

    def fork_exec(*args: Any, **kwargs: Any) -> Any:
        global _server_pid
        server = False
        if len(args) > 5 and args[5] is None:
            argv = [os.fsdecode(arg) for arg in args[0] or ()]
            env = getattr(_launching, "env", None)
            if env is not None and _SPAWN_CHILD_FLAG in argv:
                args = (*args[:5], env, *args[6:])
            elif any(arg.startswith(_FORK_SERVER_MAIN) for arg in argv):
                args = (*args[:5], _encode(server_environment()), *args[6:])
                server = True
        pid = original(*args, **kwargs)
        if server:
            _server_pid = pid
        return pid

    setattr(fork_exec, "_stonks_plugins_env", True)  # noqa: B010
    setattr(_posixsubprocess, "fork_exec", fork_exec)  # noqa: B010


def server_environment() -> dict[str, str]:
    """The fork server's environment, which every child forked from it starts with: what
    every plugin process gets, no declared variable (a child sets its own: ``ChildSpec``)."""
    env = child_environment((), os.environ)
    env[ISOLATION_ENV] = "process"
    return env


def launched_server() -> int | None:
    """The pid of the newest fork server this process launched, if any."""
    return _server_pid


def _encode(env: dict[str, str]) -> list[bytes]:
    return [os.fsencode(key) + b"=" + os.fsencode(value) for key, value in env.items()]


def plugin_environment(candidate: Candidate) -> dict[str, str]:
    """The environment a plugin's process runs with: what Python needs and the manifest's
    declared ``env:`` variables, never the project's secrets."""
    declared = candidate.manifest.permissions if candidate.manifest is not None else ()
    env = child_environment(declared, os.environ)
    env[ISOLATION_ENV] = "process"
    return env


def start_child(proc: BaseProcess, env: dict[str, str] | None = None, idle: bool = False) -> None:
    """Start ``proc`` from a short-lived thread at a lower CPU priority (:func:`at_child_priority`).
    ``env`` is a spawned child's environment (None: the host's); a forked child sets its own
    (``ChildSpec.environment``), as it puts itself under ``SCHED_IDLE`` (``ChildSpec.idle``):
    its priority is the fork server's, not its starter's."""
    install()
    spawned = getattr(proc, "_start_method", None) != "forkserver"
    launch_env = _encode(env) if env is not None and spawned else None

    def start() -> None:
        _launching.env = launch_env
        try:
            proc.start()
        finally:
            _launching.env = None

    at_child_priority(start, idle=idle and spawned, name=f"start:{proc.name}")


def at_child_priority(
    work: Callable[[], None], idle: bool = False, name: str = "stonks-plugins-start"
) -> None:
    """Run ``work`` on a short-lived thread at ``CHILD_NICENESS`` (with ``idle``: under
    ``SCHED_IDLE``) and wait for it; what it raises is raised here. On Linux priority is per
    thread and a process inherits its starter's, so a child (or the fork server) started so
    yields the CPU to the threads serving pages - the starter's own priority could not be
    raised back without privileges."""
    failure: list[BaseException] = []

    def run() -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHILD_NICENESS)
        if idle:
            _set_policy(0, os.SCHED_IDLE)
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    starter = threading.Thread(target=run, name=name, daemon=True)
    starter.start()
    starter.join()
    if failure:
        raise failure[0]


# -- idle priority for background work ---------------------------------------------------------
#
# Nice 10 still takes a tenth of a CPU from a page and preempts late; SCHED_IDLE takes none
# from a thread that wants the CPU. A child's start (an interpreter and the plugin's imports,
# about a second of CPU) and anything a crashing or abandoned child does is background work:
# it runs on idle CPU only, so a plugin that keeps crashing, looping or hogging memory costs
# the pages nothing however often it is restarted.


def is_crashing(plugin: str) -> bool:
    """Its last child crashed: its next children start under ``SCHED_IDLE`` and stay there
    until one answers. Any other plugin's child starts idle only where a ready child can be
    lifted back (:func:`lift_allowed`), so a healthy plugin never serves its calls at idle
    priority for want of privileges."""
    return plugin in _penalised


def crashed(plugin: str) -> None:
    """The plugin's child crashed: its next children start idle until one answers."""
    _penalised.add(plugin)


def answered(plugin: str) -> bool:
    """The plugin's child answered a call; True when that ends a crash streak."""
    if plugin in _penalised:
        _penalised.discard(plugin)
        return True
    return False


def lift(pid: int | None) -> bool:
    """Every thread of child ``pid`` back to the normal policy (at nice ``CHILD_NICENESS``):
    a child that got ready, or answered after crashes, is no longer background work."""
    if pid is None:
        return False
    results = [_set_policy(tid, os.SCHED_OTHER) for tid in _threads(pid)]
    return any(results)


def demote(pid: int | None) -> None:
    """Child ``pid`` (every thread) to ``SCHED_IDLE``: its call was abandoned, and what it
    still does until it is stopped is nobody's page (lowering needs no privilege)."""
    if pid is not None:
        for tid in _threads(pid):
            _set_policy(tid, os.SCHED_IDLE)


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except (OSError, ValueError):
        return [pid]


def lift_allowed() -> bool:
    """Can this process move a thread from ``SCHED_IDLE`` back to the normal policy (root,
    ``CAP_SYS_NICE`` or an ``RLIMIT_NICE`` that allows nice 10)? Tried once, on a throwaway
    thread."""
    global _lift_allowed
    if _lift_allowed is None:
        result: list[bool] = []

        def probe() -> None:
            result.append(_set_policy(0, os.SCHED_IDLE) and _set_policy(0, os.SCHED_OTHER))

        thread = threading.Thread(target=probe, name="stonks-plugins-priority-probe")
        thread.start()
        thread.join()
        _lift_allowed = bool(result and result[0])
    return _lift_allowed


def _set_policy(tid: int, policy: int) -> bool:
    """Thread ``tid`` (0: this one) under ``policy``; False where that is not allowed."""
    try:
        os.sched_setscheduler(tid, policy, os.sched_param(0))
    except (OSError, AttributeError):
        return False
    return True

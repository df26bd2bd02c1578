"""The guard's checks of processes: the programs a plugin launches, forks, the signals it
sends and the limits it changes."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .file_checks import fsdecode
from .policy import find_program
from .refusals import Refuser


class ProcessChecks(Refuser):
    """Audit event handlers for launches and signals, checked against ``policy.programs``.
    A plugin may signal itself and the programs it started (:attr:`_children`)."""

    _children: set[int]
    """Process ids the wrapped ``fork_exec`` started (see _wrap_fork_exec)."""
    _inside: threading.local
    """``busy`` while the guard reads /proc itself (see _parent_of)."""

    def _check_program(self, name: Any, env: Any = None) -> None:
        text = fsdecode(name)
        if text is None:
            return
        path = None
        if isinstance(env, Mapping):
            value = env.get("PATH", env.get(b"PATH"))
            path = os.fsdecode(value) if value is not None else None
        found = find_program(text, path if path is not None else os.environ.get("PATH"))
        if found is None:
            return  # nothing by that name: the launch fails on its own
        if found in self.policy.programs:
            return
        grant = text if os.sep not in text else found
        self._refuse("run", found, f"subprocess:{grant}")

    def _popen(self, args: tuple[Any, ...]) -> None:
        executable, argv, _cwd, env = args[:4]
        if executable is None:
            if not isinstance(argv, (str, bytes)):
                if not argv:
                    return  # nothing to run: Popen fails on its own
                argv = argv[0]
            executable = argv
        self._check_program(executable, env)

    def _launch(self, path_index: int, env_index: int) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            env = args[env_index] if len(args) > env_index else None
            self._check_program(args[path_index], env)

        return check

    def _system(self, args: tuple[Any, ...]) -> None:
        self._check_program("/bin/sh")  # os.system runs its command through the shell

    def _pty(self, args: tuple[Any, ...]) -> None:
        argv = args[0]
        self._check_program(argv if isinstance(argv, (str, bytes)) else argv[0])

    def _fork(self, args: tuple[Any, ...]) -> None:
        self._refuse(
            "fork",
            "its process",
            None,
            "a copy of the plugin process would outlive the host's watch; run a declared "
            "program with subprocess instead (subprocess:PROGRAM)",
        )

    def _kill(self, args: tuple[Any, ...]) -> None:
        pid, sig = args[0], args[1]
        if sig == 0 or pid == os.getpid() or pid in self._children:
            return
        if isinstance(pid, int) and pid > 0 and self._parent_of(pid) == os.getpid():
            return
        self._refuse(
            "signal",
            f"process {pid}",
            None,
            "a plugin may signal only itself and the programs it started",
        )

    def _killpg(self, args: tuple[Any, ...]) -> None:
        self._refuse(
            "signal",
            f"process group {args[0]}",
            None,
            "its process group is the host's; a plugin may signal only itself and the "
            "programs it started",
        )

    def _prlimit(self, args: tuple[Any, ...]) -> None:
        if args[0] not in (0, os.getpid()):
            self._refuse("change the limits of", f"process {args[0]}", None, "")

    def _parent_of(self, pid: int) -> int | None:
        self._inside.busy = True
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
            return int(stat.rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        finally:
            self._inside.busy = False

    def _wrap_fork_exec(self) -> None:
        """``_posixsubprocess.fork_exec`` raises no audit event, and
        ``multiprocessing.util.spawnv_passfds`` calls it: a plugin's own ``spawn`` child
        would be a fresh interpreter without this hook. Wrapped (where the standard library
        looks it up at each call), it checks the program the launch would run - the first
        executable of the candidates it is given, as ``execve`` tries them - and remembers
        the children it started (which the plugin may then signal)."""
        import _posixsubprocess
        import subprocess

        original = _posixsubprocess.fork_exec
        children = self._children
        check = self._check_program

        def fork_exec(*args: Any, **kwargs: Any) -> Any:
            candidates = args[1] if len(args) > 1 else kwargs.get("executable_list", ())
            for candidate in candidates or ():
                path = os.fsdecode(candidate)
                if os.path.isfile(path) and os.access(path, os.X_OK):
                    check(path)
                    break
            pid = original(*args, **kwargs)
            children.add(pid)
            return pid

        setattr(_posixsubprocess, "fork_exec", fork_exec)  # noqa: B010
        if hasattr(subprocess, "_fork_exec"):  # 3.12+: subprocess keeps its own reference
            setattr(subprocess, "_fork_exec", fork_exec)  # noqa: B010

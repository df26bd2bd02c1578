"""Crash reporting: why a plugin's child ended, in words an operator can act on, and where it
was when it did.

A report names the exit status or the signal (SIGSEGV, SIGXCPU, SIGKILL...), a ``MemoryError``
with the limit, or the timeout, and, when :mod:`faulthandler` caught it, the Python stack: the
child points faulthandler at a :class:`CrashLog` the host reads after a crash, or after it
sends SIGUSR1 to a call that overran its deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Any

from .wire import EXIT_OUT_OF_MEMORY, Limits

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


def describe_exit(exitcode: int | None, limits: Limits) -> tuple[str, str, str | None]:
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


class CrashLog:
    """The file one plugin's children write their faulthandler output to.

    Made on first use and kept across restarts (each child truncates it); removed by
    :meth:`remove`, or when its owner is collected.
    """

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self.path: str | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def ensure(self) -> str | None:
        """The file's path, made if need be; None when no temporary file can be made."""
        if self.path is None:
            slug = re.sub(r"[^0-9A-Za-z_.-]", "_", self.plugin)
            try:
                fd, path = tempfile.mkstemp(prefix=f"stonks-plugin-{slug}-", suffix=".log")
            except OSError:
                return None
            os.close(fd)
            self.path = path
            self._finalizer = weakref.finalize(self, _remove_file, path)
        return self.path

    def read(self, limit: int = 16_000) -> str:
        path = self.path
        if path is None:
            return ""
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return ""
        return text[-limit:]

    def dump_stack(self, pid: int | None) -> str:
        """Ask the child's faulthandler for every thread's stack (SIGUSR1): it is written from
        the signal handler, so it works even when a loop holds the GIL."""
        path = self.path
        if path is None or pid is None:
            return ""
        try:
            before = os.path.getsize(path)
            os.kill(pid, signal.SIGUSR1)
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
        return self.read()

    def remove(self) -> None:
        """Delete the file; the next :meth:`ensure` makes a new one."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = self.path = None


def _remove_file(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)

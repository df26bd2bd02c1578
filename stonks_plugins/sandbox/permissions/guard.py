"""The audit hook (PEP 578) that holds a plugin's child to its :class:`.policy.Policy`: which
audit event each check answers, and the hook that dispatches them. The checks are
:mod:`.file_checks`, :mod:`.network_checks` and :mod:`.process_checks`; a refusal
(:mod:`.refusals`) fails the load or call it happened in."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from .file_checks import walk_trees_by_path
from .grammar import normal_host
from .network_checks import NetworkChecks
from .policy import Policy
from .process_checks import ProcessChecks
from .refusals import Denied, Refusal, describe_refusals

__all__ = ["Denied", "Guard", "Refusal", "describe_refusals"]


class Guard(NetworkChecks, ProcessChecks):
    """The audit hook of one plugin process, and the refusals it recorded.

    One per process (an audit hook cannot be removed): :meth:`install` once, then
    :meth:`take` after each request. Refusals are recorded from every thread - the plugin's
    own threads included - and reported with the next request's reply.
    """

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self._children = set()
        self._resolved = {}
        self._inside = threading.local()
        self._installed = False
        self._own_names = frozenset(
            normal_host(n) for n in (socket.gethostname(), "localhost", "127.0.0.1", "::1")
        )
        self._handlers: dict[str, Callable[[tuple[Any, ...]], None]] = {
            "open": self._open,
            "os.listdir": self._list,
            "os.scandir": self._list,
            "os.chdir": self._list,
            "os.remove": self._write_at(0, 1),
            "os.rmdir": self._write_at(0, 1),
            "os.mkdir": self._write_at(0, 2),
            "os.chmod": self._write_at(0, 2),
            "os.chown": self._write_at(0, 3),
            "os.utime": self._write_at(0, 3),
            "os.truncate": self._write_at(0, None),
            "os.chflags": self._write_at(0, None),
            "os.lchflags": self._write_at(0, None),
            "os.setxattr": self._write_at(0, None),
            "os.removexattr": self._write_at(0, None),
            "os.getxattr": self._read_at(0),
            "os.listxattr": self._read_at(0),
            "os.rename": self._write_pair,
            "os.link": self._write_pair,
            "os.symlink": self._write_at(1, 2),
            "sqlite3.connect": self._sqlite,
            "sqlite3.enable_load_extension": self._sqlite_extension,
            "sqlite3.load_extension": self._sqlite_extension,
            "socket.connect": self._connect("connect to"),
            "socket.bind": self._connect("listen on"),
            "socket.sendto": self._connect("send to"),
            "socket.sendmsg": self._connect("send to"),
            "socket.getaddrinfo": self._lookup,
            "socket.gethostbyname": self._lookup,
            "socket.gethostbyaddr": self._lookup,
            "socket.getnameinfo": self._lookup_address,
            "socket.sethostname": self._never("change the host name", ""),
            "subprocess.Popen": self._popen,
            "os.exec": self._launch(0, 2),
            "os.posix_spawn": self._launch(0, 2),
            "os.spawn": self._launch(1, 3),
            "os.system": self._system,
            "pty.spawn": self._pty,
            "os.fork": self._fork,
            "os.forkpty": self._fork,
            "os.kill": self._kill,
            "os.killpg": self._killpg,
            "resource.prlimit": self._prlimit,
        }

    def install(self) -> None:
        """Start refusing. Call once the child's own imports are done, before plugin code."""
        if self._installed:
            return
        self._installed = True
        self._wrap_fork_exec()
        self._wrap_lookups()
        walk_trees_by_path()
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        handler = self._handlers.get(event)
        if handler is None:
            if event.startswith("ctypes.") and not (event == "ctypes.dlopen" and args[0] is None):
                # "import ctypes" opens the running program itself (ctypes.dlopen(None)); it
                # is what ctypes does next - call a function, read memory - that is refused.
                self._refuse(
                    "use ctypes", f"({event})", None, "native calls would bypass every permission"
                )
            return
        if getattr(self._inside, "busy", False):
            return  # the guard's own look at /proc (see _kill)
        handler(args)

    def _never(self, action: str, note: str) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            self._refuse(action, "", None, note)

        return check


Guard.own_files = frozenset(
    str(getattr(sys.modules[cls.__module__], "__file__", ""))
    for cls in Guard.__mro__
    if cls.__module__.startswith(f"{__package__}.")
)

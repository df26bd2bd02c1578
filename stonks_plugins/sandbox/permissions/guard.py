"""The audit hook (PEP 578) that holds a plugin's child to its :class:`.policy.Policy`, and the
refusals it records: a refusal fails the load or call it happened in."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ...errors import StonksPluginsError
from .grammar import normal_host
from .policy import (
    Policy,
    _real,
    _under,
    find_program,
)

# -- refusals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One thing the plugin was not allowed to do."""

    action: str
    """What it tried, worded to follow "may not": "read", "connect to", "run"..."""
    target: str
    """The path, address or program."""
    grant: str | None
    """The permission that would allow it, or None when none can."""
    note: str = ""
    """Why none can, or what to do instead (when ``grant`` is None)."""
    stack: str = ""
    """Where the plugin's code was (file, line, function; no source read)."""

    def describe(self, plugin: str) -> str:
        text = f"plugin '{plugin}' may not {self.action} {self.target}"
        if self.grant is not None:
            return f'{text}: declare "{self.grant}" in its manifest\'s permissions'
        return f"{text}: {self.note}" if self.note else text


def describe_refusals(plugin: str, refusals: Sequence[Refusal]) -> str:
    """One message for a request's refusals: the first in full, then how many more."""
    first = refusals[0].describe(plugin)
    others = {r.describe(plugin) for r in refusals[1:]} - {first}
    if not others:
        return first
    shown = sorted(others)[:2]
    more = len(others) - len(shown)
    tail = "; ".join(shown) + (f"; and {more} more" if more else "")
    return f"{first} (also refused: {tail})"


class Denied(StonksPluginsError, PermissionError):
    """What the plugin's code gets for a refusal (an ``OSError``, as the operating system's
    own refusal would be)."""


# -- the guard ----------------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_MAX_RECORDED = 50
_ANY_PORT: None = None


def _fsdecode(path: Any) -> str | None:
    """A path argument as text; None for what is not a path (a descriptor, None)."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(path)
    return None


def _at(path: str, dir_fd: Any) -> str:
    """``path`` given relative to the directory descriptor ``dir_fd``, made absolute."""
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
        try:
            return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        except OSError:
            return os.path.join(f"/proc/self/fd/{dir_fd}", path)  # unknown: refused below
    return path


def _shown(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


class Guard:
    """The audit hook of one plugin process, and the refusals it recorded.

    One per process (an audit hook cannot be removed): :meth:`install` once, then
    :meth:`take` after each request. Refusals are recorded from every thread - the plugin's
    own threads included - and reported with the next request's reply.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._refusals: list[Refusal] = []
        self._children: set[int] = set()
        self._resolved: dict[str, set[str]] = {}
        """IP address -> declared host names it was looked up from (see _wrap_lookups)."""
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

    # -- the caller's side ------------------------------------------------------------------

    def install(self) -> None:
        """Start refusing. Call once the child's own imports are done, before plugin code."""
        if self._installed:
            return
        self._installed = True
        self._wrap_fork_exec()
        self._wrap_lookups()
        _walk_trees_by_path()
        sys.addaudithook(self._hook)

    @property
    def refused(self) -> bool:
        """Something was refused since the last :meth:`take`."""
        return bool(self._refusals)

    def take(self) -> list[Refusal]:
        """The refusals recorded since the last call (and forget them)."""
        if not self._refusals:
            return []
        taken, self._refusals[:] = list(self._refusals), []
        return taken

    # -- the hook -----------------------------------------------------------------------------

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

    def _refuse(self, action: str, target: str, grant: str | None, note: str = "") -> NoReturn:
        try:
            # File, line and function only: reading source lines here would open files
            # from inside the hook.
            frames = traceback.StackSummary.extract(
                traceback.walk_stack(sys._getframe(2)), limit=25, lookup_lines=False
            )
            stack = "".join(
                f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
                for f in reversed(frames)
                if f.filename != __file__  # the guard's own frames say nothing
            )
        except Exception:  # the report must not fail where the refusal must not
            stack = ""
        refusal = Refusal(action, target, grant, note, stack)
        if len(self._refusals) < _MAX_RECORDED:
            self._refusals.append(refusal)
        raise Denied(errno.EACCES, refusal.describe(self.policy.plugin))

    # -- files ----------------------------------------------------------------------------------

    def _check_read(self, path: str) -> None:
        real = _real(path)
        if not self.policy.may_read(real):
            self._refuse("read", real, self._grant("read", real))

    def _check_write(self, path: str) -> None:
        real = _real(path)
        if not self.policy.may_write(real):
            self._refuse("write", real, self._grant("write", real))

    def _grant(self, kind: str, real: str) -> str | None:
        return None if _under(real, self.policy.deny) else f"{kind}:{real}"

    def _open(self, args: tuple[Any, ...]) -> None:
        path = _fsdecode(args[0])
        if path is None:
            return  # an open descriptor: checked when it was opened
        mode, flags = args[1], args[2]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writing:
            self._check_write(path)
        else:
            self._check_read(path)

    def _list(self, args: tuple[Any, ...]) -> None:
        path = "." if args[0] is None else _fsdecode(args[0])
        if path is None:
            return
        real = _real(path)
        if not self.policy.may_list(real):
            self._refuse("list", real, self._grant("read", real))

    def _write_at(self, index: int, dir_fd_index: int | None) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            path = _fsdecode(args[index])
            if path is None:
                return
            dir_fd = args[dir_fd_index] if dir_fd_index is not None else None
            self._check_write(_at(path, dir_fd))

        return check

    def _read_at(self, index: int) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            path = _fsdecode(args[index])
            if path is not None:
                self._check_read(path)

        return check

    def _write_pair(self, args: tuple[Any, ...]) -> None:
        # rename and link: both ends. A hard link is the file itself under another name, so
        # linking a file needs the right to change it.
        for index, fd_index in ((0, 2), (1, 3)):
            path = _fsdecode(args[index])
            if path is not None:
                self._check_write(_at(path, args[fd_index] if len(args) > fd_index else None))

    def _sqlite(self, args: tuple[Any, ...]) -> None:
        database = _fsdecode(args[0])
        if database is None or database in ("", ":memory:"):
            return
        if database.startswith("file:"):
            from urllib.parse import parse_qs, unquote, urlsplit

            parts = urlsplit(database)
            query = parse_qs(parts.query)
            mode = (query.get("mode") or [""])[-1]
            if mode == "memory" or (not parts.path and not parts.netloc):
                return
            path = unquote(parts.path)
            if mode == "ro":
                self._check_read(path)
                return
            self._check_write(path)
            return
        # SQLite opens the file itself (no "open" event) and for writing unless told not to.
        self._check_write(database)

    def _sqlite_extension(self, args: tuple[Any, ...]) -> None:
        if len(args) >= 2 and args[1] is False:
            return  # enable_load_extension(False)
        self._refuse(
            "load", "an SQLite extension", None, "no permission allows loading native code"
        )

    # -- network --------------------------------------------------------------------------------

    def _connect(self, action: str) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            sock, address = args[0], args[1]
            if address is None:
                return  # sendto/sendmsg on a connected socket: checked at connect
            family = getattr(sock, "family", None)
            if family == socket.AF_UNIX:
                self._unix(action, address)
                return
            if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
                self._refuse(
                    action,
                    f"a socket of family {family!r}",
                    None,
                    "only IPv4 and IPv6 hosts (network:HOST[:PORT]) can be declared",
                )
            host = address[0]
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            host = normal_host(host or "0.0.0.0")
            port = address[1] if isinstance(address[1], int) else None
            if self.policy.may_connect(host, port):
                return
            for name in self._resolved.get(host, ()):
                if self.policy.may_connect(name, port):
                    return
            self._refuse(action, _shown(host, port), f"network:{_shown(host, port)}")

        return check

    def _unix(self, action: str, address: Any) -> None:
        path = _fsdecode(address)
        if path is None or path.startswith("\0") or not path:
            self._refuse(
                action, "an abstract Unix socket", None, "abstract Unix sockets cannot be declared"
            )
        self._check_write(path)  # as the system decides: connecting needs write access

    def _lookup(self, args: tuple[Any, ...]) -> None:
        host = args[0]
        if host is None:
            return  # the local addresses (a server's bind): no lookup
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        name = normal_host(str(host))
        if not name or self.policy.may_connect(name, _ANY_PORT) or name in self._resolved:
            return
        if name in self._own_names:
            return  # this machine's own names (socket.getfqdn): a lookup, not a connection
        # A lookup is for a connection (getaddrinfo's port is the one it will go to): the
        # permission to declare is the connection's.
        port = args[1] if len(args) > 1 and isinstance(args[1], int) else None
        action = "look up" if port is None else "connect to"
        self._refuse(action, _shown(name, port), f"network:{_shown(name, port)}")

    def _lookup_address(self, args: tuple[Any, ...]) -> None:
        sockaddr = args[0]
        if isinstance(sockaddr, tuple) and sockaddr:
            self._lookup((sockaddr[0],))

    def _wrap_lookups(self) -> None:
        """Learn the addresses declared host names resolve to, so a connection to one of
        them (what ``create_connection`` and every HTTP client make) is the declared host's.
        ``socket.getaddrinfo`` is looked up on the module at each call, by the standard
        library and by urllib3, httpx and asyncio alike."""
        lookup = socket.getaddrinfo
        resolved = self._resolved
        policy = self.policy

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            found = lookup(host, *args, **kwargs)
            if isinstance(host, (str, bytes)):
                name = normal_host(os.fsdecode(host))
                if policy.may_connect(name, _ANY_PORT):
                    for entry in found:
                        resolved.setdefault(normal_host(str(entry[4][0])), set()).add(name)
            return found

        getaddrinfo.__doc__ = lookup.__doc__
        socket.getaddrinfo = getaddrinfo

    # -- processes ----------------------------------------------------------------------------

    def _check_program(self, name: Any, env: Any = None) -> None:
        text = _fsdecode(name)
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

    def _never(self, action: str, note: str) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            self._refuse(action, "", None, note)

        return check

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


def _walk_trees_by_path() -> None:
    """Make ``shutil.rmtree`` name every path in full. Its descriptor-based walk opens each
    subdirectory relative to its parent's descriptor, and the ``open`` audit event does not
    carry that descriptor: the check would see a bare name and refuse the removal of a
    declared writable tree (``tempfile.TemporaryDirectory`` cleans up with ``rmtree``). Best
    effort: these are private names of ``shutil`` (3.11 reads the first at each call,
    3.12+ the second)."""
    if hasattr(shutil, "_use_fd_functions"):
        shutil._use_fd_functions = False
    unsafe = getattr(shutil, "_rmtree_unsafe", None)
    if unsafe is not None and hasattr(shutil, "_rmtree_impl"):
        shutil._rmtree_impl = unsafe

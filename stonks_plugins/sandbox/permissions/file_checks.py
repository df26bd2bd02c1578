"""The guard's checks of files: opens, listings and changes of paths, and SQLite databases
(which SQLite opens itself, without an ``open`` event)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

from .policy import _real, _under
from .refusals import Refuser

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def fsdecode(path: Any) -> str | None:
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


class FileChecks(Refuser):
    """Audit event handlers for paths, checked against ``policy.may_read`` / ``may_write``
    / ``may_list``."""

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
        path = fsdecode(args[0])
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
        path = "." if args[0] is None else fsdecode(args[0])
        if path is None:
            return
        real = _real(path)
        if not self.policy.may_list(real):
            self._refuse("list", real, self._grant("read", real))

    def _write_at(self, index: int, dir_fd_index: int | None) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            path = fsdecode(args[index])
            if path is None:
                return
            dir_fd = args[dir_fd_index] if dir_fd_index is not None else None
            self._check_write(_at(path, dir_fd))

        return check

    def _read_at(self, index: int) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            path = fsdecode(args[index])
            if path is not None:
                self._check_read(path)

        return check

    def _write_pair(self, args: tuple[Any, ...]) -> None:
        # rename and link: both ends. A hard link is the file itself under another name, so
        # linking a file needs the right to change it.
        for index, fd_index in ((0, 2), (1, 3)):
            path = fsdecode(args[index])
            if path is not None:
                self._check_write(_at(path, args[fd_index] if len(args) > fd_index else None))

    def _sqlite(self, args: tuple[Any, ...]) -> None:
        database = fsdecode(args[0])
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


def walk_trees_by_path() -> None:
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

"""Reading the files a plugin supplies (its manifest, its config schema): regular files only,
and no more than a limit.

A plugin folder is written by a stranger or a careless operator. A FIFO named as a file
blocks ``open()`` until a writer comes (forever: the request, the page or the sync holding it
never returns), a device never ends, and a 50 MB manifest is stored and served on every page.
So every read of a plugin's file goes through :func:`read_plugin_file`, which opens without
blocking, looks at what it opened (``fstat``), and reads at most ``limit`` bytes.

Standard library only: settings import :mod:`stonks_plugins.django_apps`, which reads manifests
with this before Django is set up, and the process-isolation child imports no Django. The
limits themselves are settings (:func:`manifest_limit`, :func:`schema_limit`), read when
called.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import StonksPluginsError

_O_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_O_PROBE = _O_READ | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
"""Opening a name before knowing it is a regular file: a FIFO must not block until a writer
comes, nor a terminal become ours (the open file's ``fstat`` then refuses both)."""
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CHUNK = 1 << 16

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class PluginFileError(StonksPluginsError, OSError):
    """A plugin's file that is refused without being read: not a regular file, or larger
    than the limit. ``strerror`` says which, in words an operator can act on."""


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, for a message."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_regular(path: str, mode: int) -> PluginFileError:
    return PluginFileError(
        errno.EINVAL,
        f"is {kind_of(mode)}, not a regular file; replace it with a regular file",
        path,
    )


def too_large(path: str, size: int, limit: int, setting: str = "") -> PluginFileError:
    where = f" ({setting})" if setting else ""
    return PluginFileError(
        errno.EFBIG,
        f"is {size} bytes, more than the limit of {limit} bytes{where}; nothing of it was read",
        path,
    )


def open_regular(path: str, *, follow_symlinks: bool = True) -> tuple[int, os.stat_result]:
    """An open descriptor on ``path`` and its ``fstat``, if it is a regular file; raises
    :class:`PluginFileError` for anything else (closing what it opened), ``OSError`` when
    it cannot be opened. ``follow_symlinks=False`` refuses a symlink as the last component
    (for a path already resolved and checked: a link put there since is a race)."""
    flags = _O_PROBE if follow_symlinks else _O_PROBE | _O_NOFOLLOW
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(path, st.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_fd(fd: int, size: int, limit: int, path: str = "", setting: str = "") -> bytes:
    """The contents of a regular file open on ``fd`` whose ``fstat`` said ``size`` bytes, at
    most ``limit`` of them: :class:`PluginFileError` when it holds more (it may have grown
    since the ``fstat``). One ``read`` in the usual case, where the size is right."""
    if size > limit:
        raise too_large(path, size, limit, setting)
    want = size + 1  # one byte more than the size, to see the end
    chunk = os.read(fd, want)
    if len(chunk) < want:
        return chunk  # a regular file's read stops short only at its end
    chunks, total = [chunk], len(chunk)
    while chunk and total <= limit:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise too_large(path, total, limit, setting)
    return b"".join(chunks)


def read_plugin_file(
    path: str | os.PathLike[str], limit: int, *, follow_symlinks: bool = True, setting: str = ""
) -> bytes:
    """The bytes of a plugin's file, if it is a regular file of at most ``limit`` bytes.

    Raises :class:`PluginFileError` (an ``OSError``) for a FIFO, a device, a socket, a
    directory or a file over the limit (``setting`` names the setting that sets it, for the
    message), and ``OSError`` when it cannot be opened or read. Never blocks on a FIFO."""
    return _read_stamped(os.fspath(path), limit, follow_symlinks, setting)[1]


def _read_stamped(
    path: str, limit: int, follow_symlinks: bool, setting: str
) -> tuple[os.stat_result, bytes]:
    """:func:`read_plugin_file`, with the ``fstat`` of the very file the bytes came from."""
    fd, st = open_regular(path, follow_symlinks=follow_symlinks)
    try:
        return st, read_fd(fd, st.st_size, limit, path, setting)
    finally:
        os.close(fd)


_read_at_start: dict[str, tuple[os.stat_result, bytes]] = {}
"""Manifests settings read for ``plugin_apps()`` (see :func:`read_manifest_once`), each with
the ``fstat`` of the open file it was read from, until discovery in ``ready()`` takes them."""


def read_manifest_once(path: str, limit: int, setting: str = "") -> bytes:
    """:func:`read_plugin_file` for a manifest read at start-up before discovery reads it
    again: the bytes are kept, with the stamp of the very file they came from, for
    :func:`take_manifest_read` (start-up then reads each manifest once, not twice)."""
    st, data = _read_stamped(path, limit, True, setting)
    _read_at_start[path] = (st, data)
    return data


def take_manifest_read(path: str, limit: int) -> tuple[os.stat_result, bytes] | None:
    """What :func:`read_manifest_once` read of ``path`` (forgotten once taken), if it is
    within ``limit`` and the file is still the one read (same inode, size and mtime: one
    ``stat``, where reading it again takes an open, an ``fstat``, a read and a close);
    None: read the file."""
    found = _read_at_start.pop(path, None) if _read_at_start else None
    if found is None or len(found[1]) > limit:
        return None
    then = found[0]
    try:
        now = os.stat(path)
    except OSError:
        return None
    if (now.st_ino, now.st_size, now.st_mtime_ns) != (then.st_ino, then.st_size, then.st_mtime_ns):
        return None
    return found


def forget_manifest_reads() -> None:
    """Drop what start-up read and discovery did not take (it keeps what it needs)."""
    _read_at_start.clear()


def describe(exc: OSError) -> str:
    """What went wrong with a plugin's file, worded to follow its path in a message: "is a
    FIFO (named pipe), not a regular file...", "is 52428800 bytes, more than the limit...",
    "cannot be read: Permission denied"."""
    if isinstance(exc, PluginFileError) and exc.strerror:
        return exc.strerror
    return f"cannot be read: {exc.strerror or exc}"


def _setting(name: str) -> int:
    """A limit from the settings, or its default while they are not set up: reading them
    then would set them up from a settings module still being imported (``django_apps``
    reads manifests from there)."""
    from django.conf import settings

    from .conf import DEFAULTS, plugin_settings

    if not settings.configured:
        return int(DEFAULTS[name])
    return int(getattr(plugin_settings, name))


def manifest_limit() -> int:
    """``PLUGINS_MAX_MANIFEST_BYTES``: a larger ``plugin_manifest.json`` is not read."""
    return _setting("MAX_MANIFEST_BYTES")


def schema_limit() -> int:
    """``PLUGINS_MAX_SCHEMA_BYTES``: a larger config schema file is not read."""
    return _setting("MAX_SCHEMA_BYTES")


MANIFEST_SETTING = "PLUGINS_MAX_MANIFEST_BYTES"
SCHEMA_SETTING = "PLUGINS_MAX_SCHEMA_BYTES"

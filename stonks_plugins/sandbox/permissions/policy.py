"""What a plugin may read, write, connect to and launch: its folder, the Python installation,
the packages its child runs, and what it declared."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .grammar import TMPDIR_TOKEN, HostRule, parse

SYSTEM_READABLE = (
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
    "/etc/localtime",
    "/etc/os-release",
    "/usr/lib/os-release",
)
"""System files any plugin may read: they hold nothing of the host's. The time zone database
(``zoneinfo.TZPATH``), the MIME type tables (``mimetypes.knownfiles``) and the interpreter's
executable (``platform.platform()`` reads it) are added to them."""
SYSTEM_WRITABLE = ("/dev/null",)


def _real(path: str) -> str:
    return os.path.realpath(path)


def _under(path: str, roots: Sequence[str]) -> bool:
    """``path`` is one of ``roots`` or inside one (each root ends with a separator)."""
    return any(path.startswith(root) or path + os.sep == root for root in roots)


def _dir_roots(paths: Iterable[str]) -> tuple[str, ...]:
    """Real paths with a final separator (so ``/a/b`` does not cover ``/a/bc``), sorted and
    without duplicates."""
    out = set()
    for path in paths:
        if not path:
            continue
        real = _real(path)
        out.add(real if real.endswith(os.sep) else real + os.sep)
    return tuple(sorted(out))


def python_installation() -> list[str]:
    """Where the interpreter's own code lives: the standard library (with its compiled
    modules), the site-packages of the environment and of the base interpreter, and the
    ``sys.path`` entries inside the interpreter's prefixes (a zipped standard library)."""
    paths = sysconfig.get_paths()
    found = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    import site

    found += list(getattr(site, "getsitepackages", list)())
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    prefixes = _dir_roots({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})
    found += [p for p in sys.path if p and _under(_real(p), prefixes)]
    return found


def own_packages() -> list[str]:
    """What the child itself imports from the project: ``stonks_plugins`` (the SDK, the
    loader) and ``stonks_overwatch``'s ``core`` package and ``__init__.py`` - not the whole
    project folder, which holds ``.env`` and the SQLite database."""
    import stonks_overwatch
    import stonks_overwatch.core
    import stonks_plugins

    found = [*stonks_plugins.__path__, *stonks_overwatch.core.__path__]
    if stonks_overwatch.__file__:
        found.append(stonks_overwatch.__file__)
    return found


def distribution_metadata() -> list[str]:
    """The ``*.dist-info`` and ``*.egg-info`` folders on ``sys.path`` outside the Python
    installation (a project installed in development mode keeps one in its folder):
    ``importlib.metadata`` reads every one of them to list distributions or entry points,
    and they hold names, versions and file lists, nothing secret."""
    found = []
    for entry in sys.path:
        folder = entry or os.getcwd()
        try:
            names = os.listdir(folder)
        except (OSError, TypeError):
            continue
        found += [
            os.path.join(folder, name)
            for name in names
            if name.endswith((".dist-info", ".egg-info"))
        ]
    return found


def _system_readable() -> list[str]:
    import mimetypes
    import zoneinfo

    return [*SYSTEM_READABLE, *zoneinfo.TZPATH, *mimetypes.knownfiles, sys.executable]


@dataclass(frozen=True)
class Policy:
    """What one plugin process may do, paths as real (resolved) paths."""

    plugin: str
    read: tuple[str, ...]
    """Directories (with a final separator) and files it may read; writable ones included."""
    write: tuple[str, ...]
    listable: tuple[str, ...] = ()
    """The ``sys.path`` entries: it may list them (the import system and importlib.metadata
    list each one to find anything) and open them (a zip of code), not read what is in them."""
    deny: tuple[str, ...] = ()
    """Never, whatever is declared: the host's database files."""
    hosts: tuple[HostRule, ...] = ()
    programs: Mapping[str, str] = field(default_factory=dict)
    """Real path of each declared program -> the permission that declares it."""

    def may_read(self, path: str) -> bool:
        if _under(path, self.deny):
            return False
        return _under(path, self.read) or path + os.sep in self.listable

    def may_write(self, path: str) -> bool:
        return not _under(path, self.deny) and _under(path, self.write)

    def may_list(self, path: str) -> bool:
        return self.may_read(path)

    def may_connect(self, host: str, port: int | None) -> bool:
        return any(rule.allows(host, port) for rule in self.hosts)

    @classmethod
    def build(
        cls,
        plugin: str,
        permissions: Iterable[str],
        folder: str | os.PathLike[str] | None,
        *,
        deny: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Policy:
        """The policy of a plugin folder (None: none) and its declared permissions, with the
        defaults every plugin gets. Relative paths are taken from ``folder``; ``~`` is the
        user's home, ``$TMPDIR`` the temporary directory (``tempfile.gettempdir()``)."""
        environ = os.environ if environ is None else environ
        base = os.fspath(folder) if folder is not None else None
        read: list[str] = [
            *python_installation(),
            *own_packages(),
            *distribution_metadata(),
            *_system_readable(),
        ]
        write: list[str] = list(SYSTEM_WRITABLE)
        hosts: list[HostRule] = []
        programs: dict[str, str] = {}
        if base is not None:
            read.append(base)
        for text in permissions:
            perm = parse(text)
            if perm.kind in ("read", "write"):
                path = resolve_declared_path(perm.value, base)
                read.append(path)
                if perm.kind == "write":
                    write.append(path)
            elif perm.kind == "network":
                hosts.append(HostRule.parse(perm.value))
            elif perm.kind == "subprocess":
                found = find_program(perm.value, environ.get("PATH"))
                if found is not None:
                    programs[found] = str(perm)
        # Every entry, a folder or not ("" is the working directory; a path hook's marker
        # is neither): importlib.metadata lists each one, and swallows the error.
        listable = [p or os.getcwd() for p in sys.path if isinstance(p, str)]
        return cls(
            plugin=plugin,
            read=_dir_roots(read),
            write=_dir_roots(write),
            listable=_dir_roots(listable),
            deny=_dir_roots(deny),
            hosts=tuple(hosts),
            programs=programs,
        )


def resolve_declared_path(value: str, folder: str | None) -> str:
    """A ``read:``/``write:`` path as an absolute one (not yet resolved: it may not exist)."""
    if value == "~" or value.startswith("~/"):
        return os.path.expanduser(value)
    if value == TMPDIR_TOKEN or value.startswith(TMPDIR_TOKEN + "/"):
        import tempfile

        return tempfile.gettempdir() + value[len(TMPDIR_TOKEN) :]
    if os.path.isabs(value):
        return value
    if folder is None:
        raise ValueError(
            f"'{value}' is relative to the plugin folder, and this plugin has none; "
            "declare an absolute path"
        )
    return os.path.join(folder, value)


def find_program(name: str, path: str | None) -> str | None:
    """The real path of a program named like ``subprocess:`` and ``Popen`` name them: a path
    (absolute, or relative to the working directory) or a name looked up on ``path``."""
    if os.sep in name:
        return _real(name) if os.path.isfile(name) else None
    found = shutil.which(name, path=path if path is not None else os.defpath)
    return _real(found) if found else None

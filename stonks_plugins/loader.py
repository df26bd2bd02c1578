"""Import plugin code, lazily and without collisions (the seed's PluginLoader).

A directory plugin is mounted as a synthetic package ``_stonks_plugin_pkgs.<slug>`` whose
``__path__`` is the plugin folder, so its own packages import as
``_stonks_plugin_pkgs.<slug>.<pkg>``: two plugins that both ship ``broker/`` never meet in
``sys.modules``, and no folder is put on ``sys.path``. Inside a plugin, imports of its own
modules are therefore relative (``from .config import X``). Installed distributions import
under their real names.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from importlib.machinery import ModuleSpec
from typing import Any

from . import module_names
from .discovery.candidate import Candidate, Source
from .errors import PluginError, ReasonCode
from .instance_names import is_instance
from .trust.gate import before_import

PKG_ROOT = module_names.PKG_ROOT
_lock = threading.Lock()  # guards _mount_locks and the synthetic root, never plugin code
_mount_locks: dict[str, threading.RLock] = {}


def _mount_lock(prefix: str) -> threading.RLock:
    """One lock per plugin: a folder ``__init__.py`` that hangs holds only its own."""
    with _lock:
        lock = _mount_locks.get(prefix)
        if lock is None:
            lock = _mount_locks[prefix] = threading.RLock()
        return lock


def package_prefix(name: str) -> str:
    """The package a directory plugin imports under; distinct names never share one (see
    :mod:`stonks_plugins.module_names`: ``acme-broker`` and ``acme.broker`` must not run each
    other's files)."""
    return module_names.package_prefix(name)


def _ensure_root() -> None:
    if PKG_ROOT not in sys.modules:
        root = types.ModuleType(PKG_ROOT, "Synthetic parent of directory plugins' packages.")
        root.__path__ = []
        root.__spec__ = ModuleSpec(PKG_ROOT, None, is_package=True)
        sys.modules[PKG_ROOT] = root


def mount(candidate: Candidate) -> str:
    """Make a directory plugin importable; returns the module prefix ('' for distributions).
    Its files are verified first (``integrity_failed``: nothing of it runs)."""
    before_import(candidate)
    if candidate.source is not Source.DIRECTORY or candidate.root is None:
        return ""
    prefix = package_prefix(candidate.name)
    with _mount_lock(prefix):
        existing = sys.modules.get(prefix)
        if existing is not None and list(getattr(existing, "__path__", [])) == [
            str(candidate.root)
        ]:
            return prefix
        if existing is not None:
            # Mounted before from another folder: its submodules would still be served.
            for stale in _modules_under(prefix, itself=False):
                sys.modules.pop(stale, None)
        with _lock:
            _ensure_root()
        init = candidate.root / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(
                prefix, init, submodule_search_locations=[str(candidate.root)]
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[prefix] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[prefix]
                raise
        else:
            module = types.ModuleType(prefix)
            module.__path__ = [str(candidate.root)]
            module.__spec__ = ModuleSpec(prefix, None, is_package=True)
            module.__spec__.submodule_search_locations = [str(candidate.root)]
            sys.modules[prefix] = module
    return prefix


def split_ref(ref: str) -> tuple[str, str]:
    """'pkg.mod:Obj.attr' or 'pkg.mod.Obj' -> ('pkg.mod', 'Obj.attr')."""
    if ":" in ref:
        module, attr = ref.split(":", 1)
    else:
        module, _, attr = ref.rpartition(".")
    return module, attr


def resolve(candidate: Candidate, ref: str) -> Any:
    """Import the object ``ref`` names in the plugin's code; failures become ``import_error``
    with the module, the exception and where to look."""
    module_name, attr = split_ref(ref)
    try:
        prefix = mount(candidate)
        full = f"{prefix}.{module_name}" if prefix else module_name
        module = importlib.import_module(full)
    except PluginError:
        raise  # the gate's integrity_failed keeps its code
    except Exception as exc:
        raise PluginError(
            candidate.name,
            ReasonCode.IMPORT_ERROR,
            f"importing '{module_name}' (for '{ref}') failed: {type(exc).__name__}: {exc}",
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(
                candidate.name,
                ReasonCode.IMPORT_ERROR,
                f"module '{module_name}' has no attribute '{attr}' (named by '{ref}')",
            ) from None
    return obj


def _modules_under(package: str, itself: bool = True) -> list[str]:
    """The modules of ``package`` imported so far (and ``package`` itself). Read off a copy
    of ``sys.modules``: another thread - a plugin's load going on in the background - may
    import a module meanwhile, and a dict that grows during its iteration raises."""
    below = package + "."
    return [m for m in list(sys.modules) if (itself and m == package) or m.startswith(below)]


def release(candidate: Candidate) -> list[str]:
    """Forget a plugin's modules so the next import reads its files again."""
    if candidate.source is Source.DIRECTORY:
        prefix = package_prefix(candidate.name)
        names = _modules_under(prefix)
    elif is_instance(candidate.name):
        # An installed plugin's instances import its package under its real name, shared
        # with the plugin (a directory plugin's instance has a package of its own).
        return []
    else:
        top = split_ref(candidate.entry_point or "")[0].split(".", 1)[0]
        names = _modules_under(top) if top else []
    for m in names:
        sys.modules.pop(m, None)
    importlib.invalidate_caches()
    return names

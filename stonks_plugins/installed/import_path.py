"""Where ``import TOP`` would load a distribution's top-level package from, told off the
listings of ``sys.path`` the scan already made, as ``find_spec`` finds it."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from typing import Any


class ImportPath:
    """``sys.path`` as one scan sees it: each entry listed once, the listing serving both to
    find the distributions in a folder and to tell the folder ``import TOP`` would load a
    top-level package from, as ``find_spec`` finds it, without a ``stat`` of every entry for
    every package. Only the usual case is answered that way (no finder before the path
    claims ``TOP``, no earlier entry holds anything named ``TOP``, and the distribution's own
    folder holds the package ``TOP``); anything else is ``find_spec``'s to say."""

    def __init__(self) -> None:
        path_finder = importlib.machinery.PathFinder
        meta = sys.meta_path
        self._before = (  # BuiltinImporter's answer is sys.builtin_module_names
            [
                f
                for f in meta[: meta.index(path_finder)]
                if f is not importlib.machinery.BuiltinImporter
            ]
            if path_finder in meta
            else None
        )
        # Where file names match case-insensitively the listing's spelling does not decide.
        self._exact = not (
            sys.platform.startswith(("win", "cygwin", "darwin")) and ("PYTHONCASEOK" in os.environ)
        )
        self._names: dict[int, list[str] | None] = {}
        self._before_index: dict[int, tuple[frozenset[str], list[str]]] = {}
        self._own: dict[int, frozenset[str]] = {}
        self._finders: dict[str, Any] = {}

    def names(self, index: int) -> list[str] | None:
        """The names in ``sys.path[index]``: empty for a folder that cannot be read or an
        entry nothing can be imported from (the import system finds nothing there either);
        None for an entry that is not a folder (a zip file, a path hook's own entry)."""
        if index in self._names:
            return self._names[index]
        entry = sys.path[index]
        names: list[str] | None = []
        if isinstance(entry, str):  # the import system skips anything else
            where = entry or "."
            try:
                names = os.listdir(where)
            except OSError:  # unreadable: nothing there; else a zip file, a hook's entry...
                names = [] if os.path.isdir(where) else None
        self._names[index] = names
        return names

    def _earlier(self, index: int) -> tuple[frozenset[str], list[str]]:
        """The names in the folders before ``sys.path[index]``, as one set, and the entries
        before it that are not folders, in order (made once per position)."""
        found = self._before_index.get(index)
        if found is None:
            names: set[str] = set()
            opaque: list[str] = []
            for earlier in range(index):
                listed = self.names(earlier)
                if listed is None:
                    opaque.append(sys.path[earlier])
                else:
                    names.update(listed)
            found = self._before_index[index] = (frozenset(names), opaque)
        return found

    def _finder(self, entry: str) -> Any:
        """The path-entry finder the import system uses for ``entry`` (None: nothing can be
        imported from it; ``...``: one that cannot be told without importing), found as
        ``PathFinder`` finds it: its cache, else the first path hook that accepts it."""
        found = self._finders.get(entry, _UNSEEN)
        if found is _UNSEEN:
            found = sys.path_importer_cache.get(entry, _UNSEEN)
            if found is _UNSEEN:
                found = None
                for hook in sys.path_hooks:
                    try:
                        found = hook(entry)
                        break
                    except ImportError:
                        continue
                    except Exception:  # a hook that fails otherwise: ask the import system
                        found = ...
                        break
            self._finders[entry] = found
        return found

    def _shadowed(self, top: str, index: int) -> bool:
        """Whether an entry before ``sys.path[index]`` may provide ``top``: a folder holding
        ``top`` (a package, or a namespace portion), or a module ``top.py``, ``top.so``...;
        or an entry that is not a folder whose path-entry finder finds it (one not made yet
        counts as yes). Or ``sys.path[index]`` itself holds no ``top``."""
        names, opaque = self._earlier(index)
        if not names.isdisjoint((top, *(top + suffix for suffix in _SUFFIXES))):
            return True
        for entry in opaque:
            finder = self._finder(entry)
            if finder is ... or (finder is not None and finder.find_spec(top) is not None):
                return True
        own = self._own.get(index)
        if own is None:
            listed = self.names(index)
            own = self._own[index] = frozenset(listed or ())
        return top not in own

    def package_dir(self, top: str, index: int | None) -> str | None:
        """The folder of top-level package ``top`` for a distribution found in
        ``sys.path[index]`` (None: elsewhere)."""
        if index is None or self._before is None or not self._exact or top in sys.modules:
            return _spec_dir(top)
        if top in sys.builtin_module_names:
            return _spec_dir(top)
        for finder in self._before:  # they come first: a name one claims is not the folder's
            if finder.find_spec(top, None) is not None:
                return _spec_dir(top)
        if self._shadowed(top, index):
            return _spec_dir(top)
        entry = sys.path[index]
        if os.path.isfile(f"{entry or '.'}{os.sep}{top}{os.sep}__init__.py"):
            return _as_found(entry, top)
        return _spec_dir(top)


_UNSEEN: Any = object()
_SUFFIXES = tuple(importlib.machinery.all_suffixes())
"""What a module file's name may end with (``.py``, ``.pyc``, the extension suffixes)."""


def _as_found(entry: str, top: str) -> str:
    """The package folder as ``find_spec`` spells it (its ``FileFinder`` makes the
    ``sys.path`` entry absolute, without normalising it, then joins)."""
    if not entry or entry == ".":
        base = os.getcwd()
    elif not os.path.isabs(entry):
        base = os.path.join(os.getcwd(), entry)
    else:
        base = entry
    return base.rstrip(_SEPARATORS) + os.sep + top


_SEPARATORS = os.sep + (os.altsep or "")


def _spec_dir(top: str) -> str | None:
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(next(iter(spec.submodule_search_locations)))

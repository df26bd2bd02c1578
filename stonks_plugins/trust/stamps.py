"""Verification results cached by file stamp, so a warm check costs one ``stat`` per entry.

A verified folder's stamp is the ``(mtime_ns, ctime_ns, size, inode)`` of every directory
walked and every listed file (a directory's times change when an entry is added, removed or
renamed; ``ctime`` cannot be set back by ``touch``). Stamps younger than :data:`RACY_NS` are
not cached (a same-size edit within the file system's clock tick would keep its stamp: git's
"racily clean" problem).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from .reports import IntegrityReport

RACY_NS = 2_000_000_000
"""Stamps this recent (ns) are not trusted for the cache (coarse or remote file clocks)."""

Entry = tuple[str, int, int, int, int]
"""(path, mtime_ns, ctime_ns, size, inode) of one stamped file or directory."""


def entry(path: str, st: os.stat_result) -> Entry:
    return (path, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _fresh(entries: Iterable[Entry]) -> bool:
    """Still as stamped (a vanished entry is not)."""
    stat = os.stat
    for path, mtime, ctime, size, ino in entries:
        try:
            st = stat(path)
        except OSError:
            return False
        if (
            st.st_mtime_ns != mtime
            or st.st_ctime_ns != ctime
            or st.st_size != size
            or st.st_ino != ino
        ):
            return False
    return True


def _racy(entries: Iterable[Entry], since_ns: int) -> bool:
    return any(max(e[1], e[2]) >= since_ns - RACY_NS for e in entries)


_cache: dict[tuple[str, str], tuple[object, tuple[Entry, ...], IntegrityReport]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def cached(key: tuple[str, str], basis: object) -> IntegrityReport | None:
    """The report remembered for ``key``, if it was made from ``basis`` (what the files were
    compared with) and every stamped entry is still as it was."""
    hit = _cache.get(key)
    if hit is None or (hit[0] is not basis and hit[0] != basis) or not _fresh(hit[1]):
        return None
    return hit[2]


def remember(
    key: tuple[str, str], basis: object, entries: list[Entry], report: IntegrityReport, t0: int
) -> None:
    """Keep ``report`` for ``key`` unless an entry's stamp is too recent to trust (``t0``:
    when the check started)."""
    if not _racy(entries, t0):
        with _cache_lock:
            _cache[key] = (basis, tuple(entries), report)

"""Integrity: which files a lock covers, writing the lock, and checking it before code runs.

The rules, in one place (``docs/trust.md`` repeats them for operators):

* a **lock** (``plugins lock NAME``) records the SHA-256 of every regular file under the
  plugin's folder, keyed by its path relative to the manifest (``pkg/services.py``), in the
  manifest's ``integrity`` section - except the manifest itself and its signature file
  (``plugin_manifest.json``, ``plugin_manifest.sig``, at the top of the folder: they cannot
  hold their own digests), and anything under a directory in :data:`SKIPPED_DIRS`
  (``__pycache__``: the interpreter rewrites it at will; ``.git``, ``.hg``, ``.svn``: version
  control bookkeeping). A ``.pyc`` *outside* ``__pycache__`` is covered: Python imports it as a
  module when no source sits beside it. A link to a file is hashed as its target (``import``
  reads the target); a link to a folder is not followed and cannot be locked (its files are
  outside the plugin, and a link to ``/`` would walk the disk): in a locked plugin it counts
  as extra code. Sockets, FIFOs and dangling links hold no content and are left out;
* a **locked** plugin fails verification when a listed file of any kind is changed or
  missing, or when a file that is not listed could run - its name ends in one of
  :data:`CODE_SUFFIXES` (a new module, an extension, a ``.pth``). An unlisted data file (a
  README, an editor's backup) is left alone: nothing runs it unless listed code reads it;
* an **installed distribution** (an entry-point plugin) is verified against its wheel's
  ``RECORD`` whenever ``RECORD`` has hashes, locked or not: a hashed file that changed or is
  missing, or an unrecorded code file inside the plugin's package, fails it. An editable
  install has no hashes to compare: it is left unverified (lock the source folder instead).

Verification is cached by file stamp (:mod:`.stamps`): a warm check costs one ``stat`` per
entry; a cold one walks and hashes.

This module verifies a plugin (its lock, then its RECORD); the parts are :mod:`.coverage`
(which files), :mod:`.locking` (writing a lock), :mod:`.record` (installed distributions),
:mod:`.reports` and :mod:`.stamps`.

Nothing here imports Django or plugin code: the loader calls it in the serving process and
in a process-isolated plugin's child, and ``django_apps`` at settings time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .coverage import (
    CODE_SUFFIXES,
    MANIFEST_FILENAME,
    SIGNATURE_FILENAME,
    SKIPPED_DIRS,
    sha256_file,
    walk,
)
from .locking import LockError, LockResult, digests, lock_folder, write_atomically
from .record import check_distribution
from .reports import SHOWN, IntegrityReport
from .stamps import RACY_NS, Entry, cached, clear_cache, entry, remember

if TYPE_CHECKING:
    from ..discovery.candidate import Candidate

__all__ = [
    "CODE_SUFFIXES",
    "MANIFEST_FILENAME",
    "RACY_NS",
    "SHOWN",
    "SIGNATURE_FILENAME",
    "SKIPPED_DIRS",
    "Entry",
    "IntegrityReport",
    "LockError",
    "LockResult",
    "check",
    "check_candidate",
    "check_distribution",
    "check_folder",
    "clear_cache",
    "digests",
    "distribution_of",
    "expected_of",
    "lock_folder",
    "sha256_file",
    "write_atomically",
]


# -- directory plugins: checking the lock --------------------------------------------------------


def _safe_key(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and "" not in parts


def check_folder(root: str | Path, expected: Mapping[str, str]) -> IntegrityReport:
    """Compare the folder with its lock (``expected``: the manifest's ``integrity``)."""
    root = str(root)
    key = ("folder", root)
    hit = cached(key, expected)
    if hit is not None:
        return hit
    t0 = time.time_ns()
    what = f"the lock in {MANIFEST_FILENAME}"
    fix = "If the change is deliberate, lock the plugin again ('manage.py plugins lock NAME')."
    try:
        files, dirs, linked = walk(root)
    except OSError as exc:
        return IntegrityReport(what, missing=(f"{root} ({exc.strerror or exc})",), fix=fix)
    changed: list[str] = []
    missing: list[str] = []
    entries = [entry(p, st) for p, st in dirs]
    for rel, digest in sorted(expected.items()):
        st = files.get(rel) if _safe_key(rel) else None
        if st is None:
            missing.append(rel)
            continue
        path = os.path.join(root, *rel.split("/"))
        entries.append(entry(path, st))
        try:
            if sha256_file(path) != digest:
                changed.append(rel)
        except OSError:
            missing.append(rel)
    extra = sorted(r for r in files if r not in expected and r.endswith(CODE_SUFFIXES))
    extra += [f"{link} (a link to a folder)" for link in linked]  # code we did not walk
    report = IntegrityReport(what, len(expected), tuple(changed), tuple(missing), tuple(extra), fix)
    remember(key, expected, entries, report, t0)
    return report


# -- a discovered plugin --------------------------------------------------------------------------


def expected_of(candidate: Candidate) -> Mapping[str, str]:
    """The lock in the candidate's manifest (empty: not locked)."""
    manifest = candidate.manifest
    if manifest is not None:
        return manifest.integrity
    raw = candidate.raw
    found = raw.get("integrity") if isinstance(raw, dict) else None
    if isinstance(found, dict) and all(isinstance(v, str) for v in found.values()):
        return found
    return {}


def distribution_of(candidate: Candidate) -> str | None:
    """The distribution name of an entry-point plugin ('Name==Version' location)."""
    if candidate.source != "entry_point" or "==" not in candidate.location:
        return None
    return candidate.location.split("==", 1)[0]


def check(
    root: str | Path | None, expected: Mapping[str, str], distribution: str | None = None
) -> IntegrityReport | None:
    """The first failed verification (the lock, then the distribution's RECORD); the last
    passed one when all pass; None when there is nothing to verify."""
    report: IntegrityReport | None = None
    if expected and root is not None:
        report = check_folder(root, expected)
        if not report.ok:
            return report
    if distribution is not None:
        recorded = check_distribution(distribution, root)
        if recorded is not None:
            report = recorded
    return report


def check_candidate(candidate: Candidate) -> IntegrityReport | None:
    """:func:`check` of a discovered plugin."""
    return check(candidate.root, expected_of(candidate), distribution_of(candidate))

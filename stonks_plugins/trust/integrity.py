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

Verification is cached by file stamp: a verified folder's stamp is the ``(mtime_ns,
ctime_ns, size, inode)`` of every directory walked and every listed file (a directory's
times change when an entry is added, removed or renamed; ``ctime`` cannot be set back by
``touch``). A warm check costs one ``stat`` per entry; a cold one walks and hashes. Stamps
younger than :data:`RACY_NS` are not cached (a same-size edit within the file system's clock
tick would keep its stamp: git's "racily clean" problem).

Nothing here imports Django or plugin code: the loader calls it in the serving process and
in a process-isolated plugin's child, and ``django_apps`` at settings time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StonksPluginsError

if TYPE_CHECKING:
    from ..discovery.candidate import Candidate

MANIFEST_FILENAME = "plugin_manifest.json"  # == manifest.validation.MANIFEST_FILENAME
SIGNATURE_FILENAME = "plugin_manifest.sig"
_OWN_FILES = (MANIFEST_FILENAME, SIGNATURE_FILENAME)
"""At the top of the folder: they cannot hold their own digests."""
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn"})
CODE_SUFFIXES = (".py", ".pyw", ".pyc", ".pyo", ".pth", ".so", ".pyd")
"""An unlisted file with one of these endings can run (``foo.cpython-312-x86_64-linux-gnu.so``
ends in ``.so``)."""
RACY_NS = 2_000_000_000
"""Stamps this recent (ns) are not trusted for the cache (coarse or remote file clocks)."""
SHOWN = 8
"""Files named per kind in a message; the rest are counted."""

Entry = tuple[str, int, int, int, int]
"""(path, mtime_ns, ctime_ns, size, inode) of one stamped file or directory."""


class LockError(StonksPluginsError):
    """The plugin cannot be locked; the message says why and where."""


@dataclass(frozen=True)
class IntegrityReport:
    """What a verification found; ``ok`` when nothing is wrong."""

    what: str
    """What the files were compared with ('the lock in plugin_manifest.json', a RECORD)."""
    checked: int = 0
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    fix: str = ""

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra)

    @property
    def message(self) -> str:
        parts = [
            f"{label} {_names(files)}"
            for label, files in (
                ("changed:", self.changed),
                ("missing:", self.missing),
                ("extra code:", self.extra),
            )
            if files
        ]
        return f"its files do not match {self.what}: {'; '.join(parts)}. {self.fix}".strip()


def _names(files: tuple[str, ...]) -> str:
    shown = ", ".join(files[:SHOWN])
    return shown if len(files) <= SHOWN else f"{shown} and {len(files) - SHOWN} more"


# -- walking and hashing ----------------------------------------------------------------------


def _walk(
    root: str,
) -> tuple[dict[str, os.stat_result], list[tuple[str, os.stat_result]], list[str]]:
    """Every file the rules cover (relative posix path -> its stat), every folder walked
    (path, stat), and every link to a folder (relative path, ending in "/": not followed - a
    link to ``/`` would walk the whole disk). Raises ``OSError`` when a folder cannot be
    listed."""
    files: dict[str, os.stat_result] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    linked: list[str] = []
    stack = [("", root)]
    while stack:
        rel, path = stack.pop()
        dirs.append((path, os.stat(path)))
        with os.scandir(path) as entries:
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if name not in SKIPPED_DIRS:
                            stack.append((f"{rel}{name}/", entry.path))
                    elif entry.is_dir():
                        linked.append(f"{rel}{name}/")
                    elif entry.is_file() and (rel or name not in _OWN_FILES):
                        files[f"{rel}{name}"] = entry.stat()  # a link's target, as import reads
                except OSError:  # vanished while listed, or a dangling link: no content
                    continue
    return files, dirs, sorted(linked)


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _entry(path: str, st: os.stat_result) -> Entry:
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


def _cached(key: tuple[str, str], basis: object) -> IntegrityReport | None:
    hit = _cache.get(key)
    if hit is None or (hit[0] is not basis and hit[0] != basis) or not _fresh(hit[1]):
        return None
    return hit[2]


def _remember(
    key: tuple[str, str], basis: object, entries: list[Entry], report: IntegrityReport, t0: int
) -> None:
    if not _racy(entries, t0):
        with _cache_lock:
            _cache[key] = (basis, tuple(entries), report)


# -- directory plugins: the lock ------------------------------------------------------------------


def _safe_key(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and "" not in parts


def check_folder(root: str | Path, expected: Mapping[str, str]) -> IntegrityReport:
    """Compare the folder with its lock (``expected``: the manifest's ``integrity``)."""
    root = str(root)
    key = ("folder", root)
    hit = _cached(key, expected)
    if hit is not None:
        return hit
    t0 = time.time_ns()
    what = f"the lock in {MANIFEST_FILENAME}"
    fix = "If the change is deliberate, lock the plugin again ('manage.py plugins lock NAME')."
    try:
        files, dirs, linked = _walk(root)
    except OSError as exc:
        return IntegrityReport(what, missing=(f"{root} ({exc.strerror or exc})",), fix=fix)
    changed: list[str] = []
    missing: list[str] = []
    entries = [_entry(p, st) for p, st in dirs]
    for rel, digest in sorted(expected.items()):
        st = files.get(rel) if _safe_key(rel) else None
        if st is None:
            missing.append(rel)
            continue
        path = os.path.join(root, *rel.split("/"))
        entries.append(_entry(path, st))
        try:
            if sha256_file(path) != digest:
                changed.append(rel)
        except OSError:
            missing.append(rel)
    extra = sorted(r for r in files if r not in expected and r.endswith(CODE_SUFFIXES))
    extra += [f"{link} (a link to a folder)" for link in linked]  # code we did not walk
    report = IntegrityReport(what, len(expected), tuple(changed), tuple(missing), tuple(extra), fix)
    _remember(key, expected, entries, report, t0)
    return report


def digests(root: str | Path) -> dict[str, str]:
    """The lock of a folder as it is now: every covered file's SHA-256, sorted by path."""
    files, _, linked = _walk(str(root))
    if linked:
        raise LockError(
            f"{root}: {', '.join(linked)} links to a folder, which a lock cannot cover (its "
            "files are outside the plugin); copy the files in instead"
        )
    out: dict[str, str] = {}
    for rel in sorted(files):
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            raise LockError(
                f"{root}: the file name {rel!r} is not valid UTF-8 and cannot be recorded in "
                "the manifest; rename it"
            ) from None
        out[rel] = sha256_file(os.path.join(str(root), *rel.split("/")))
    return out


@dataclass(frozen=True)
class LockResult:
    manifest: Path
    files: int
    changed: bool
    """The manifest's bytes changed (False: the lock was already current)."""
    signature_removed: bool
    """A signature of the old bytes was deleted: it no longer matched."""


def write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` in one rename: a reader sees the old or the new file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def lock_folder(root: Path) -> LockResult:
    """Record every covered file's SHA-256 in the folder's manifest (its ``integrity``
    section, where it stands or at the end), keeping the rest of the manifest and its key
    order; written with an indent of 2. A signature of the former bytes is deleted."""
    manifest = root / MANIFEST_FILENAME
    try:
        before = manifest.read_bytes()
        st = manifest.stat()
    except OSError as exc:
        raise LockError(f"{manifest}: cannot read the manifest: {exc.strerror or exc}") from exc
    try:
        doc: Any = json.loads(before.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LockError(f"{manifest}: not valid JSON ({exc}); fix it before locking") from exc
    if not isinstance(doc, dict):
        raise LockError(f"{manifest}: the manifest is not a JSON object")
    doc["integrity"] = digests(root)
    after = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    changed = after != before
    removed = False
    if changed:
        write_atomically(manifest, after, st.st_mode & 0o7777)
        signature = root / SIGNATURE_FILENAME
        if signature.is_file():
            signature.unlink()
            removed = True
    return LockResult(manifest, len(doc["integrity"]), changed, removed)


# -- installed distributions: RECORD --------------------------------------------------------------


def _record_digest(path: str) -> str:
    """RECORD's form of a SHA-256: urlsafe base64 without padding."""
    with open(path, "rb") as f:
        raw = hashlib.file_digest(f, "sha256").digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def check_distribution(name: str, root: str | Path | None) -> IntegrityReport | None:
    """Compare an installed distribution's files with its ``RECORD``; None when there is
    nothing to compare (no such distribution, no RECORD, or a RECORD without hashes)."""
    key = ("dist", f"{name}\0{root or ''}")
    hit = _cache.get(key)
    if hit is not None and _fresh(hit[1]):
        return hit[2] if hit[2].checked else None
    t0 = time.time_ns()
    try:
        dist = metadata.distribution(name)
        files = list(dist.files or ())
    except (metadata.PackageNotFoundError, OSError, ValueError):
        return None
    version = dist.version
    what = f"the RECORD of the installed distribution {name} {version}"
    fix = f"Reinstall it ('pip install --force-reinstall {name}=={version}')."
    entries: list[Entry] = []
    recorded: set[str] = set()
    changed: list[str] = []
    missing: list[str] = []
    checked = 0
    for file in files:
        path = os.path.normpath(str(dist.locate_file(file)))
        recorded.add(path)
        if file.name == "RECORD" and file.parent.name.endswith(".dist-info"):
            with contextlib.suppress(OSError):  # a RECORD that vanished: not cached then
                entries.append(_entry(path, os.stat(path)))
        if file.hash is None or file.hash.mode != "sha256":
            continue
        checked += 1
        try:
            st = os.stat(path)
            entries.append(_entry(path, st))
            if (file.size is not None and st.st_size != file.size) or _record_digest(
                path
            ) != file.hash.value:
                changed.append(str(file))
        except OSError:
            missing.append(str(file))
    extra: list[str] = []
    if root is not None and checked:
        base = os.path.normpath(str(root))
        if any(p.startswith(base + os.sep) for p in recorded):
            try:
                found, dirs, _ = _walk(base)
            except OSError:
                found, dirs = {}, []
            entries.extend(_entry(p, st) for p, st in dirs)
            site = os.path.normpath(str(dist.locate_file("")))
            for rel in sorted(found):
                path = os.path.normpath(os.path.join(base, *rel.split("/")))
                if rel.endswith(CODE_SUFFIXES) and path not in recorded:
                    extra.append(Path(os.path.relpath(path, site)).as_posix())  # as RECORD
    report = IntegrityReport(what, checked, tuple(changed), tuple(missing), tuple(extra), fix)
    _remember(key, None, entries, report, t0)
    return report if checked else None


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

"""An installed distribution verified against its wheel's ``RECORD``, locked or not: a
hashed file that changed or is missing, or an unrecorded code file inside the plugin's
package, fails it. An editable install has no hashes to compare: it is left unverified."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import time
from importlib import metadata
from pathlib import Path

from .coverage import CODE_SUFFIXES, walk
from .reports import IntegrityReport
from .stamps import Entry, cached, entry, remember


def _record_digest(path: str) -> str:
    """RECORD's form of a SHA-256: urlsafe base64 without padding."""
    with open(path, "rb") as f:
        raw = hashlib.file_digest(f, "sha256").digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def check_distribution(name: str, root: str | Path | None) -> IntegrityReport | None:
    """Compare an installed distribution's files with its ``RECORD``; None when there is
    nothing to compare (no such distribution, no RECORD, or a RECORD without hashes)."""
    key = ("dist", f"{name}\0{root or ''}")
    hit = cached(key, None)
    if hit is not None:
        return hit if hit.checked else None
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
                entries.append(entry(path, os.stat(path)))
        if file.hash is None or file.hash.mode != "sha256":
            continue
        checked += 1
        try:
            st = os.stat(path)
            entries.append(entry(path, st))
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
                found, dirs, _ = walk(base)
            except OSError:
                found, dirs = {}, []
            entries.extend(entry(p, st) for p, st in dirs)
            site = os.path.normpath(str(dist.locate_file("")))
            for rel in sorted(found):
                path = os.path.normpath(os.path.join(base, *rel.split("/")))
                if rel.endswith(CODE_SUFFIXES) and path not in recorded:
                    extra.append(Path(os.path.relpath(path, site)).as_posix())  # as RECORD
    report = IntegrityReport(what, checked, tuple(changed), tuple(missing), tuple(extra), fix)
    remember(key, None, entries, report, t0)
    return report if checked else None

"""Writing a lock (``plugins lock NAME``): every covered file's SHA-256 recorded in the
manifest's ``integrity`` section, the manifest replaced in one rename."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StonksPluginsError
from .coverage import MANIFEST_FILENAME, SIGNATURE_FILENAME, sha256_file, walk


class LockError(StonksPluginsError):
    """The plugin cannot be locked; the message says why and where."""


def digests(root: str | Path) -> dict[str, str]:
    """The lock of a folder as it is now: every covered file's SHA-256, sorted by path."""
    files, _, linked = walk(str(root))
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

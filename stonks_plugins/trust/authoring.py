"""What ``plugins lock``, ``plugins keygen`` and ``plugins sign`` do (the CLI only parses and
prints). A plugin is named by its name (discovery finds its folder) or by its folder's path,
so an author can lock and sign a plugin that is not installed yet.

Only folders are locked and signed here: an installed distribution is verified against its
RECORD, and its files are not ours to rewrite (that would break the RECORD); lock and sign
the source folder before the wheel is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..discovery import discover
from ..errors import PluginNotFound, StonksPluginsError
from . import integrity, signatures
from .integrity import MANIFEST_FILENAME, LockError, LockResult


class TrustCommandError(StonksPluginsError):
    """The command ran and failed; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    name: str
    root: Path


def target(spec: str) -> Target:
    """The plugin folder ``spec`` names: a folder or manifest path, or a discovered name."""
    path = Path(spec)
    if path.is_file() and path.name == MANIFEST_FILENAME:
        path = path.parent
    if path.is_dir():
        if not (path / MANIFEST_FILENAME).is_file():
            raise TrustCommandError(f"{path} holds no {MANIFEST_FILENAME}")
        return Target(_declared_name(path) or path.name, path)
    found = discover().by_name().get(spec)
    if found is None:
        raise PluginNotFound(spec)
    if found.source != "directory" or found.root is None:
        raise TrustCommandError(
            f"plugin '{spec}' is the installed distribution {found.location}: it is verified "
            "against its RECORD, and its installed files are not rewritten. Lock and sign "
            "its source folder before building the wheel."
        )
    return Target(found.name, found.root)


def _declared_name(root: Path) -> str | None:
    try:
        doc = json.loads((root / MANIFEST_FILENAME).read_bytes().decode("utf-8-sig"))
        name = doc["plugin"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def lock(spec: str) -> tuple[Target, LockResult]:
    where = target(spec)
    try:
        return where, integrity.lock_folder(where.root)
    except (LockError, OSError) as exc:
        raise TrustCommandError(f"plugin '{where.name}': {exc}") from exc


def keygen(path: Path) -> str:
    try:
        return signatures.generate_key_file(path)
    except signatures.KeyProblem as exc:
        raise TrustCommandError(str(exc)) from exc


@dataclass(frozen=True)
class Signed:
    name: str
    signature: Path
    key: str


def sign(spec: str, key_file: Path) -> Signed:
    """Sign the plugin's manifest, which must be locked and whose files must match the
    lock: the signature vouches for the code through the lock."""
    where = target(spec)
    manifest = where.root / MANIFEST_FILENAME
    try:
        data = manifest.read_bytes()
        doc = json.loads(data.decode("utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise TrustCommandError(f"plugin '{where.name}': {manifest}: {exc}") from exc
    lock_ = doc.get("integrity") if isinstance(doc, dict) else None
    if not isinstance(lock_, dict) or not lock_:
        raise TrustCommandError(
            f"plugin '{where.name}' is not locked: a signature vouches for its code only "
            f"through the lock. Run 'manage.py plugins lock {spec}' first, then sign."
        )
    report = integrity.check_folder(where.root, lock_)
    if not report.ok:
        raise TrustCommandError(f"plugin '{where.name}': {report.message} Nothing was signed.")
    try:
        key = signatures.load_private_key(key_file)
    except signatures.KeyProblem as exc:
        raise TrustCommandError(str(exc)) from exc
    path = signatures.sign_manifest(where.root, data, key)
    return Signed(where.name, path, signatures.public_text(key.public_key()))

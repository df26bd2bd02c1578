"""Which files a lock covers: every regular file under the plugin's folder but the manifest
and its signature, and nothing under a directory in :data:`SKIPPED_DIRS`. The full rules
are in :mod:`.integrity`'s docstring (and docs/trust.md)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MANIFEST_FILENAME = "plugin_manifest.json"  # == manifest.validation.MANIFEST_FILENAME
SIGNATURE_FILENAME = "plugin_manifest.sig"
_OWN_FILES = (MANIFEST_FILENAME, SIGNATURE_FILENAME)
"""At the top of the folder: they cannot hold their own digests."""
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn"})
CODE_SUFFIXES = (".py", ".pyw", ".pyc", ".pyo", ".pth", ".so", ".pyd")
"""An unlisted file with one of these endings can run (``foo.cpython-312-x86_64-linux-gnu.so``
ends in ``.so``)."""


def walk(
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

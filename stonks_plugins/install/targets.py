"""What may be installed, checked before pip sees it: a wheel file, a source folder (with a
``pyproject.toml`` or ``setup.py``) or a requirement (``name==1.0``, ``name @ URL``); and an
uploaded wheel, saved where pip can read it.

An upload is never opened as anything but bytes before pip gets it: its file name must be a
wheel's (``NAME-VERSION-PY-ABI-PLATFORM.whl``, checked with ``packaging``), its size is
limited (:data:`MAX_WHEEL_BYTES`), and it is written under that name into a private temporary
folder that is deleted afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..conf import plugin_settings
from ..redaction import scrub_text
from .results import BAD_TARGET, InstallError

MAX_WHEEL_BYTES = 64 * 1024 * 1024
"""Largest wheel an upload may be (a plugin's wheel is tens of KB; this bounds a mistake)."""
MAX_NAME = 255
_SEPARATORS = re.compile(r"[/\\\x00]")


class Kind(StrEnum):
    WHEEL = "wheel"
    FOLDER = "folder"
    REQUIREMENT = "requirement"


@dataclass(frozen=True)
class Target:
    kind: Kind
    spec: str
    """What pip is given (an absolute path, or the requirement)."""
    label: str
    """What messages and events show (credentials in a URL masked)."""
    distribution: str | None = None
    """Its distribution's canonical name, when known before installing."""


def _bad(message: str) -> InstallError:
    return InstallError(BAD_TARGET, message)


def wheel_filename(filename: str) -> tuple[str, str]:
    """The canonical distribution name and version a wheel's file name declares; raises
    ``InstallError(bad_target)`` for anything that is not a wheel's file name."""
    shown = scrub_text(filename[:120])
    if not filename or len(filename) > MAX_NAME or _SEPARATORS.search(filename):
        raise _bad(f"{shown!r} is not a wheel's file name: a plain file name is expected")
    try:
        name, version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise _bad(
            f"{shown!r} is not a wheel's file name (NAME-VERSION-PYTAG-ABITAG-PLATFORM.whl): {exc}"
        ) from None
    return str(name), str(version)


def _folder(path: Path) -> Target:
    if not (path / "pyproject.toml").is_file() and not (path / "setup.py").is_file():
        if (path / "plugin_manifest.json").is_file():
            dirs = ", ".join(str(d) for d in plugin_settings.plugin_dirs)
            raise _bad(
                f"{path} is a plugin folder without packaging (no pyproject.toml or setup.py): "
                f"install it by copying the folder into a plugin directory (PLUGIN_DIRS: "
                f"{dirs}), then run 'manage.py plugins sync'"
            )
        raise _bad(f"{path} holds no pyproject.toml or setup.py: pip cannot install it")
    return Target(Kind.FOLDER, str(path), str(path))


def parse_target(text: str, label: str | None = None) -> Target:
    """What ``text`` names; raises ``InstallError(bad_target)`` saying why it cannot be
    installed."""
    text = text.strip()
    if not text:
        raise _bad("nothing to install: give a wheel file, a source folder or a requirement")
    path = Path(text).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_dir():
            return _folder(path)
        if path.suffix.lower() != ".whl" or not path.is_file():
            raise _bad(f"{path} is not a wheel (a .whl file), a source folder or a requirement")
        name, _ = wheel_filename(path.name)
        return Target(Kind.WHEEL, str(path), label or str(path), name)
    shown = scrub_text(text[:200])
    if text.startswith("-"):
        raise _bad(f"{shown!r} is an option, not a requirement: pip options go in pip.conf")
    looks_like_path = text.lower().endswith(".whl") or text.startswith((".", "~")) or os.sep in text
    if looks_like_path and "@" not in text:  # 'name @ https://...' is a requirement
        raise _bad(f"{shown}: no such file or folder")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise _bad(f"{shown!r} is not a file, a folder or a valid requirement: {exc}") from None
    return Target(Kind.REQUIREMENT, text, label or shown, canonicalize_name(requirement.name))


@contextmanager
def stashed_wheel(
    filename: str, chunks: Iterable[bytes], size: int | None = None
) -> Iterator[Path]:
    """An uploaded wheel saved under its checked name in a private temporary folder, for the
    time of the ``with`` block."""
    wheel_filename(filename)
    limit = MAX_WHEEL_BYTES
    if size is not None and size > limit:
        raise _bad(f"{filename} is {size} bytes; an uploaded wheel may be at most {limit} bytes")
    folder = tempfile.mkdtemp(prefix="stonks-plugin-upload-")
    try:
        path = Path(folder) / filename
        written = 0
        with open(path, "xb") as f:
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise _bad(f"{filename} is over {limit} bytes, the limit for an uploaded wheel")
                f.write(chunk)
        if not written:
            raise _bad(f"{filename} is empty")
        if not zipfile.is_zipfile(path):
            raise _bad(f"{filename} is not a wheel: a wheel is a zip archive, this is not one")
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""pip, run in this site's own environment as a child process.

``sys.executable -m pip``: the interpreter serving the site is the one whose environment
changes, so the new distribution is where this process (and its siblings on the host)
import from. pip reads its own configuration as usual (``pip.conf``, ``PIP_*`` variables:
index URL, ``--no-index``, proxies, ``PIP_NO_BUILD_ISOLATION``). Its output is captured,
scrubbed of credentials (an index URL may carry a password) and handed back for the
operator to read when it fails. A run longer than ``PLUGINS_PIP_TIMEOUT`` is stopped, with
every process it started (pip builds in children of its own).

One run at a time per environment: two pips writing into one ``site-packages`` at once
corrupt it, so runs take an exclusive lock on a file named after the environment, and a
second one is refused at once rather than queued behind a long build.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ..conf import plugin_settings
from ..redaction import scrub_text
from .results import BUSY, PIP_TIMEOUT, InstallError

OPTIONS = ("--disable-pip-version-check", "--no-input", "--no-color")
OUTPUT_LINES = 200
"""Lines of pip's output kept (the end of it: where pip says what went wrong)."""


def interpreter() -> str:
    """The Python whose environment pip changes: this process's own (tests point it at a
    throwaway environment, so the shared one is never changed under other tests)."""
    return sys.executable


@dataclass(frozen=True)
class PipRun:
    command: tuple[str, ...]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) > OUTPUT_LINES:
        left_out = f"[... {len(lines) - OUTPUT_LINES} earlier lines left out]"
        lines = [left_out, *lines[-OUTPUT_LINES:]]
    return scrub_text("\n".join(lines))


def run(args: Sequence[str]) -> PipRun:
    """``python -m pip ARGS``; raises ``InstallError(pip_timeout)`` when it runs too long."""
    command = (interpreter(), "-m", "pip", *OPTIONS, *args)
    timeout = float(plugin_settings.PIP_TIMEOUT)
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: a timeout stops its builds too
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise InstallError(
            PIP_TIMEOUT,
            f"pip did not finish within {timeout:g} s (PLUGINS_PIP_TIMEOUT) and was stopped; "
            "the environment may hold a partial install: run the command again, or raise "
            "PLUGINS_PIP_TIMEOUT for a slow index or a long build",
            _tail(out or ""),
        ) from None
    return PipRun(command, proc.returncode, _tail(out or ""))


def _lock_path() -> Path:
    where = os.path.abspath(interpreter())  # not resolved: venvs share a base Python
    digest = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"stonks-plugins-pip-{digest}.lock"


@contextmanager
def exclusive() -> Iterator[None]:
    """Hold the environment's pip lock; ``InstallError(busy)`` when another run holds it."""
    path = _lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstallError(
                BUSY,
                "another plugin install or uninstall is running in this environment "
                f"({interpreter()}); try again once it is done",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

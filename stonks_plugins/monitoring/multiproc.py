"""prometheus-client's multiprocess mode: where each process keeps its metric files, and the
bookkeeping for processes that end.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every process that counts plugin calls (each gunicorn
worker, each Celery worker) writes its values to memory-mapped files in that folder, and a
scrape sums the files of all of them. prometheus-client names a process's files by its pid;
here the name is ``<hostname>-<pid>`` instead, because docker-compose's ``web`` and ``worker``
containers share the folder through a volume while each has its own pid namespace: two live
processes with the same pid would write into the same file.

Counters and histograms of a process that ended stay in the folder, so a sum never goes
down when a worker is replaced. Its circuit gauges (``livemax``) must go with it:
:func:`mark_process_dead` is called from gunicorn's ``child_exit`` hook (``gunicorn.conf.py``)
and Celery's ``worker_process_shutdown``. :func:`sweep_dead` removes every file of this
host's processes that are gone, when a gunicorn master starts.

This module imports nothing of Django or the plugin system: gunicorn's master imports it.
An empty ``PROMETHEUS_MULTIPROC_DIR`` (``.env.example`` ships one) means "not set".
"""

from __future__ import annotations

import glob
import logging
import os
import re
import socket
import threading

ENV = "PROMETHEUS_MULTIPROC_DIR"

logger = logging.getLogger(__name__)

_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
"""This host's name as it appears in file names (prometheus-client splits them on '_')."""

_lock = threading.Lock()
_configured: str | bool | None = False
"""False until :func:`configure` ran; then the folder in use, or None (one process)."""


def directory() -> str | None:
    """The folder from the environment, or None when multiprocess mode is off."""
    path = os.environ.get(ENV, "").strip()
    return path or None


def identity(pid: int | None = None) -> str:
    """How the files of process ``pid`` (default: this one) are named."""
    return f"{_HOST}-{os.getpid() if pid is None else pid}"


def configure() -> str | None:
    """Choose how prometheus-client stores values, before the first metric is made; returns
    the multiprocess folder, or None for plain in-memory values (one process).

    prometheus-client decides this when it is first imported, by whether the variable
    exists: an empty one would make it write files into the working directory, and a
    folder that does not exist would fail on the first metric. Both fall back to one
    process, said in the log."""
    global _configured
    with _lock:
        if _configured is not False:
            return _configured if isinstance(_configured, str) else None
        from prometheus_client import values

        path = directory()
        if path is not None:
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                logger.error(
                    "%s=%s cannot be used (%s): /metrics shows this process only", ENV, path, exc
                )
                path = None
        if path is None:
            os.environ.pop(ENV, None)  # so prometheus-client's own checks agree
            values.ValueClass = values.MutexValue
        else:
            values.ValueClass = values.MultiProcessValue(process_identifier=identity)
        _configured = path
        return path


def forget() -> None:
    """For tests: the next :func:`configure` reads the environment again."""
    global _configured
    with _lock:
        _configured = False


def mark_process_dead(pid: int) -> None:
    """Process ``pid`` of this host ended: its ``live*`` gauges (circuit states) go."""
    path = directory()
    if path is None:
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(identity(pid), path)
    except OSError as exc:  # a hook must not take the server down
        logger.warning("could not remove the metric files of process %s: %s", pid, exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead() -> int:
    """Remove every metric file of this host's processes that no longer run (left by a
    previous start of the server); returns how many went. Files of other hosts (another
    container sharing the folder) are left alone."""
    path = directory()
    if path is None or not os.path.isdir(path):
        return 0
    pattern = re.compile(rf"_{re.escape(_HOST)}-(\d+)\.db$")
    removed = 0
    for name in glob.glob(os.path.join(path, "*.db")):
        match = pattern.search(os.path.basename(name))
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            os.remove(name)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove the stale metric file %s: %s", name, exc)
    return removed

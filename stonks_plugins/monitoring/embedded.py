"""The schedule of :mod:`.schedule` run in-process, for the embedded default.

The embedded default (no Redis, ``CELERY_TASK_ALWAYS_EAGER``) has no beat process and no
worker, yet its plugins need the same watching: a daemon thread runs each entry of the same
table at its interval, by applying the same Celery task locally, as an eager ``delay()``
would (``task_prerun`` included, so each run sees the plugin states committed before it).

The thread belongs to one process: started at most once per process id, and started again in
a forked child (a pre-fork server's worker), where the parent's thread does not exist. It
never raises: a failing run is logged and the next one comes at its time. Each run closes
the thread's database connections afterwards, so an idle scheduler holds none open.

Tasks are looked up by name in the Celery app's registry rather than imported: the task
module imports the runtime that starts this scheduler, and the lookup keeps that from being
an import cycle.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connections

from .schedule import Entry, entries

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
"""Seconds :func:`stop_embedded_scheduler` waits for a run in progress to end."""


class _Scheduler:
    """One thread running a fixed table; ``pid`` is the process that started it."""

    def __init__(self, table: list[Entry]) -> None:
        self.table = table
        self.pid = os.getpid()
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._loop, name="stonks-plugins-scheduler", daemon=True
        )

    def alive_here(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive()

    def _loop(self) -> None:
        try:
            # Like beat, the first run of each entry comes one interval after the start:
            # a process that just started is busy warming its plugins.
            due = {e.key: time.monotonic() + e.interval for e in self.table}
            while not self.stopping.wait(max(0.0, min(due.values()) - time.monotonic())):
                for entry in self.table:
                    if self.stopping.is_set():
                        return
                    if time.monotonic() >= due[entry.key]:
                        run_entry(entry)
                        due[entry.key] = time.monotonic() + entry.interval
        except Exception:  # never out of the thread; run_entry already catches its own
            logger.exception("the embedded plugin scheduler stopped")


_lock = threading.Lock()
_current: _Scheduler | None = None


def start_embedded_scheduler() -> bool:
    """Start the in-process scheduler if this process needs one and has none running.

    Needed only when Celery tasks run eagerly (then no beat process exists); with a broker,
    beat runs the schedule and this does nothing. Returns True when this call started it.
    Safe to call from every process start: idempotent per process id.
    """
    global _current
    if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return False
    with _lock:
        if _current is not None and _current.alive_here():
            return False
        table = entries()
        if not table:
            return False  # every job switched off
        _current = _Scheduler(table)
        _current.thread.start()
    logger.info(
        "plugin monitoring runs in-process: %s",
        ", ".join(f"{e.key} every {e.interval:g} s" for e in table),
    )
    return True


def stop_embedded_scheduler(timeout: float = STOP_TIMEOUT) -> bool:
    """Stop this process's scheduler (tests; shutdown); True once no run is in progress."""
    global _current
    with _lock:
        scheduler, _current = _current, None
    if scheduler is None or scheduler.pid != os.getpid():
        return True
    scheduler.stopping.set()
    scheduler.thread.join(timeout)
    return not scheduler.thread.is_alive()


def embedded_scheduler_running() -> bool:
    """Is a scheduler thread running in this process?"""
    with _lock:
        return _current is not None and _current.alive_here()


def run_entry(entry: Entry) -> bool:
    """Run one entry's task here and now; False (logged) when it failed."""
    try:
        _task(entry.task).apply(throw=True)
        return True
    except Exception:
        logger.exception("background job %s failed", entry.key)
        return False
    finally:
        connections.close_all()


def _task(name: str) -> Any:
    """The registered Celery task ``name`` (autodiscovering the apps' tasks if needed)."""
    from celery import current_app

    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def _after_fork_in_child() -> None:
    """The parent's thread is not in the child, and its lock may have been held at the
    fork: start from nothing (the child's own start call makes its scheduler)."""
    global _lock, _current
    _lock = threading.Lock()
    _current = None


os.register_at_fork(after_in_child=_after_fork_in_child)

"""What plugin code's outcomes change in the database, written off the request path.

Failures, recoveries, crashes and leaks are found in whatever thread ran the plugin's code -
often a worker thread a request started and may no longer wait for. Such a thread never
writes: it posts a record here. A process that runs the background runtime (``start()`` in
:mod:`stonks_plugins.runtime`) has a flusher thread that writes the posts, together with the
metrics, every fraction of a second; so a request only ever reads. A process without it (the
CLI, the test client, a Celery task) writes the posts itself at the next safe point
(:func:`drain`), in its own thread and transaction.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from django.db import OperationalError

from .threads import in_plugin_thread

logger = logging.getLogger(__name__)

_posts: deque[tuple[str, Callable[[], None], int]] = deque()
RETRIES = 20
"""A write the database refused for a lock (SQLite under concurrent writers) is tried again
at the next drain, this many times at most, before it is logged and dropped."""
_background = threading.Event()


def post(what: str, write: Callable[[], None]) -> None:
    """Queue a database write; ``what`` names it in the log if it fails."""
    _posts.append((what, write, 0))


def background(on: bool) -> None:
    """A flusher thread writes the posts in this process (set by the runtime's start)."""
    if on:
        _background.set()
    else:
        _background.clear()


def in_background() -> bool:
    return _background.is_set()


def drain(pause: Callable[[], object] | None = None) -> int:
    """Write every queued post, oldest first; a failing write is logged and dropped, one
    refused for a lock is put back and the round ends (tried again at the next drain).
    ``pause`` is called before each write (the runtime's: until no request is in flight)."""
    done = 0
    while True:
        if pause is not None and _posts:
            pause()
        try:
            what, write, tries = _posts.popleft()
        except IndexError:
            return done
        try:
            write()
        except OperationalError as exc:
            if "locked" in str(exc) and tries < RETRIES:
                _posts.appendleft((what, write, tries + 1))
                return done
            logger.exception("could not record %s", what)
        except Exception:  # one bad record must not keep the others from being written
            logger.exception("could not record %s", what)
        done += 1


def settle() -> int:
    """At a safe point of a caller that may write: drain unless a flusher does it (or this
    is a plugin thread, which never writes)."""
    if _background.is_set() or in_plugin_thread():
        return 0
    return drain()


def pending() -> int:
    return len(_posts)


def clear() -> None:
    _posts.clear()

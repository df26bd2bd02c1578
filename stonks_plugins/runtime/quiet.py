"""Pages first: the background runtime's deferrable work waits for a moment when this
process serves no request.

A process's plugin runtime writes what it learned (the outbox, metrics, plugin logs),
retries failed loads and restarts crashed children. Each is a few ms of Python holding the
interpreter's lock: run while a page renders, it lengthens that page by about as much (the
two threads take turns every switch interval). None of it is urgent, so it waits until no
request is in flight here - at most ``WAIT`` seconds, so that a process that is never idle
still does it. What the process serves (the refresh of a change) and stopping a spinning
call are not deferred.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

WAIT = 0.25
"""Seconds deferrable work waits at most for a moment without a request."""

_in_flight = 0
_changed = threading.Condition()


@contextmanager
def request() -> Iterator[None]:
    """A request is served in this process for as long as this block runs."""
    global _in_flight
    with _changed:
        _in_flight += 1
    try:
        yield
    finally:
        with _changed:
            _in_flight -= 1
            if not _in_flight:
                _changed.notify_all()


def wait(timeout: float) -> bool:
    """Return once no request is in flight here, or after ``timeout``; True when quiet."""
    with _changed:
        return _changed.wait_for(lambda: not _in_flight, timeout)


def waiter(timeout: float | None = None) -> Callable[[], bool]:
    """A ``wait`` for the steps of one piece of work (a round of the runtime's loop): each
    step waits for a moment without a request, all of them together at most ``timeout``
    (``WAIT``) - forty writes in a process that is never idle wait ``WAIT``, not forty
    times it."""
    until = time.monotonic() + (WAIT if timeout is None else timeout)
    return lambda: wait(max(0.0, until - time.monotonic()))

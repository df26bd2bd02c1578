"""Shared by the runtime's tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import OperationalError


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False). A read that
    SQLite's shared test database refuses while the runtime's thread writes counts as no."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if condition():
                return True
        except OperationalError:
            pass
        time.sleep(0.02)
    return False


def while_locked(write: Callable[[], object], timeout: float = 10.0) -> object:
    """``write()``, tried again while SQLite's shared-cache test database refuses it for a
    table the runtime's thread is writing. That database reports the lock at once; the file
    database a site runs on waits for it (the connection's busy timeout), so a write made
    beside the runtime there simply waits."""
    end = time.monotonic() + timeout
    while True:
        try:
            return write()
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= end:
                raise
        time.sleep(0.02)

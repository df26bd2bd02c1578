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

"""When a crashed plugin child may be started again.

Not at once: the next start is due ``base_delay * 2**(n-1)`` seconds after the crash (capped
at ``max_delay``, +/- ``jitter``), ``n`` counting consecutive crashes; a completed call (even
one where the plugin raised: the process was fine) sets ``n`` back to 0. Calls before that
fail fast with ``circuit_open`` and the remaining wait. ``max_restarts`` (default: no limit,
as Home Assistant's setup retry) gives up after that many consecutive crashes until the host
is started again. Nothing runs meanwhile - no thread, no timer - so a plugin nobody uses costs
nothing; a process that runs the serving runtime restarts children from its background thread
instead, so that a call - a user's page - never waits for an interpreter to start.
"""

from __future__ import annotations

import random
import time
from collections import deque

from .errors import ProcessCircuitOpen, ProcessCrashed
from .exits import CrashRecord

RESTART_PENDING = 0.25
"""Seconds a call is told to wait while the background runtime restarts a crashed child."""


class Backoff:
    """One plugin's consecutive crashes, when its child may start again, and recent crashes."""

    def __init__(
        self,
        *,
        base_delay: float,
        max_delay: float,
        jitter: float,
        max_restarts: int | None,
        history: int,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.max_restarts = max_restarts
        self.failures = 0
        """Consecutive crashes."""
        self.retry_at = 0.0
        """``time.monotonic()`` from which a start is due."""
        self.last: ProcessCrashed | None = None
        self.history: deque[CrashRecord] = deque(maxlen=history)

    def crashed(self, err: ProcessCrashed, record: CrashRecord) -> None:
        """Count a crash and schedule the next start."""
        self.failures += 1
        delay = min(self.max_delay, self.base_delay * 2 ** (self.failures - 1))
        delay *= 1 + self.jitter * (2 * random.random() - 1)
        self.retry_at = time.monotonic() + max(0.0, delay)
        self.last = err
        self.history.append(record)

    def succeeded(self) -> None:
        """The child answered (even if the plugin raised): the process is fine."""
        self.failures = 0

    def reset(self) -> None:
        """Forget the count and the wait (an explicit start)."""
        self.failures = 0
        self.retry_at = 0.0

    @property
    def gave_up(self) -> bool:
        return self.max_restarts is not None and self.failures > self.max_restarts

    def due(self) -> bool:
        """The child crashed, its wait is over, and it may be restarted now."""
        return self.failures > 0 and time.monotonic() >= self.retry_at and not self.gave_up

    def wait(self) -> float:
        """Seconds until a start is due (negative: overdue)."""
        return self.retry_at - time.monotonic()

    def refusal(self, plugin: str, operation: str, background: bool) -> ProcessCircuitOpen | None:
        """Why a call may not start the child now, or None when it may. ``background``: the
        serving runtime's thread restarts crashed children, never a call."""
        last = self.last.message if self.last is not None else "none"
        if self.gave_up:
            return ProcessCircuitOpen(
                plugin,
                f"gave up after {self.failures} consecutive crashes of its process "
                f"(last: {last}); reload the plugin to try again",
                operation=operation,
            )
        wait = self.wait()
        if wait > 0:
            return ProcessCircuitOpen(
                plugin,
                f"its process is restarting after a crash: next attempt in {wait:.1f} s "
                f"(last crash: {last})",
                operation=operation,
                retry_in=wait,
            )
        if background and self.failures > 0:
            return ProcessCircuitOpen(
                plugin,
                f"its process is being restarted in the background (last crash: {last})",
                operation=operation,
                retry_in=RESTART_PENDING,
            )
        return None

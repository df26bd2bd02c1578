"""Each plugin's code runs on its own lane: worker threads the caller waits on, never longer
than its deadline.

Python cannot stop a thread, so a call that overruns is abandoned, not killed: it keeps its
lane slot until it returns. A lane has ``PLUGINS_MAX_INFLIGHT`` slots; when every slot is
held by a call still running, the next call is refused at once ("busy") instead of starting
yet another thread that would hang too. That makes a stuck plugin cost later requests
nothing, and it is per plugin: one plugin's stuck calls never take a slot of another's. No
lock is held while plugin code runs.

Worker threads run in a fresh ``contextvars`` context (Django keeps database connections
there, and a worker must never share its caller's) and close their own connections when
they end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections

from ..conf import plugin_settings
from ..errors import ReasonCode
from ..sandbox import SandboxError
from ..sandbox.timeouts import Pending, thread_stack
from .threads import in_plugin_thread, plugin_thread

__all__ = ["Call", "Lane", "in_plugin_thread", "lane", "reset", "stuck"]

logger = logging.getLogger(__name__)


@dataclass
class Running:
    operation: str
    since: float


class Lane:
    def __init__(self, plugin: str, slots: int) -> None:
        self.plugin = plugin
        self.slots = max(1, slots)
        self._lock = threading.Lock()
        self._running: dict[int, Running] = {}
        self._next = 0

    def _take(self, operation: str) -> int | None:
        with self._lock:
            if len(self._running) >= self.slots:
                return None
            self._next += 1
            self._running[self._next] = Running(operation, time.monotonic())
            return self._next

    def _give_back(self, ticket: int) -> None:
        with self._lock:
            self._running.pop(ticket, None)

    def running(self) -> list[Running]:
        with self._lock:
            return sorted(self._running.values(), key=lambda r: r.since)

    def busy_error(self, operation: str) -> SandboxError:
        oldest = self.running()[0] if self._running else None
        age = time.monotonic() - oldest.since if oldest else 0.0
        what = f"'{oldest.operation}' running for {age:.0f} s" if oldest else "calls running"
        return SandboxError(
            self.plugin,
            ReasonCode.TIMEOUT,
            operation,
            f"not called: {self.slots} earlier calls still running (oldest: {what})",
        )

    def start(self, operation: str, func: Callable[..., Any], *args: Any) -> Call:
        """Start ``func(*args)`` on a worker thread; raises the busy error when full."""
        ticket = self._take(operation)
        if ticket is None:
            raise self.busy_error(operation)

        def finished() -> None:
            self._give_back(ticket)
            connections.close_all()

        try:
            pending = Pending.start(
                plugin_thread(func),
                args,
                name=f"plugin:{self.plugin}:{operation}",
                on_exit=finished,
            )
        except BaseException:
            self._give_back(ticket)
            raise
        return Call(self, operation, pending)


class Call:
    """A call running on a lane; :meth:`wait` returns its value or raises a SandboxError."""

    def __init__(self, lane: Lane, operation: str, pending: Pending) -> None:
        self.lane = lane
        self.operation = operation
        self.pending = pending

    @property
    def done(self) -> bool:
        return self.pending.done.is_set()

    def wait(self, deadline: float, limit: float) -> Any:
        """Wait until ``deadline`` (monotonic); ``limit`` is the caller's whole budget, for
        the message."""
        if not self.pending.done.wait(max(0.0, deadline - time.monotonic())):
            raise SandboxError(
                self.lane.plugin,
                ReasonCode.TIMEOUT,
                self.operation,
                f"no answer within {limit:g} s (still running in the background)",
                stack=thread_stack(self.pending.thread),
            )
        return self.pending.result()


_lanes: dict[str, Lane] = {}
_lanes_lock = threading.Lock()


def lane(plugin: str) -> Lane:
    found = _lanes.get(plugin)
    if found is None:
        with _lanes_lock:
            found = _lanes.get(plugin)
            if found is None:
                found = _lanes[plugin] = Lane(plugin, int(plugin_settings.MAX_INFLIGHT))
    return found


def stuck() -> dict[str, list[Running]]:
    """Plugins with calls running now (the console and the health endpoint can show it)."""
    with _lanes_lock:
        lanes = list(_lanes.values())
    return {ln.plugin: r for ln in lanes if (r := ln.running())}


def reset() -> None:
    with _lanes_lock:
        _lanes.clear()

"""A per-plugin circuit breaker with Home Assistant's setup-retry behaviour.

A plugin that keeps failing must stop costing the host: after ``threshold`` consecutive
failures the circuit *opens* and calls are refused at once (reason ``circuit_open``) instead
of running plugin code that will fail again. After a backoff the circuit goes *half open* and
lets exactly one trial call through; success closes it and forgets the history, failure opens
it again for twice as long. Delays grow exponentially (``base_delay * 2**(n-1)`` for the n-th
opening), are capped at ``max_delay``, and carry a random +/- ``jitter`` fraction so that many
workers retrying the same broken plugin do not do so in lockstep. This is the shape of Home
Assistant's ``ConfigEntryNotReady`` retry loop, which this project takes as its anchor.

The clock and the random source are injectable so the behaviour is tested without sleeping.

``clean`` is the fast path's one-attribute check: it is true while the circuit is closed and
no failure has been counted since the last success, so a healthy plugin's calls never touch
the lock (see :mod:`stonks_plugins.sandbox.boundary`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any


class CircuitState(StrEnum):
    """The states of a circuit, spelled once: the API's choices and the Prometheus gauge's
    values are read from here."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


State = CircuitState
CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN

_MAX_EXPONENT = 64  # 2**64 * any sane base_delay is far beyond any cap; avoids float overflow


class CircuitBreaker:
    """Counts consecutive failures of one plugin and decides whether to let a call through.

    Thread-safe: transitions happen under a lock; the ``clean`` fast check is a plain
    attribute read, which is enough because a stale read only ever sends a call down the
    (correct, locked) slow path or lets one more call through a circuit that is just opening.
    """

    def __init__(
        self,
        threshold: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        jitter: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, not {threshold}")
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError(
                f"need 0 < base_delay <= max_delay, got base_delay={base_delay}, "
                f"max_delay={max_delay}"
            )
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter is a fraction in [0, 1), not {jitter}")
        self.threshold = threshold
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.jitter = float(jitter)
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self.state: State = CLOSED
        self.failures = 0
        """Consecutive failures since the last success."""
        self.opens = 0
        """How many times the circuit opened since it was last closed (drives the backoff)."""
        self.delay = 0.0
        """The backoff of the current opening, jitter included (0 while closed)."""
        self.opened_until = 0.0
        """Clock value at which an open circuit lets a trial through."""
        self.clean = True
        self._trial_started: float | None = None

    # -- decisions ---------------------------------------------------------------------------

    def allow(self) -> bool:
        """May a call go through now?

        Closed: yes. Open: no until the backoff has elapsed; the first caller after that moves
        the circuit to half open and is the trial. Half open: no while the trial is in flight,
        unless the trial has gone unreported for longer than the current delay (a trial whose
        caller vanished must not wedge the circuit forever), in which case a new trial starts.
        """
        if self.clean:
            return True
        with self._lock:
            if self.state == CLOSED:
                return True
            now = self._clock()
            if self.state == OPEN:
                if now < self.opened_until:
                    return False
                self.state = HALF_OPEN
                self._trial_started = now
                return True
            started = self._trial_started if self._trial_started is not None else now
            if now - started >= max(self.delay, self.base_delay):
                self._trial_started = now
                return True
            return False

    def record_success(self) -> bool:
        """Close the circuit and forget the failures; True when this ended an outage
        (the circuit was open or half open), so the caller can report the recovery."""
        if self.clean:
            return False
        with self._lock:
            recovered = self.state != CLOSED
            self._close()
            return recovered

    def record_failure(self) -> bool:
        """Count a failure; True when it (re)opened the circuit.

        The ``threshold``-th consecutive failure opens a closed circuit; a failed half-open
        trial re-opens it with the next, doubled, delay. A failure reported while the circuit
        is already open (a call that started before it opened) changes nothing but the count.
        """
        with self._lock:
            self.failures += 1
            self.clean = False
            if self.state == HALF_OPEN or (
                self.state == CLOSED and self.failures >= self.threshold
            ):
                self._open()
                return True
            return False

    def trip(self) -> None:
        """Open now, whatever the count: a failure too severe to wait for the threshold (a
        call that kept a CPU busy after its caller gave up, and had to be stopped)."""
        with self._lock:
            self.failures += 1
            self.clean = False
            self._open()

    def reset(self) -> None:
        """Close and forget everything (an operator enabled or reloaded the plugin)."""
        with self._lock:
            self._close()

    # -- reading -----------------------------------------------------------------------------

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a trial through (0 when not open)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self.opened_until - self._clock())

    def next_delay(self) -> float:
        """The un-jittered backoff the next opening would use (for display and tests)."""
        return self._raw_delay(self.opens + 1)

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "failures": self.failures,
            "threshold": self.threshold,
            "opens": self.opens,
            "delay": round(self.delay, 3),
            "retry_in": round(self.retry_in(), 3),
        }

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.state} failures={self.failures}/{self.threshold} "
            f"opens={self.opens}>"
        )

    # -- internals (lock held) ---------------------------------------------------------------

    def _raw_delay(self, opening: int) -> float:
        exponent = min(max(opening - 1, 0), _MAX_EXPONENT)
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def _open(self) -> None:
        self.opens += 1
        spread = self.jitter * (2.0 * self._rng() - 1.0)
        delay = self._raw_delay(self.opens) * (1.0 + spread)
        self.delay = min(self.max_delay, max(0.0, delay))
        self.opened_until = self._clock() + self.delay
        self.state = OPEN
        self._trial_started = None

    def _close(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self.opens = 0
        self.delay = 0.0
        self.opened_until = 0.0
        self._trial_started = None
        self.clean = True

"""Each plugin's code runs on its own lane: worker threads the caller waits on, never longer
than its deadline.

Python cannot simply stop a thread, so a call that overruns is abandoned: it keeps its lane
slot until it returns (or the :mod:`.reaper` stops it for spinning). While an abandoned call
still runs, the plugin's next calls are refused at once instead of starting yet another
thread that would hang too, and a lane never runs more than ``PLUGINS_MAX_INFLIGHT`` calls.
That makes a stuck plugin cost later requests nothing, and it is per plugin: one plugin's
stuck calls never take a slot of another's. No lock is held while plugin code runs. A
second caller of the same read joins the running call (single flight).

A lane keeps a few workers parked between calls (``sandbox.timeouts.Workers``): a call is
handed to one instead of starting a thread. A worker whose call was abandoned is never
reused: it ends with that call.

Worker threads run in a fresh ``contextvars`` context (Django keeps database connections
there, and a worker must never share its caller's) and close their own connections when
they end.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from django.db import connections

from .. import store
from ..conf import plugin_settings
from ..errors import ReasonCode
from ..sandbox import PluginSandbox, SandboxError
from ..sandbox.process.errors import ProcessCrashed
from ..sandbox.timeouts import Pending, Workers, thread_stack
from . import budget, outbox, reaper
from .threads import plugin_thread

logger = logging.getLogger(__name__)
IDLE_WORKERS = 4
"""Worker threads a lane keeps parked between calls: handing a call to one costs a queue
put, starting a thread per call 100-250 µs (most of a process-isolated call's time)."""
PARKED_MAX = 16
"""Workers a lane with more slots than ``IDLE_WORKERS`` keeps parked at most (a middleware's
lane: one per broker of a page; parked workers end after 10 s without a call)."""
REFRESH_GROWTH = 5
"""A plugin whose background refreshes keep failing is asked again ever later: after
``PLUGINS_REVALIDATE_EVERY`` x 2**(n-1) seconds for its n-th failure in a row, n-1 at most
this (16 min by default), so a broken plugin costs the process a bounded share of its CPU."""
RECHECK_SLOW = 1.0
"""Seconds after its first slow answer that a plugin is asked again, in the background,
before it is served from its last answer for ``PLUGINS_REVALIDATE_EVERY``: one slow call
may be a busy moment of the process (its start, a neighbour's burst), not the plugin."""
FAILING_STREAK = 2
"""Calls in a row that failed (fast: a slow one is ``sluggish``), after which pages stop
calling the plugin: they show its last answer (or why it failed) at once, and it is asked
again in the background, ``RECHECK_FAILED`` apart, until it answers or its circuit opens
(then at the circuit's trials). Each page's call cost the page the failure itself - the
exception, its traceback formatted - until the circuit's threshold; one failure alone is
asked again by the next page (it may have been a one-off)."""
RECHECK_FAILED = 1.0
"""Seconds between two background calls of a plugin failing ``FAILING_STREAK`` times in a
row, until its circuit opens."""
CRASH_LOOP = 2
"""Calls in a row whose process-isolated child died, after which pages stop calling the
plugin: it is served from its last answer (or as unavailable) and asked again in the
background like any failing plugin, and its child restarted only shortly before that
(``background.REVIVE_LEAD``). Each page's call would otherwise restart the child as soon as
its backoff allows - an interpreter's start of CPU, seconds apart, beside the pages - only
to watch it die again. One crash alone is retried as before: it may have been a one-off."""


@dataclass
class Running:
    operation: str
    since: float
    abandoned: float | None = None
    """When its caller gave up on it (it still holds its slot until it returns)."""
    era: int = 0
    """The lane's era when it started (:meth:`Lane.start_afresh`): a call of the plugin's
    earlier code or config judges nothing about the new one when it ends."""


class Lane:
    latency: float
    """Seconds the last completed call took (answered or failed)."""
    sluggish: bool
    """Its calls are slow (``PLUGINS_SLOW_CALL``): set by a call slower than that, cleared
    only by one faster than half of it, so a plugin whose calls take about the threshold
    does not make every other page wait for it."""
    confirmed: bool
    """A second call found it slow too (:data:`RECHECK_SLOW`)."""
    _recheck_now: bool
    """Its next background refresh is due at once (:meth:`recheck`)."""
    failure: str
    """How the last completed call failed ('' when it answered)."""
    launched: float
    """When the last call started (monotonic)."""
    overran: bool
    """A call overran its caller's deadline and none has answered since: the next
    callers do not wait for this plugin (they are served its last good answer while a
    new call finds out whether it is well again)."""
    failures: int
    """Calls that failed in a row (an answer ends the streak)."""
    _spread: float
    """The random stretch of the next refresh's spacing (drawn once per failure), so
    processes whose plugin failed together do not ask it again together."""
    refused_until: float
    """Its circuit opened on, or refused, a call of its failing streak until then
    (monotonic; 0 once it answers). Asking it before only costs a page two thread hops (its
    lane, its middleware's) for the same refusal; asking it after is the circuit's trial,
    made in the background (:meth:`due`), not on a page: a trial that fails as the calls
    before it did cost the page that carried it its error, its log line and its record."""
    crashes: int
    """Calls in a row that its child died in (a refusal while it restarts does not end
    the streak; an answer or any other failure does)."""
    crash: str
    """How the last of those calls ended."""

    def __init__(self, plugin: str, slots: int) -> None:
        self.plugin = plugin
        self.slots = max(1, slots)
        self._lock = threading.Lock()
        self._running: dict[int, Running] = {}
        self._shared: dict[Hashable, Call] = {}
        self._next = 0
        self._workers = Workers(keep=min(self.slots, IDLE_WORKERS))
        self.launched = 0.0
        self._era = 0
        self._forget_judgement()

    def _forget_judgement(self) -> None:
        """What its calls showed so far: nothing (under the lock, or before the lane is
        shared)."""
        self.latency = 0.0
        self.sluggish = False
        self.confirmed = False
        self._recheck_now = False
        self.failure = ""
        self.overran = False
        self.failures = 0
        self._spread = 1.0
        self.refused_until = 0.0
        self.crashes = 0
        self.crash = ""

    def start_afresh(self) -> None:
        """Its code or config is new: what its earlier calls showed (slow, failing, overran,
        refused by its circuit, crashing its child) is not held against its next call, which
        pages wait for again. Earlier calls still running keep their slots - an abandoned
        one still refuses new calls while it runs, so hung threads do not pile up - but
        judge nothing when they end."""
        with self._lock:
            self._era += 1
            self._forget_judgement()

    def widen(self, slots: int) -> None:
        """Let ``slots`` calls run at once. A lane that runs many together (a middleware's:
        every broker call of a page) keeps a worker parked for each, up to ``PARKED_MAX``:
        a call beyond the parked ones starts a thread, and one beyond those ends with it."""
        self.slots = slots
        self._workers.keep(min(slots, PARKED_MAX))

    def _take(self, operation: str) -> int | SandboxError:
        now = time.monotonic()
        with self._lock:
            stuck = [r for r in self._running.values() if r.abandoned is not None]
            if stuck:
                oldest = min(stuck, key=lambda r: r.since)
                return SandboxError(
                    self.plugin,
                    ReasonCode.TIMEOUT,
                    operation,
                    f"not called: an earlier call ('{oldest.operation}') is still running "
                    f"after {now - oldest.since:.0f} s",
                )
            if len(self._running) >= self.slots:
                return SandboxError(
                    self.plugin,
                    ReasonCode.TIMEOUT,
                    operation,
                    f"not called: {self.slots} calls already running",
                )
            self._next += 1
            self._running[self._next] = Running(operation, now, era=self._era)
            self.launched = now
            self._recheck_now = False
            return self._next

    def _give_back(self, ticket: int, error: BaseException | None, excused: float = 0.0) -> bool:
        """The call's slot back; True when its caller had given up on it (decided under the
        lock :meth:`_abandon` takes, so a thread the reaper may aim at is never reused).
        ``excused``: seconds of the call that were other plugins' (not its latency)."""
        with self._lock:
            running = self._running.pop(ticket, None)
            if running is not None and running.era != self._era:
                return running.abandoned is not None  # the plugin's earlier code or config
            if running is not None:
                self.latency = max(0.0, time.monotonic() - running.since - excused)
                threshold = float(plugin_settings.SLOW_CALL)
                if self.latency > threshold:
                    self.confirmed = self.sluggish
                    self.sluggish = True
                elif self.latency < threshold / 2:
                    self.sluggish = self.confirmed = False
            if isinstance(error, ProcessCrashed):
                self.crashes += 1
                self.crash = error.message
            elif getattr(error, "code", None) is not ReasonCode.CIRCUIT_OPEN:
                self.crashes = 0
            if error is None:
                self.overran = False
                self.failure = ""
                self.failures = 0
                self.refused_until = 0.0
            else:
                self.failure = getattr(error, "message", "") or f"{type(error).__name__}"
                self.failures += 1
                wait = getattr(error, "retry_in", None)
                if getattr(error, "code", None) is ReasonCode.CIRCUIT_OPEN and wait:
                    self.refused_until = time.monotonic() + float(wait)
                self._spread = 1.0 + float(plugin_settings.RETRY_JITTER) * random.random()
            return running is None or running.abandoned is not None

    def slow(self) -> str:
        """Why callers should not wait for this plugin ('' when they should): it overran
        its caller's deadline, its circuit refused the last call and still would, or its
        last call - answer or failure - took longer than ``PLUGINS_SLOW_CALL`` (a
        process-isolated plugin whose child keeps crashing is slow to fail: each call
        restarts it)."""
        if self.overran:
            running = self.running()
            if running:
                age = time.monotonic() - running[0].since
                return f"no answer yet: its call is still running after {age:.0f} s"
            return "did not answer in time; asked again in the background"
        if self.crashes >= CRASH_LOOP:
            return (
                f"its process died in each of its last {self.crashes} calls ({self.crash}); "
                "asked again in the background"
            )
        if self._circuit_failing() or self._failing() or (self.sluggish and self.failure):
            return f"failed ({self.failure}); asked again in the background"
        if self.sluggish:
            return f"answers slowly ({self.latency:.1f} s); refreshed in the background"
        return ""

    def due(self) -> bool:
        """May a slow plugin be asked again now (in the background)?"""
        with self._lock:
            if self._running:
                return False
            return self._recheck_now or time.monotonic() >= self._next_refresh()

    def _next_refresh(self) -> float:
        """When a plugin pages do not call is next asked in the background (monotonic):
        at its circuit's trial once its failing streak opened it, ``RECHECK_FAILED`` after
        its last call while it fails fast, else ``refresh_after()`` after it."""
        if self._circuit_failing():
            return self.refused_until
        if self._failing():
            return self.launched + RECHECK_FAILED
        return self.launched + self.refresh_after()

    def _failing(self) -> bool:
        """Its last ``FAILING_STREAK`` calls failed fast, and its circuit is still closed."""
        return (
            bool(self.failure)
            and self.failures >= FAILING_STREAK
            and not (self.sluggish or self.overran or self.refused_until)
            and self.crashes < CRASH_LOOP
        )

    def _circuit_failing(self) -> bool:
        """Its failing streak opened its circuit: its trials are its background refreshes
        (a child that died in each of its last calls is asked less often: ``CRASH_LOOP``)."""
        return bool(self.failure and self.refused_until) and self.crashes < CRASH_LOOP

    def recheck(self) -> bool:
        """Make the background refresh of a plugin judged slow by one call alone due now;
        True if it was so judged."""
        with self._lock:
            unconfirmed = self._unconfirmed()
            self._recheck_now = self._recheck_now or unconfirmed
            return unconfirmed

    def _unconfirmed(self) -> bool:
        """Slow by one answer alone: no second call, failure or overrun says so yet."""
        return self.sluggish and not self.confirmed and not self.failure and not self.overran

    def refresh_after(self) -> float:
        """Seconds a slow plugin's answer is served before it is asked again: longer after
        each failure in a row (with jitter), so a plugin that keeps hanging, spinning or
        crashing its child is asked ever more rarely."""
        spacing = max(float(plugin_settings.REVALIDATE_EVERY), 4 * self.latency)
        if self._unconfirmed():
            return min(spacing, max(RECHECK_SLOW, 4 * self.latency))
        if self.failures > 1:
            spacing *= 2 ** min(self.failures - 1, REFRESH_GROWTH) * self._spread
        return spacing

    def called_within(self, seconds: float) -> bool:
        """Will this plugin be called within ``seconds``: pages call it (it is not slow), a
        call of it runs now, or its background refresh is due by then."""
        if not self.slow():
            return True
        with self._lock:
            if self._running:
                return True
        return self._next_refresh() - time.monotonic() <= seconds

    def _abandon(self, ticket: int) -> bool:
        """Its caller gave up on the call; True the first time (several may wait on it)."""
        with self._lock:
            running = self._running.get(ticket)
            if running is None or running.era == self._era:
                self.overran = True
            if running is None or running.abandoned is not None:
                return False
            running.abandoned = time.monotonic()
            return True

    def running(self) -> list[Running]:
        with self._lock:
            return sorted(self._running.values(), key=lambda r: r.since)

    def close(self) -> None:
        """End the lane's parked workers (calls running now finish first)."""
        self._workers.close()

    def joinable(self, key: Hashable) -> Call | None:
        """A call of the same operation and arguments running now, not given up on: a
        second caller waits for it instead of running the plugin twice (single flight)."""
        with self._lock:
            call = self._shared.get(key)
            running = self._running.get(call.ticket) if call is not None else None
        return call if running is not None and running.abandoned is None else None

    def start(
        self,
        operation: str,
        func: Callable[..., Any],
        *args: Any,
        revalidate: bool = True,
        key: Hashable | None = None,
        excused: Callable[[], float] | None = None,
    ) -> Call:
        """Start ``func(*args)`` on a worker thread; raises a ``timeout`` SandboxError at
        once when the lane is full or an abandoned call still runs. With ``revalidate``
        (calls whose last good answer can stand in), the caller of a plugin that overran
        before does not wait; without it (health checks, config changes) it always does.
        ``excused()``: seconds of the call spent waiting on other plugins' code (a
        middleware's ``proceed()``), left out of this plugin's latency."""
        # A slow plugin's call is a background refresh: nobody waits for it (see
        # ``calls._start``), so nobody would abandon it either.
        unattended = revalidate and bool(self.slow())
        ticket = self._take(operation)
        if isinstance(ticket, SandboxError):
            raise ticket
        failed: list[BaseException] = []

        def work(*a: Any) -> Any:
            try:
                return func(*a)
            except BaseException as exc:  # the Pending hands it to the waiter too
                failed.append(exc)
                raise

        def finished() -> bool:
            with self._lock:
                if key is not None and getattr(self._shared.get(key), "ticket", None) == ticket:
                    del self._shared[key]
            abandoned = self._give_back(
                ticket, failed[0] if failed else None, excused() if excused else 0.0
            )
            connections.close_all()
            return not abandoned  # an abandoned call's thread ends with it

        try:
            pending = self._workers.start(
                plugin_thread(work),
                args,
                name=f"plugin:{self.plugin}:{operation}",
                on_exit=finished,
            )
        except BaseException as exc:
            self._give_back(ticket, exc)
            raise
        call = Call(self, operation, pending, ticket, patient=not (revalidate and self.overran))
        if unattended:
            # Given up on, as a page's call would be, once a page's budget is over: the
            # reaper then stops it if it spins, and the lane refuses calls while it runs.
            reaper.unattended(
                self.plugin,
                operation,
                pending,
                call.started,
                after=budget.budget(),
                on_abandon=lambda: self._abandon(ticket),
            )
        if key is not None:
            with self._lock:
                if ticket in self._running:  # not finished already
                    self._shared[key] = call
        return call


class Call:
    """A call running on a lane; :meth:`wait` returns its value or raises a SandboxError."""

    def __init__(
        self, lane: Lane, operation: str, pending: Pending, ticket: int, patient: bool = True
    ) -> None:
        self.lane = lane
        self.operation = operation
        self.pending = pending
        self.ticket = ticket
        self.started = time.monotonic()
        self.process_cpu = time.process_time()
        """The process's CPU time when the call started: was the process busy while its
        caller waited (see :func:`_busy`)?"""
        self.patient = patient
        """False when the plugin overran before this call started: its caller does not wait."""

    @property
    def done(self) -> bool:
        return self.pending.done.is_set()

    def wait(self, deadline: float, limit: float) -> Any:
        """Wait until ``deadline`` (monotonic), or not at all when the plugin overran
        before; ``limit`` is the caller's whole budget, for the message."""
        wait = max(0.0, deadline - time.monotonic()) if self.patient else 0.0
        if not self.pending.done.wait(wait):
            message = (
                f"no answer within {limit:g} s (still running in the background)" + _busy(self)
                if self.patient
                else "did not answer in time before; asked again in the background"
            )
            err = SandboxError(
                self.lane.plugin,
                ReasonCode.TIMEOUT,
                self.operation,
                message,
                stack=thread_stack(self.pending.thread),
            )
            if self.lane._abandon(self.ticket):
                if self.patient:
                    # A call not waited for because the plugin overran before is not news:
                    # that overrun was reported, and nothing has answered since. (A process's
                    # busy start once wrote 14 such events for a healthy middleware, one per
                    # broker call through it.)
                    _report_overrun(err)
                reaper.abandon(self.lane.plugin, self.operation, self.pending, self.started)
            raise err
        if isinstance(self.pending.error, reaper.CallStopped):
            raise SandboxError(
                self.lane.plugin,
                ReasonCode.TIMEOUT,
                self.operation,
                "stopped: it kept a CPU busy after its caller gave up",
            )
        return self.pending.result()


BUSY_SHARE = 0.9
"""A process that used at least this share of one CPU while a caller waited was busy: its
threads take turns on the interpreter's lock, so a call may have waited for it, not hung."""
OWN_SHARE = 0.25
"""...unless the call itself used at least this share of the wait: then the CPU was its own."""


def _busy(call: Call) -> str:
    """Words for an overrun's message when the process was busy all the while its caller
    waited and the call used little of it ('' otherwise): then the plugin may have been kept
    waiting (a neighbour spinning, every plugin loading at a process's start), and whoever
    reads the event should know it before blaming the plugin."""
    waited = time.monotonic() - call.started
    if waited <= 0 or reaper.child_pid(call.lane.plugin) is not None:
        # A process-isolated plugin's code runs in its child, not on this process's
        # interpreter lock: this process's being busy does not excuse it.
        return ""
    used = (time.process_time() - call.process_cpu) / waited
    if used < BUSY_SHARE:
        return ""
    own = reaper.call_cpu(call.pending)
    if own is None or own >= OWN_SHARE * waited:
        return ""
    return (
        f", while this process kept a CPU {min(used, 1.0):.0%} busy and the call used "
        f"{own / waited:.0%} of it: it may have waited for the CPU, not hung"
    )


_lanes: dict[str, Lane] = {}
_lanes_lock = threading.Lock()


def lane(plugin: str, slots: int | None = None) -> Lane:
    """The plugin's lane (``slots``: its calls that may run at once, when the lane is made;
    ``PLUGINS_MAX_INFLIGHT`` by default)."""
    found = _lanes.get(plugin)
    if found is None:
        with _lanes_lock:
            found = _lanes.get(plugin)
            if found is None:
                found = _lanes[plugin] = Lane(plugin, int(plugin_settings.MAX_INFLIGHT))
    if slots is not None and found.slots < slots:
        found.widen(slots)  # whoever made the lane first (a health check) did not know
    return found


def start_afresh(plugin: str | None = None) -> None:
    """The plugin's code or config is new (None: every plugin's): :meth:`Lane.start_afresh`.
    An operator who fixed a plugin and reloaded it sees its fresh answer on the next page,
    not its last good one "asked again in the background" for as long as the backoff its
    failures had earned."""
    with _lanes_lock:
        if plugin is None:
            found = list(_lanes.values())
        else:
            one = _lanes.get(plugin)
            found = [one] if one is not None else []
    for ln in found:
        ln.start_afresh()


def called_within(plugin: str, seconds: float) -> bool:
    """``Lane.called_within`` of the plugin's lane; True when it has none yet (nothing is
    known against calling it)."""
    found = _lanes.get(plugin)
    return True if found is None else found.called_within(seconds)


def recheck_unconfirmed() -> list[str]:
    """The plugins one slow call alone judged slow, their background refresh made due now
    (:meth:`Lane.recheck`): the warm-up asks them again before the process takes requests,
    so a busy start is not taken for a slow plugin, nor a slow plugin's second call left to
    run beside a user's page."""
    with _lanes_lock:
        found = list(_lanes.values())
    return [ln.plugin for ln in found if ln.recheck()]


def busy(plugin: str) -> bool:
    """Does a call of the plugin run now (in this process)?"""
    found = _lanes.get(plugin)
    return found is not None and bool(found.running())


def run(
    plugin: str,
    box: PluginSandbox,
    operation: str,
    func: Callable[..., Any],
    *args: Any,
    revalidate: bool = True,
    **kwargs: Any,
) -> Any:
    """``box.run(operation, func, ...)`` on the plugin's lane, within the caller's deadline
    and with the caller's page scope: the one way a panel, a view, a health check or a
    config change reaches plugin code."""
    scope = budget.current()

    def in_scope() -> Any:
        with budget.inherit(scope):
            return box.run(operation, func, *args, **kwargs)

    call = lane(plugin).start(operation, in_scope, revalidate=revalidate)
    return call.wait(budget.deadline(), budget.limit())


def _report_overrun(err: SandboxError) -> None:
    """An abandoned call is news once: an event with where it hangs, written off the
    request path."""
    details = err.as_dict()
    outbox.post(
        f"the overrun of plugin {err.plugin}",
        lambda: store.record_failure(err.plugin, f"{err.operation} failed: {err.message}", details),
    )


def stuck() -> dict[str, list[Running]]:
    """Plugins with calls running now, and since when (for diagnostics and tests)."""
    with _lanes_lock:
        lanes = list(_lanes.values())
    return {ln.plugin: r for ln in lanes if (r := ln.running())}


def reset() -> None:
    with _lanes_lock:
        old = list(_lanes.values())
        _lanes.clear()
    for ln in old:
        ln.close()


def _after_fork_in_child() -> None:
    """A forked child (gunicorn --preload, Celery prefork) has none of its parent's threads:
    a lane of the parent's would hand calls to parked workers that do not exist here, or
    count slots taken by calls running there. The child makes its own lanes."""
    global _lanes_lock
    _lanes_lock = threading.Lock()
    _lanes.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)

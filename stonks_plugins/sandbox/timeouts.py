"""Bounded-time calls: run a function in a worker thread and stop waiting for it.

Python cannot kill a thread, so a plugin that hangs in ``initialize`` cannot be stopped; what
can be guaranteed is that the *caller* — a request, a Celery task, ``ready()`` — is freed when
the limit passes. The function runs in a fresh daemon thread; the caller waits on an event
for at most ``timeout`` seconds and, on overrun, gets an :class:`Outcome` that says so and
carries the still-running thread (the sandbox lists it as abandoned and reports it as a leak
on unload) and that thread's current stack, which tells an operator *where* it hangs.
A daemon thread never keeps the process from exiting.

Things a bounded call cannot undo, and why they are acceptable here:

- the abandoned thread keeps running and holding whatever it holds. If it hangs inside an
  ``import``, it holds that module's import lock, so any later import of the same module
  blocks too — which is why the sandbox bounds *every* ``import`` operation, making the
  retry time out as well instead of wedging its caller;
- thread-local state (a Django database connection, for one) is per thread: ``on_exit`` runs
  in the worker's ``finally`` so the integrator can close such things (it is not called for a
  thread that never finishes).

The worker runs the function in a fresh :mod:`contextvars` context: context-bound state
(Django's database connections among it) must not be shared with the caller's thread.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of a bounded call. ``finished`` False means it was abandoned."""

    finished: bool
    value: Any = None
    error: BaseException | None = None
    thread: threading.Thread | None = None
    stack: str = ""


@dataclass
class Abandoned:
    """A bounded call that overran: its thread may still be running."""

    operation: str
    thread: threading.Thread
    timeout: float
    since: float


def thread_stack(thread: threading.Thread) -> str:
    """The formatted current stack of a running thread ('' when it is gone)."""
    if thread.ident is None:
        return ""
    frame = sys._current_frames().get(thread.ident)
    if frame is None:
        return ""
    return "".join(traceback.format_stack(frame))


class Pending:
    """A call running on its own daemon thread, in a fresh :mod:`contextvars` context.

    Whoever started it may wait on ``done`` as long as it likes and walk away; the thread
    keeps running and ``on_exit`` runs when it ends.
    """

    def __init__(self, thread: threading.Thread, done: threading.Event, box: dict[str, Any]):
        self.thread = thread
        self.done = done
        self._box = box

    @classmethod
    def start(
        cls,
        func: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        name: str = "bounded-call",
        on_exit: Callable[[], None] | None = None,
    ) -> Pending:
        kw = dict(kwargs or {})
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            box["cpu0"] = time.thread_time()
            try:
                box["value"] = func(*args, **kw)
            except BaseException as exc:  # handed to the caller, who decides what to re-raise
                box["error"] = exc
            finally:
                done.set()
                if on_exit is not None:
                    try:
                        on_exit()
                    except Exception:
                        logger.exception("on_exit hook of %s failed", name)

        # A fresh context, not a copy of the caller's: Django keeps database connections in
        # context-local storage, so a copy would hand the worker the caller's connection -
        # two threads on one connection, and on_exit closing it under the caller.
        context = contextvars.Context()
        thread = threading.Thread(target=context.run, args=(work,), name=name, daemon=True)
        thread.start()
        return cls(thread, done, box)

    @property
    def value(self) -> Any:
        return self._box.get("value")

    @property
    def cpu_start(self) -> float | None:
        """The thread's CPU time (``time.thread_time()``, seconds) when this call began on
        it; None until it has. What the call itself used is the thread's CPU now less this."""
        return self._box.get("cpu0")

    @property
    def error(self) -> BaseException | None:
        return self._box.get("error")

    def result(self) -> Any:
        """The value, or raise what the call raised (only once ``done``)."""
        error = self._box.get("error")
        if error is not None:
            raise error
        return self._box.get("value")


def call_with_timeout(
    func: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    timeout: float,
    name: str = "bounded-call",
    on_exit: Callable[[], None] | None = None,
) -> Outcome:
    """Call ``func(*args, **kwargs)`` in a daemon thread and wait at most ``timeout`` s.

    Never raises what ``func`` raises: the exception (any ``BaseException``, ``SystemExit``
    included - a plugin calling ``sys.exit`` in a worker must be reported, not silently end
    the thread) comes back in ``Outcome.error`` with its traceback intact.
    """
    pending = Pending.start(func, args, kwargs, name=name, on_exit=on_exit)
    if not pending.done.wait(timeout):
        return Outcome(False, thread=pending.thread, stack=thread_stack(pending.thread))
    return Outcome(True, value=pending.value, error=pending.error, thread=pending.thread)


_Task = tuple[
    Callable[..., Any], tuple[Any, ...], threading.Event, dict[str, Any], str, Callable[[], bool]
]
_Inbox = queue.SimpleQueue[_Task | None]


class Workers:
    """Daemon threads kept for a stream of bounded calls (one plugin's lane).

    Starting a thread costs ~100-250 µs on the reference machine (``Thread.start`` waits for
    the new thread to run); handing a call to a parked one is a queue put. So a call goes to
    an idle worker when there is one, to a new thread otherwise, and gets the same
    :class:`Pending` as :meth:`Pending.start`, run in a fresh :mod:`contextvars` context.

    A worker serves another call only when its last call's ``on_exit`` returns True: the
    owner says False for a call its caller gave up on, so that thread ends with that call and
    nothing aimed at the abandoned call (its stack, the reaper's asynchronous exception) ever
    reaches a later one. At most ``keep`` workers wait, each for ``idle`` seconds.
    """

    def __init__(self, keep: int = 4, idle: float = 10.0) -> None:
        self._keep = keep
        self._idle_for = idle
        self._lock = threading.Lock()
        self._parked: list[tuple[_Inbox, threading.Thread]] = []
        self._closed = False

    def start(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...] = (),
        *,
        name: str,
        on_exit: Callable[[], bool],
    ) -> Pending:
        done = threading.Event()
        box: dict[str, Any] = {}
        task: _Task = (func, args, done, box, name, on_exit)
        with self._lock:
            parked = self._parked.pop() if self._parked else None
        if parked is not None:
            inbox, thread = parked
            inbox.put(task)
            return Pending(thread, done, box)
        inbox = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, args=(inbox, task), name=name, daemon=True)
        thread.start()
        return Pending(thread, done, box)

    def _serve(self, inbox: _Inbox, task: _Task | None) -> None:
        while task is not None and _run(task):
            task = self._park(inbox)

    def _park(self, inbox: _Inbox) -> _Task | None:
        """Wait for the next call; None when the worker should end."""
        me = (inbox, threading.current_thread())
        with self._lock:
            if self._closed or len(self._parked) >= self._keep:
                return None
            self._parked.append(me)
        try:
            return inbox.get(timeout=self._idle_for)
        except queue.Empty:
            with self._lock:
                if me in self._parked:
                    self._parked.remove(me)
                    return None
            return inbox.get()  # a caller took this worker just now: its call is on the way

    def keep(self, count: int) -> None:
        """Park up to ``count`` workers from now on (one whose call ends beyond that ends)."""
        with self._lock:
            self._keep = max(self._keep, count)

    def close(self) -> None:
        """End the parked workers (running calls finish first)."""
        with self._lock:
            self._closed = True
            parked, self._parked = self._parked, []
        for inbox, _thread in parked:
            inbox.put(None)


def _run(task: _Task) -> bool:
    """One call of a :class:`Workers` thread; True when the thread may serve another."""
    func, args, done, box, name, on_exit = task
    threading.current_thread().name = name

    def work() -> bool:
        # The thread's CPU clock as this call begins: a parked thread has served earlier
        # calls, whose CPU is not this one's (see ``Pending.cpu_start``).
        box["cpu0"] = time.thread_time()
        try:
            box["value"] = func(*args)
        except BaseException as exc:  # handed to the caller, who decides what to re-raise
            box["error"] = exc
        try:
            done.set()
            return bool(on_exit())
        except BaseException:  # an exception aimed at this call after it ended, or a hook bug
            logger.exception("on_exit hook of %s failed", name)
            return False

    return contextvars.Context().run(work)

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
import sys
import threading
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

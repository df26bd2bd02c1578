"""What a call into a process-isolated plugin raises.

Every class is a :class:`~stonks_plugins.sandbox.errors.SandboxError`, the type callers of
an in-process plugin see, with the same fields, so one ``except`` and one mapping serve both
modes. ``cause`` adds what happened to the process, as a short tag for events: ``exit``,
``signal``, ``memory``, ``cpu``, ``timeout``, ``load``, ``raised``, ``backoff``, ``closed``,
``busy``, ``transfer``.

Reason codes (``.code``):

- the plugin failed to load in the child: its own, as in-process (``import_error``,
  ``initialize_failed``); the child died or ran out of memory while starting:
  ``initialize_failed``;
- the child did not get ready in time, or a call overran: ``timeout`` (:class:`ProcessTimeout`
  for a call);
- the child died during a call: ``health_failed`` - the stable list has no "crashed" code, and
  a dead process is the plainest failed health check;
- a call during the restart backoff, or on a closed host: ``circuit_open``;
- the plugin did what its permissions do not allow: ``permission_denied``;
- the plugin's code raised and the child lives on: the code a ``PluginError`` (or
  ``PluginNotReady``...) raised in the child carries, else ``health_failed``.
"""

from __future__ import annotations

from typing import Any

from ...errors import ReasonCode
from ..errors import SandboxError


class ProcessIsolationError(SandboxError):
    """Any failure of a process-isolated plugin; ``cause`` says what happened to the process."""

    def __init__(
        self,
        plugin: str,
        code: ReasonCode,
        message: str,
        *,
        operation: str = "call",
        traceback: str = "",
        cause: str = "",
    ) -> None:
        super().__init__(plugin, code, operation, message, traceback)
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        # Each subclass has its own signature: rebuild from the state, not the arguments.
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))


def _rebuilt(
    cls: type[ProcessIsolationError], args: tuple[Any, ...], state: dict[str, Any]
) -> ProcessIsolationError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class ProcessCrashed(ProcessIsolationError):
    """The child is gone (it exited, was killed, ran out of memory) or never got ready.

    ``exitcode`` is the child's exit status (negative: the signal number), ``signal`` the
    signal's name, ``pid`` the child that died. The host restarts it after the backoff.
    """

    def __init__(
        self,
        plugin: str,
        code: ReasonCode,
        message: str,
        *,
        operation: str = "call",
        traceback: str = "",
        cause: str = "",
        exitcode: int | None = None,
        signal: str | None = None,
        pid: int | None = None,
    ) -> None:
        super().__init__(
            plugin, code, message, operation=operation, traceback=traceback, cause=cause
        )
        self.exitcode = exitcode
        self.signal = signal
        self.pid = pid


class ProcessTimeout(ProcessCrashed):
    """A call overran its deadline; the child was killed (code ``timeout``)."""


class ProcessCallError(ProcessIsolationError):
    """The plugin's code raised (or its result could not cross); the child lives on.

    ``exc_type`` is the name of the exception the plugin raised; ``traceback`` its text.
    """

    def __init__(
        self,
        plugin: str,
        code: ReasonCode,
        message: str,
        *,
        operation: str = "call",
        traceback: str = "",
        cause: str = "raised",
        exc_type: str = "",
    ) -> None:
        super().__init__(
            plugin, code, message, operation=operation, traceback=traceback, cause=cause
        )
        self.exc_type = exc_type


class ProcessCircuitOpen(ProcessIsolationError):
    """Failing fast: the child crashed and its restart is not due yet (``retry_in`` seconds;
    ``None`` when the host gave up or was closed)."""

    def __init__(
        self,
        plugin: str,
        message: str,
        *,
        operation: str = "call",
        retry_in: float | None = None,
        cause: str = "backoff",
    ) -> None:
        super().__init__(plugin, ReasonCode.CIRCUIT_OPEN, message, operation=operation, cause=cause)
        self.retry_in = retry_in

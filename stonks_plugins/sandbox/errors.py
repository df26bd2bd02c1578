"""The one exception callers of a plugin see, whether it runs in-process or in a child.

A ``BrokerUnavailableError``, so the core's aggregators skip that broker and render the rest,
and a ``PluginError``, so it carries a stable reason code and a message for the plugin's row.
"""

from __future__ import annotations

from typing import Any

from stonks_overwatch.core.exceptions import BrokerUnavailableError

from ..errors import PluginError, ReasonCode
from ..redaction import mask_known


class SandboxError(BrokerUnavailableError, PluginError):
    """A call into a plugin failed, timed out or was refused by its open circuit.

    ``str()`` is one line that names the plugin and the operation; ``traceback`` holds the
    formatted traceback of the plugin's exception ('' for a timeout or a refused call), and
    ``stack`` the stack of an abandoned thread at the moment it was abandoned (timeouts only):
    where it hangs.
    """

    def __init__(
        self,
        plugin: str,
        code: ReasonCode,
        operation: str,
        message: str,
        traceback: str = "",
        *,
        stack: str = "",
        service: bool = False,
        tripped: bool = False,
        cause_code: ReasonCode | None = None,
        cause_message: str | None = None,
        retry_in: float | None = None,
    ) -> None:
        # Plugin text may quote a credential; mask it where the error is made, so every
        # surface (the home page included, which cannot import the plugin system) gets it
        # masked. The two bases' __init__ signatures differ; set both sets of attributes.
        message, traceback = mask_known(message), mask_known(traceback)
        Exception.__init__(self, f"plugin '{plugin}': {operation} failed: {message}")
        self.broker = plugin
        self.plugin = plugin
        self.code = code
        self.operation = operation
        self.message = message
        self.traceback = traceback
        self.stack = stack
        self.service = service
        """Raised by a service method on the fast path (no state change unless ``tripped``)."""
        self.tripped = tripped
        """This failure opened (or re-opened) the circuit."""
        self.cause_code = cause_code if cause_code is not None else code
        """The failure's own code, when ``code`` became ``circuit_open`` because it tripped."""
        self.cause_message = self.message if cause_message is None else mask_known(cause_message)
        """The failure's own message, without what the circuit adds when it tripped."""
        self.retry_in = retry_in
        """Seconds until the circuit lets a trial through (circuit errors only)."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as cls(*args); ours has another signature (process isolation
        # sends these across a pipe).
        args = (self.plugin, self.code, self.operation, self.message, self.traceback)
        return (type(self), args, dict(self.__dict__))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for an event row's details."""
        return {
            "plugin": self.plugin,
            "code": self.code.value,
            "operation": self.operation,
            "message": self.message,
            "traceback": self.traceback,
            "stack": self.stack,
            "service": self.service,
            "tripped": self.tripped,
            "cause_code": self.cause_code.value,
            "retry_in": self.retry_in,
        }

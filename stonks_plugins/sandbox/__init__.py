"""In-process isolation of plugin code (the seed's PluginSandbox, section 2.3).

One :class:`PluginSandbox` per loaded plugin: every call into the plugin goes through it
(``run`` for lifecycle calls, bounded in time; ``wrap`` for service objects, on a fast path),
and every failure reaches the caller as one :class:`SandboxError`. Pure standard library plus
the project's error types — no Django — so the same code serves a plugin's child process.

Modules: :mod:`.boundary` (the sandbox, the error, the service proxy), :mod:`.timeouts`
(bounded calls), :mod:`.circuit` (circuit breaker with backoff), :mod:`.metrics` (per
operation counters and latency), :mod:`.resources` (the plugin's context and leak reports).
"""

from .boundary import (
    CIRCUIT_EXEMPT,
    DEFAULT_CODE,
    DEFAULT_TIMEOUTS,
    OPERATION_CODES,
    SERVICE_CODE,
    Abandoned,
    PluginSandbox,
    SandboxedProxy,
    SandboxError,
)
from .circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from .metrics import TOTAL_KEY, CallStats, PluginMetrics
from .resources import LeakReport, PluginContext
from .timeouts import Outcome, call_with_timeout

__all__ = [
    "CIRCUIT_EXEMPT",
    "CLOSED",
    "DEFAULT_CODE",
    "DEFAULT_TIMEOUTS",
    "HALF_OPEN",
    "OPEN",
    "OPERATION_CODES",
    "SERVICE_CODE",
    "TOTAL_KEY",
    "Abandoned",
    "CallStats",
    "CircuitBreaker",
    "LeakReport",
    "Outcome",
    "PluginContext",
    "PluginMetrics",
    "PluginSandbox",
    "SandboxError",
    "SandboxedProxy",
    "call_with_timeout",
]

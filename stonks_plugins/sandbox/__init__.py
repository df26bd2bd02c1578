"""In-process isolation of plugin code (the seed's PluginSandbox, section 2.3).

One :class:`PluginSandbox` per loaded plugin: every call into the plugin goes through it
(``run`` for lifecycle calls, bounded in time; ``wrap`` for service objects, on a fast path),
and every failure reaches the caller as one :class:`SandboxError`. Pure standard library plus
the project's error types — no Django — so the same code serves a plugin's child process.

Modules: :mod:`.boundary` (the sandbox: when a call fails, with which code, and what the
circuit does), :mod:`.errors` (the error), :mod:`.proxies` and :mod:`.codegen` (the fast
path's service proxies and generated wrappers), :mod:`.timeouts` (bounded calls),
:mod:`.circuit` (circuit breaker with backoff), :mod:`.metrics` (per operation counters and
latency), :mod:`.resources` (the plugin's context and leak reports), :mod:`.permissions` (what
a child may do) and :mod:`.process` (a plugin in a child process).
"""

from .boundary import (
    CIRCUIT_EXEMPT,
    DEFAULT_CODE,
    DEFAULT_TIMEOUTS,
    OPERATION_CODES,
    SERVICE_CODE,
    PluginSandbox,
)
from .circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from .errors import SandboxError
from .metrics import TOTAL_KEY, CallStats, PluginMetrics
from .proxies import SandboxedProxy
from .resources import LeakReport, PluginContext
from .timeouts import Abandoned, Outcome, call_with_timeout

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

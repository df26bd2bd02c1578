"""The isolation boundary: every call from the host into a plugin's code crosses a
:class:`PluginSandbox`, so one broken plugin never takes down a request, a worker or another
plugin.

Two paths, because the calls are of two kinds. ``run(operation, func, ...)``, for lifecycle
calls (``import``, ``initialize``, ``health_check``, ``shutdown``...): they are rare, so each
gets a worker thread that bounds its time; an overrun is abandoned with ``timeout``.
``wrap(instance, prefix)``, for service methods a page calls many times: no thread and no
timeout, one generated wrapper per method (:mod:`.codegen`, :mod:`.proxies`) that counts the
call, times a sample of them (:mod:`.metrics`) and checks the circuit with one attribute read
while the plugin is healthy.

Both turn every ``Exception`` - and ``SystemExit``: a plugin calling ``sys.exit`` must not end
a worker - into :class:`SandboxError`; control flow (``KeyboardInterrupt``, ``GeneratorExit``,
``CancelledError``) passes through, and so does a nested boundary's ``SandboxError``, already
counted. Both feed the plugin's :class:`CircuitBreaker` and call ``on_failure`` once per
failure of plugin code (not for calls the open circuit refused: they ran no plugin code).

Reason codes: ``run`` takes the operation's (``OPERATION_CODES``), else ``DEFAULT_CODE`` (what
``run`` guards besides those is setting the plugin up) unless the caller passes ``code=``; the
fast path uses ``SERVICE_CODE`` and marks the error ``service=True`` (one failed service call
changes no state). A ``PluginError`` from this plugin's own code path keeps its code, and so
does what a plugin raises to say why it cannot run (``errors.carried_code``). The error that
trips the circuit has ``code == circuit_open``, ``tripped=True`` and its own code in
``cause_code`` - unless it needs the operator (``errors.OPERATOR_CODES``): a retry would not
fix it. ``shutdown`` is exempt from the circuit (``CIRCUIT_EXEMPT``): releasing a plugin must
always be attempted, and a failing shutdown says nothing about whether it can serve.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback as _traceback
from collections.abc import Callable, Mapping
from enum import Enum
from time import perf_counter_ns
from typing import Any, Final, TypeVar

from ..errors import OPERATOR_CODES, PluginError, ReasonCode, StonksPluginsError, carried_code
from .circuit import HALF_OPEN, CircuitBreaker
from .codegen import fast_wrapper
from .codegen import shape as _shape  # noqa: F401  (read here by tests)
from .errors import SandboxError
from .metrics import CallStats, PluginMetrics
from .proxies import SandboxedProxy, make_proxy, proxy_class
from .resources import LeakReport, PluginContext, one_line
from .timeouts import Abandoned, Outcome, call_with_timeout

logger = logging.getLogger("stonks_plugins.sandbox")

T = TypeVar("T")

DEFAULT_TIMEOUTS: Final[dict[str, float]] = {
    "initialize": 10.0,
    "health_check": 5.0,
    "shutdown": 5.0,
    "import": 30.0,
}
OPERATION_CODES: Final[dict[str, ReasonCode]] = {
    "import": ReasonCode.IMPORT_ERROR,
    "initialize": ReasonCode.INITIALIZE_FAILED,
    "health_check": ReasonCode.HEALTH_FAILED,
    "shutdown": ReasonCode.INITIALIZE_FAILED,
}
DEFAULT_CODE: Final = ReasonCode.INITIALIZE_FAILED
SERVICE_CODE: Final = ReasonCode.HEALTH_FAILED
CIRCUIT_EXEMPT: Final = frozenset({"shutdown"})


class _Default(Enum):
    TOKEN = 0


_DEFAULT: Final = _Default.TOKEN


class _Overrun(StonksPluginsError):
    """Internal: a bounded call was abandoned (never raised by plugin code)."""

    def __init__(self, outcome: Outcome, limit: float) -> None:
        super().__init__("overrun")
        self.outcome = outcome
        self.limit = limit


# -- the sandbox --------------------------------------------------------------------------------


class PluginSandbox:
    """One plugin's boundary: its circuit, metrics, resource context and abandoned threads.

    ``timeouts`` extends/overrides ``DEFAULT_TIMEOUTS`` (seconds; ``None`` runs that
    operation inline, unbounded). ``on_failure`` receives each ``SandboxError`` once;
    ``on_recover(operation)`` is called when a half-open trial succeeds and the circuit
    closes; ``worker_exit`` runs at the end of every bounded call's worker thread (e.g. to
    close that thread's database connections). Exceptions from the three hooks are logged
    and swallowed: reporting a failure must never hide it.
    """

    def __init__(
        self,
        plugin: str,
        *,
        timeouts: Mapping[str, float | None] | None = None,
        circuit: CircuitBreaker | None = None,
        on_failure: Callable[[SandboxError], None] | None = None,
        on_recover: Callable[[str], None] | None = None,
        worker_exit: Callable[[], None] | None = None,
    ) -> None:
        self.plugin = plugin
        self.timeouts: dict[str, float | None] = {**DEFAULT_TIMEOUTS, **(timeouts or {})}
        self.circuit = circuit if circuit is not None else CircuitBreaker()
        self.metrics = PluginMetrics()
        self.context = PluginContext(plugin)
        self.on_failure = on_failure
        self.on_recover = on_recover
        self.worker_exit = worker_exit
        self._lock = threading.Lock()
        self._abandoned: list[Abandoned] = []
        self._proxy_classes: dict[type, type] = {}

    def timeout_for(self, operation: str) -> float | None:
        return self.timeouts.get(operation)

    # -- the full path ---------------------------------------------------------------------

    def run(
        self,
        operation: str,
        func: Callable[..., T],
        /,
        *args: Any,
        code: ReasonCode | None = None,
        timeout: float | _Default | None = _DEFAULT,
        **kwargs: Any,
    ) -> T:
        """Call ``func(*args, **kwargs)`` as ``operation`` of this plugin, with the full
        treatment (circuit, time bound, error conversion, metrics, on_failure).

        ``code`` overrides the reason code of a failure, ``timeout`` the operation's limit
        (``None``: unbounded, inline). Both are keyword-only and consumed here, so a ``func``
        that itself takes ``code``/``timeout`` keywords must be bound first
        (``functools.partial``).
        """
        stats = self.metrics.stats(operation)
        counts = operation not in CIRCUIT_EXEMPT
        if counts and not self.circuit.allow():
            stats.rejected += 1
            raise self._rejected(operation)
        limit = self.timeout_for(operation) if timeout is _DEFAULT else timeout
        stats.calls += 1
        start = perf_counter_ns()
        try:
            value = self._invoke(operation, func, args, kwargs, limit)
        except SandboxError:
            stats.observe(perf_counter_ns() - start)
            stats.errors += 1
            raise
        except _Overrun as over:
            stats.observe(perf_counter_ns() - start)
            stats.errors += 1
            stats.timeouts += 1
            thread = over.outcome.thread
            if thread is not None:
                with self._lock:
                    self._abandoned = [a for a in self._abandoned if a.thread.is_alive()]
                    self._abandoned.append(
                        Abandoned(operation, thread, over.limit, time.monotonic())
                    )
            err = SandboxError(
                self.plugin,
                ReasonCode.TIMEOUT,
                operation,
                f"did not finish within {over.limit:g} s and was abandoned "
                "(its thread keeps running until it returns)",
                stack=over.outcome.stack,
            )
            raise self._failed(err, counts) from None
        except (Exception, SystemExit) as exc:
            stats.observe(perf_counter_ns() - start)
            stats.errors += 1
            err = self._error_from(exc, operation, code or OPERATION_CODES.get(operation))
            raise self._failed(err, counts) from exc
        stats.observe(perf_counter_ns() - start)
        if counts and self.circuit.record_success():
            self._recovered(operation)
        return value

    def _invoke(
        self,
        operation: str,
        func: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        limit: float | None,
    ) -> T:
        if limit is None:
            return func(*args, **kwargs)
        outcome = call_with_timeout(
            func,
            args,
            kwargs,
            timeout=limit,
            name=f"plugin:{self.plugin}:{operation}",
            on_exit=self.worker_exit,
        )
        if not outcome.finished:
            raise _Overrun(outcome, limit)
        if outcome.error is not None:
            raise outcome.error
        value: T = outcome.value
        return value

    # -- the fast path ---------------------------------------------------------------------

    def wrap(self, instance: T, prefix: str) -> T:
        """A proxy of ``instance`` whose public methods go through the fast path, counted as
        ``f"{prefix}.{method}"``; an instance of the interfaces ``instance`` is an instance of
        (what it forwards, and what it does not: :mod:`.proxies`)."""
        if isinstance(instance, SandboxedProxy):
            return instance
        proxied: T = make_proxy(self._proxy_class(type(instance)), instance, prefix, self)
        return proxied

    def wrap_callable(self, func: Callable[..., T], operation: str) -> Callable[..., T]:
        """One function through the fast path (what ``wrap`` does for each method)."""
        return fast_wrapper(
            func,
            operation,
            stats=self.metrics.stats(operation),
            breaker=self.circuit,
            slow=self._guarded_call,
            failed=self._service_failed,
            error=SandboxError,
        )

    def _guarded_call(self, thunk: Callable[[], T], operation: str, stats: CallStats) -> T:
        """The fast path while the circuit is not clean: ask it, and report back."""
        if not self.circuit.allow():
            stats.rejected += 1
            raise self._rejected(operation)
        stats.calls += 1
        start = perf_counter_ns()
        try:
            result = thunk()
        except SandboxError:
            stats.errors += 1
            raise
        except (Exception, SystemExit) as exc:
            stats.observe(perf_counter_ns() - start)
            raise self._service_failed(exc, operation, stats) from exc
        stats.observe(perf_counter_ns() - start)
        if self.circuit.record_success():
            self._recovered(operation)
        return result

    def _service_failed(self, exc: BaseException, operation: str, stats: CallStats) -> SandboxError:
        stats.errors += 1
        return self._failed(self._error_from(exc, operation, SERVICE_CODE, service=True), True)

    def get_attribute(self, target: object, name: str, prefix: str) -> Any:
        """``getattr`` on the wrapped instance; a property that raises is a service failure."""
        try:
            return getattr(target, name)
        except (AttributeError, SandboxError):
            raise
        except (Exception, SystemExit) as exc:
            operation = f"{prefix}.{name}"
            stats = self.metrics.stats(operation)
            stats.calls += 1
            raise self._service_failed(exc, operation, stats) from exc

    def _proxy_class(self, cls: type) -> type:
        hit = self._proxy_classes.get(cls)
        if hit is None:
            hit = self._proxy_classes[cls] = proxy_class(cls)
        return hit

    # -- failures --------------------------------------------------------------------------

    def _error_from(
        self,
        exc: BaseException,
        operation: str,
        code: ReasonCode | None,
        service: bool = False,
    ) -> SandboxError:
        text = "".join(_traceback.format_exception(exc))
        if isinstance(exc, PluginError) and exc.plugin == self.plugin:
            return SandboxError(self.plugin, exc.code, operation, exc.message, text)
        carried = carried_code(exc)
        if carried is not None:  # the plugin said why: its code and its words
            message = getattr(exc, "message", "") or type(exc).__name__
            return SandboxError(self.plugin, carried, operation, message, text, service=service)
        if isinstance(exc, SystemExit):
            reason = f"plugin code called sys.exit({exc.code!r})"
        else:
            line = one_line(exc)
            reason = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
        return SandboxError(
            self.plugin, code or DEFAULT_CODE, operation, reason, text, service=service
        )

    def _failed(self, err: SandboxError, counts: bool) -> SandboxError:
        """Feed the circuit, promote the error if it tripped, report it; returns the error
        to raise."""
        if counts and self.circuit.record_failure() and err.code not in OPERATOR_CODES:
            breaker = self.circuit
            err = SandboxError(
                err.plugin,
                ReasonCode.CIRCUIT_OPEN,
                err.operation,
                f"{err.message}; circuit open after {breaker.failures} consecutive "
                f"failures, retry in {breaker.delay:.1f} s",
                err.traceback,
                stack=err.stack,
                service=err.service,
                tripped=True,
                cause_code=err.code,
                cause_message=err.message,
                retry_in=breaker.retry_in(),
            )
        if self.on_failure is None:
            logger.warning("%s", err)
            return err
        # The hook reports it, the log line included: it knows whether the failure is news
        # (a background retry failing as the attempt before it did is not).
        try:
            self.on_failure(err)
        except Exception:
            logger.warning("%s", err)
            logger.exception("on_failure hook failed for plugin %s", self.plugin)
        return err

    def _rejected(self, operation: str) -> SandboxError:
        breaker = self.circuit
        if breaker.state == HALF_OPEN:
            message = "circuit half open: a trial call is in progress; retry shortly"
            wait = 0.0
        else:
            wait = breaker.retry_in()
            message = (
                f"circuit open after {breaker.failures} consecutive failures; retry in {wait:.1f} s"
            )
        return SandboxError(self.plugin, ReasonCode.CIRCUIT_OPEN, operation, message, retry_in=wait)

    def _recovered(self, operation: str) -> None:
        logger.info("plugin %s recovered (%s succeeded); circuit closed", self.plugin, operation)
        if self.on_recover is not None:
            try:
                self.on_recover(operation)
            except Exception:
                logger.exception("on_recover hook failed for plugin %s", self.plugin)

    # -- reading and closing ---------------------------------------------------------------

    @property
    def abandoned(self) -> list[Abandoned]:
        """Timed-out calls whose thread is still running."""
        with self._lock:
            self._abandoned = [a for a in self._abandoned if a.thread.is_alive()]
            return list(self._abandoned)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state for the metrics endpoint and the admin."""
        return {
            "plugin": self.plugin,
            "circuit": self.circuit.snapshot(),
            "metrics": self.metrics.snapshot(),
            "abandoned": [
                {"operation": a.operation, "thread": a.thread.name, "timeout": a.timeout}
                for a in self.abandoned
            ],
            "threads": [t.name for t in self.context.threads()],
            "tracked": self.context.tracked(),
        }

    def close(self, join_timeout: float = 2.0) -> LeakReport:
        """Release the plugin's context and report leaks, abandoned threads still running
        included. The sandbox gets a fresh context, so it can serve the plugin again after a
        reload; the circuit and the metrics are kept (reset them explicitly if wanted)."""
        report = self.context.release(join_timeout)
        with self._lock:
            abandoned, self._abandoned = self._abandoned, []
            self._proxy_classes.clear()
            self.context = PluginContext(self.plugin)
        for item in abandoned:
            if item.thread.is_alive():
                report.threads.append(
                    f"{item.thread.name} (abandoned {item.operation} after {item.timeout:g} s)"
                )
        return report

    def __repr__(self) -> str:
        return f"<PluginSandbox {self.plugin} circuit={self.circuit.state}>"

"""The isolation boundary: every call from the host into a plugin's code crosses a
:class:`PluginSandbox`, so one broken plugin never takes down a request, a worker or another
plugin.

Two paths, because the calls are of two kinds:

``run(operation, func, ...)`` — the full treatment, for lifecycle calls (``import``,
``initialize``, ``health_check``, ``shutdown``, constructing the plugin...). They are rare, so
the boundary can afford a worker thread to bound their time: an overrun is abandoned with
reason ``timeout`` and the caller goes on. Their failures carry the lifecycle's reason code.

``wrap(instance, prefix)`` — the fast path, for service methods (``get_portfolio``...) that a
page calls many times. It adds no thread and no timeout; it costs one extra function call
(generated with the method's own signature, so no ``*args``/``**kwargs`` packing — see "the
fast path's wrappers" below), a circuit check (one attribute read while the plugin is
healthy), a counter increment, a ``try`` and — on one call in sixteen, or on every call once
calls are known to be slow — two clock reads (see :mod:`stonks_plugins.sandbox.metrics` for
why sampling). ``benchmarks/bench_boundary.py`` measures it against the issue's 0.5 µs
budget: ~0.1-0.2 µs over a direct call on the reference machine when idle.

Both paths:

- turn every ``Exception`` — and ``SystemExit``, since a plugin calling ``sys.exit`` must not
  end a worker — into :class:`SandboxError`, the one type callers see. It is a
  ``BrokerUnavailableError`` (the core's aggregators skip that broker and render the rest) and
  a ``PluginError`` (it carries a stable reason code and a message for the plugin's row).
  ``KeyboardInterrupt`` and other non-``Exception`` base exceptions (``GeneratorExit``,
  ``asyncio.CancelledError``) are control flow, not plugin faults, and pass through;
- pass a ``SandboxError`` raised inside (a nested boundary) through unchanged: it was already
  counted and reported by the boundary that raised it;
- count calls, errors and latency per operation (:class:`PluginMetrics`);
- feed the plugin's :class:`CircuitBreaker`: after N consecutive failures calls are refused
  with ``circuit_open`` until the backoff lets a trial through;
- call ``on_failure(error)`` once per failure of plugin code (not for calls the open circuit
  refused — those ran no plugin code, and reporting each would flood the event log).

Reason codes. ``run`` picks the code from the operation (``OPERATION_CODES``: ``import`` ->
``import_error``, ``initialize`` -> ``initialize_failed``, ``health_check`` ->
``health_failed``, ``shutdown`` -> ``initialize_failed`` as the closest lifecycle code); any
other operation gets ``DEFAULT_CODE`` (``initialize_failed``: what ``run`` guards besides those
is setting the plugin up — constructing it, asking for its services or config class) unless
the caller passes ``code=``. A ``PluginError`` raised by this plugin's code path (the loader's
own, e.g.) keeps its more specific code and message, and so does what a plugin raises to say
why it cannot run (``PluginNotReady``, ``PluginAuthFailed``, ``PluginConfigRejected``:
``errors.carried_code``), on either path. A failure that needs the operator
(``errors.OPERATOR_CODES``) is never promoted to ``circuit_open``: a retry would not fix it.
The fast path uses ``SERVICE_CODE`` (``health_failed``: the plugin loaded but misbehaves at
run time) and marks the error ``service=True`` — a single service failure should change no
state; the error that trips the circuit has ``code == circuit_open`` and ``tripped=True``
(its ``cause_code`` keeps the original). ``shutdown`` is exempt from the circuit
(``CIRCUIT_EXEMPT``): releasing a plugin must always be attempted, and a failing shutdown says
nothing about whether it can serve.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import time
import traceback as _traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from time import perf_counter_ns
from typing import Any, Final, TypeVar

from stonks_overwatch.core.exceptions import BrokerUnavailableError

from ..errors import OPERATOR_CODES, PluginError, ReasonCode, StonksPluginsError, carried_code
from ..redaction import mask_known
from .circuit import HALF_OPEN, CircuitBreaker
from .metrics import CallStats, PluginMetrics
from .resources import LeakReport, PluginContext, one_line
from .timeouts import Outcome, call_with_timeout

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


# -- the one exception callers see ------------------------------------------------------------


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


@dataclass
class Abandoned:
    """A bounded call that overran: its thread may still be running."""

    operation: str
    thread: threading.Thread
    timeout: float
    since: float


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
        ``f"{prefix}.{method}"``.

        The proxy is an instance of a subclass of ``type(instance)`` generated once per class
        (and per sandbox), so ``isinstance(proxy, PortfolioServiceInterface)`` holds. Every
        attribute is forwarded to the instance: methods are looked up on the instance once
        and their wrapper cached on the proxy; data attributes, properties and slots are read
        (and set) on the instance each time; private (``_x``) attributes pass through
        unwrapped. A callable that is a class (``config_class``...) is data, not a service
        method, and is not wrapped.

        Not guarded: dunder methods (``__call__``, ``__iter__``, ``__len__``... run with the
        proxy as ``self``, which forwards attribute access, but are not counted), and a
        method the instance replaces on itself after it was first called through the proxy
        (the cached wrapper still calls the old one). When the class cannot be subclassed
        (a C-layout base, a metaclass or ``__init_subclass__`` that refuses) the proxy is a
        plain forwarding object and ``isinstance`` against the interface does not hold.
        """
        if isinstance(instance, SandboxedProxy):
            return instance
        proxy_cls = self._proxy_class(type(instance))
        proxy: Any
        try:
            proxy = object.__new__(proxy_cls)
        except TypeError:
            proxy = object.__new__(_PlainProxy)
        state = object.__getattribute__(proxy, "__dict__")
        state[_TARGET] = instance
        state[_PREFIX] = prefix
        state[_SANDBOX] = self
        return proxy

    def wrap_callable(self, func: Callable[..., T], operation: str) -> Callable[..., T]:
        """One function through the fast path (what ``wrap`` does for each method)."""
        return self._make_call(func, operation)

    def _make_call(self, func: Callable[..., T], operation: str) -> Callable[..., T]:
        factory, name, defaults = _fast_factory(func)
        wrapper: Callable[..., T] = factory(
            func,
            operation,
            self.metrics.stats(operation),
            self.circuit,
            self._guarded_call,
            self._service_failed,
            perf_counter_ns,
            SandboxError,
            defaults,
        )
        with contextlib.suppress(AttributeError, TypeError):  # an odd callable: works anyway
            functools.update_wrapper(wrapper, func)
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            # Argument errors then read like a direct call's ("S.get(): missing 'a'").
            qualname = getattr(func, "__qualname__", name)
            wrapper.__code__ = wrapper.__code__.replace(co_name=name, co_qualname=qualname)
        return wrapper

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

    def _get(self, target: object, name: str, prefix: str) -> Any:
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
            hit = self._proxy_classes[cls] = _build_proxy_class(cls)
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
                retry_in=breaker.retry_in(),
            )
        logger.warning("%s", err)
        if self.on_failure is not None:
            try:
                self.on_failure(err)
            except Exception:
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


# -- the fast path's wrappers --------------------------------------------------------------------
#
# A wrapper taking ``*args, **kwargs`` costs ~140 ns to enter and ~280 ns when called with a
# keyword argument (packing a tuple and a dict, then unpacking them again) — more than all
# the rest of the boundary. So each wrapper is generated with the wrapped method's own
# signature, as dataclasses generate __init__: ``def get(a, key=<the same default>)`` calling
# ``func(a, key)``. The source depends only on the signature's shape (parameter names, kinds
# and how many defaults), so it is compiled once per shape and cached; the defaults
# themselves are passed in (the very same objects, so sentinel defaults keep working).
# Anything whose signature cannot be read, or that uses the template's own ``_sbx_`` names,
# gets the generic ``*args, **kwargs`` shape. The body is the same for every shape.

_TEMPLATE = """\
def _sbx_factory(_sbx_func, _sbx_op, _sbx_stats, _sbx_breaker, _sbx_slow, _sbx_failed,
                 _sbx_clock, _sbx_error, _sbx_defaults):
    {unpack}
    def {name}({params}):
        if not _sbx_breaker.clean:
            return _sbx_slow(lambda: _sbx_func({args}), _sbx_op, _sbx_stats)
        _sbx_n = _sbx_stats.calls = _sbx_stats.calls + 1
        if _sbx_n & _sbx_stats.mask:
            try:
                return _sbx_func({args})
            except _sbx_error:
                _sbx_stats.errors += 1
                raise
            except (Exception, SystemExit) as _sbx_exc:
                raise _sbx_failed(_sbx_exc, _sbx_op, _sbx_stats) from _sbx_exc
        _sbx_start = _sbx_clock()
        try:
            _sbx_result = _sbx_func({args})
        except _sbx_error:
            _sbx_stats.errors += 1
            raise
        except (Exception, SystemExit) as _sbx_exc:
            _sbx_stats.observe(_sbx_clock() - _sbx_start)
            raise _sbx_failed(_sbx_exc, _sbx_op, _sbx_stats) from _sbx_exc
        _sbx_stats.observe(_sbx_clock() - _sbx_start)
        return _sbx_result
    return {name}
"""
_GENERIC = ("*_sbx_args, **_sbx_kwargs", "*_sbx_args, **_sbx_kwargs", 0)
_P = inspect.Parameter


def _shape(func: Callable[..., Any]) -> tuple[tuple[str, str, int], tuple[Any, ...]]:
    """``((def params, call args, number of defaults), defaults)`` for ``func``.

    The signature is read without following ``__wrapped__``: a decorated method is called the
    way its outer wrapper says.
    """
    try:
        parameters = list(inspect.signature(func, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):
        return _GENERIC, ()
    if any(p.name.startswith("_sbx_") for p in parameters):
        return _GENERIC, ()
    params: list[str] = []
    args: list[str] = []
    defaults: list[Any] = []
    star_done = False
    for i, p in enumerate(parameters):
        text = p.name
        if p.default is not _P.empty:
            text = f"{p.name}=_sbx_d{len(defaults)}"
            defaults.append(p.default)
        if p.kind is _P.VAR_POSITIONAL:
            params.append(f"*{p.name}")
            args.append(f"*{p.name}")
            star_done = True
        elif p.kind is _P.VAR_KEYWORD:
            params.append(f"**{p.name}")
            args.append(f"**{p.name}")
        elif p.kind is _P.KEYWORD_ONLY:
            if not star_done:
                params.append("*")
                star_done = True
            params.append(text)
            args.append(f"{p.name}={p.name}")
        else:
            params.append(text)
            args.append(p.name)
            nxt = parameters[i + 1].kind if i + 1 < len(parameters) else None
            if p.kind is _P.POSITIONAL_ONLY and nxt is not _P.POSITIONAL_ONLY:
                params.append("/")
    return (", ".join(params), ", ".join(args), len(defaults)), tuple(defaults)


@functools.lru_cache(maxsize=256)
def _compile_factory(params: str, args: str, n_defaults: int) -> Callable[..., Any]:
    names = [f"_sbx_d{i}" for i in range(n_defaults)]
    unpack = f"{', '.join(names)}, = _sbx_defaults" if names else "pass"
    source = _TEMPLATE.format(unpack=unpack, name="call", params=params, args=args)
    namespace: dict[str, Any] = {}
    exec(compile(source, "<sandbox fast path>", "exec"), namespace)
    factory: Callable[..., Any] = namespace["_sbx_factory"]
    return factory


def _fast_factory(func: Callable[..., Any]) -> tuple[Callable[..., Any], str, tuple[Any, ...]]:
    shape, defaults = _shape(func)
    name = getattr(func, "__name__", "call")
    if not isinstance(name, str) or not name.isidentifier():
        name = "call"
    try:
        factory = _compile_factory(*shape)
    except SyntaxError:  # a __signature__ no def can have: fall back to the generic shape
        factory, defaults = _compile_factory(*_GENERIC), ()
    return factory, name, defaults


# -- the service proxy --------------------------------------------------------------------------

_TARGET: Final = "_sandbox__target"
_PREFIX: Final = "_sandbox__prefix"
_SANDBOX: Final = "_sandbox__box"
_RESERVED: Final = frozenset({_TARGET, _PREFIX, _SANDBOX})


def _wrappable(value: object) -> bool:
    return callable(value) and not isinstance(value, type)


def _method_like(attr: object) -> bool:
    """A class attribute that becomes a method on instances (a non-data descriptor)."""
    if isinstance(attr, (staticmethod, classmethod)):
        return True
    kind = type(attr)
    return (
        callable(attr)
        and not isinstance(attr, type)
        and hasattr(kind, "__get__")
        and not hasattr(kind, "__set__")
    )


def _shadowed(target: object, name: str) -> bool:
    """Does the instance hold ``name`` itself (it may change it: do not cache)?"""
    try:
        return name in object.__getattribute__(target, "__dict__")
    except AttributeError:
        return False


class SandboxedProxy:
    """Base of every service proxy: ``isinstance(x, SandboxedProxy)`` tells a wrapped one.

    Listed first in a generated proxy class's bases so that its attribute hooks win over the
    wrapped class's own.
    """

    __slots__ = ()
    __getattribute__ = object.__getattribute__

    def __getattr__(self, name: str) -> Any:
        # Reached only for names the proxy class does not mask: the instance's own attributes
        # (or everything, for the plain proxy).
        state = object.__getattribute__(self, "__dict__")
        if _TARGET not in state:
            raise AttributeError(name)
        target, prefix, box = state[_TARGET], state[_PREFIX], state[_SANDBOX]
        value = box._get(target, name, prefix)
        if name.startswith("_") or not _wrappable(value):
            return value
        wrapper = box._make_call(value, f"{prefix}.{name}")
        if not _shadowed(target, name) and _method_like(
            inspect.getattr_static(type(target), name, None)
        ):
            state[name] = wrapper
        return wrapper

    def __setattr__(self, name: str, value: Any) -> None:
        state = object.__getattribute__(self, "__dict__")
        setattr(state[_TARGET], name, value)
        state.pop(name, None)  # a cached wrapper of the old value

    def __delattr__(self, name: str) -> None:
        state = object.__getattribute__(self, "__dict__")
        delattr(state[_TARGET], name)
        state.pop(name, None)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(object.__getattribute__(self, "__dict__")[_TARGET])))

    def __repr__(self) -> str:
        state = object.__getattribute__(self, "__dict__")
        target = state.get(_TARGET)
        return (
            f"<sandboxed {type(target).__qualname__} of plugin "
            f"'{state[_SANDBOX].plugin}' as '{state[_PREFIX]}'>"
        )


class _PlainProxy(SandboxedProxy):
    """The fallback when the wrapped class cannot be subclassed: forwarding only."""


class _LazyMethod:
    """Masks a method of the wrapped class: on first access, look it up on the instance,
    wrap it (public names) and cache the result in the proxy's ``__dict__``, which then wins
    over this non-data descriptor — later accesses are a plain dict hit."""

    __slots__ = ("base", "name", "public")

    def __init__(self, base: type, name: str) -> None:
        self.base = base
        self.name = name
        self.public = not name.startswith("_")

    def __get__(self, proxy: object, owner: type | None = None) -> Any:
        if proxy is None:
            return getattr(self.base, self.name)
        state = object.__getattribute__(proxy, "__dict__")
        target, prefix, box = state[_TARGET], state[_PREFIX], state[_SANDBOX]
        value = box._get(target, self.name, prefix)
        if self.public and _wrappable(value):
            value = box._make_call(value, f"{prefix}.{self.name}")
        if not _shadowed(target, self.name):
            state[self.name] = value
        return value


class _Forward:
    """Masks a data attribute, property or slot of the wrapped class: read, set and delete
    it on the instance, every time (its value may change)."""

    __slots__ = ("base", "name", "public")

    def __init__(self, base: type, name: str) -> None:
        self.base = base
        self.name = name
        self.public = not name.startswith("_")

    def __get__(self, proxy: object, owner: type | None = None) -> Any:
        if proxy is None:
            return getattr(self.base, self.name)
        state = object.__getattribute__(proxy, "__dict__")
        value = state[_SANDBOX]._get(state[_TARGET], self.name, state[_PREFIX])
        if self.public and _wrappable(value):
            return state[_SANDBOX]._make_call(value, f"{state[_PREFIX]}.{self.name}")
        return value

    def __set__(self, proxy: object, value: Any) -> None:
        setattr(object.__getattribute__(proxy, "__dict__")[_TARGET], self.name, value)

    def __delete__(self, proxy: object) -> None:
        delattr(object.__getattribute__(proxy, "__dict__")[_TARGET], self.name)


def _no_finalizer(self: object) -> None:
    """The wrapped class's ``__del__`` must not run on the proxy: it would close the
    instance's resources while the instance lives on."""


def _build_proxy_class(cls: type) -> type:
    """A subclass of ``cls`` masking each of its non-dunder attributes with a forwarder."""
    # No __slots__ here: the proxy needs a __dict__ (its state and cached wrappers) even when
    # the wrapped class has none.
    namespace: dict[str, Any] = {"__module__": __name__}
    for klass in cls.__mro__:
        if klass is object:
            continue
        for name, attr in vars(klass).items():
            if name in namespace or name in _RESERVED:
                continue
            if name.startswith("__") and name.endswith("__"):
                continue
            namespace[name] = _LazyMethod(cls, name) if _method_like(attr) else _Forward(cls, name)
    if getattr(cls, "__del__", None) is not None:
        namespace["__del__"] = _no_finalizer
    name = f"Sandboxed{cls.__name__}"
    try:
        proxy_cls: type = type(cls)(name, (SandboxedProxy, cls), namespace)
    except Exception:
        logger.debug("cannot subclass %r; using a plain forwarding proxy", cls, exc_info=True)
        return _PlainProxy
    proxy_cls.__qualname__ = name
    return proxy_cls

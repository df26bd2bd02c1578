"""``PluginSandbox.run``: the full path for lifecycle calls (import, initialize, health
check, shutdown) — errors become one exception type, hangs are abandoned, the circuit and the
metrics are fed, the integrator's hook hears of each failure."""

from __future__ import annotations

import contextvars
import logging
import pickle
import sys
import threading
import time

import pytest

from stonks_overwatch.core.exceptions import BrokerUnavailableError
from stonks_plugins.errors import PluginError, ReasonCode
from stonks_plugins.sandbox import (
    DEFAULT_TIMEOUTS,
    CircuitBreaker,
    PluginSandbox,
    SandboxError,
)

from .conftest import FakeClock


def boom() -> None:
    raise ValueError("bad credentials\nsecond line is dropped")


def hang(gate: threading.Event) -> None:
    gate.wait()


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("import", ReasonCode.IMPORT_ERROR),
        ("initialize", ReasonCode.INITIALIZE_FAILED),
        ("health_check", ReasonCode.HEALTH_FAILED),
        ("shutdown", ReasonCode.INITIALIZE_FAILED),
        ("get_services", ReasonCode.INITIALIZE_FAILED),
    ],
)
def test_exception_becomes_sandbox_error(operation: str, code: ReasonCode) -> None:
    sandbox = PluginSandbox("acme")
    with pytest.raises(SandboxError) as info:
        sandbox.run(operation, boom)
    err = info.value
    assert isinstance(err, BrokerUnavailableError) and isinstance(err, PluginError)
    assert err.plugin == err.broker == "acme"
    assert err.operation == operation
    assert err.code is code and err.cause_code is code
    assert err.message == "ValueError: bad credentials"
    assert str(err) == f"plugin 'acme': {operation} failed: ValueError: bad credentials"
    assert "\n" not in str(err)
    assert "in boom" in err.traceback and "ValueError: bad credentials" in err.traceback
    assert isinstance(err.__cause__, ValueError)
    assert not err.service and not err.tripped


def test_explicit_code_wins() -> None:
    sandbox = PluginSandbox("acme")
    with pytest.raises(SandboxError) as info:
        sandbox.run("load_config", boom, code=ReasonCode.CONFIG_INVALID)
    assert info.value.code is ReasonCode.CONFIG_INVALID


def test_plugin_error_of_this_plugin_keeps_its_code_and_message() -> None:
    def resolve() -> None:
        raise PluginError("acme", ReasonCode.IMPORT_ERROR, "module 'x' has no attribute 'Y'")

    sandbox = PluginSandbox("acme")
    with pytest.raises(SandboxError) as info:
        sandbox.run("initialize", resolve)
    assert info.value.code is ReasonCode.IMPORT_ERROR
    assert info.value.message == "module 'x' has no attribute 'Y'"


def test_unprintable_exception_and_empty_message() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def weird() -> None:
        raise Weird

    def empty() -> None:
        raise KeyError

    sandbox = PluginSandbox("acme", timeouts={"initialize": None})
    with pytest.raises(SandboxError) as info:
        sandbox.run("initialize", weird)
    assert info.value.message == "Weird: <unprintable>"
    with pytest.raises(SandboxError) as info:
        sandbox.run("initialize", empty)
    assert info.value.message == "KeyError"


@pytest.mark.parametrize("bounded", [True, False])
def test_system_exit_is_caught(bounded: bool) -> None:
    sandbox = PluginSandbox("acme", timeouts={"initialize": 5.0 if bounded else None})
    with pytest.raises(SandboxError) as info:
        sandbox.run("initialize", sys.exit, 3)
    assert info.value.code is ReasonCode.INITIALIZE_FAILED
    assert info.value.message == "plugin code called sys.exit(3)"


def test_keyboard_interrupt_passes_through() -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    sandbox = PluginSandbox("acme", timeouts={"initialize": None})
    with pytest.raises(KeyboardInterrupt):
        sandbox.run("initialize", interrupt)
    assert sandbox.circuit.failures == 0


def test_nested_sandbox_error_passes_through_unchanged() -> None:
    inner = SandboxError("other", ReasonCode.TIMEOUT, "initialize", "did not finish")
    failures: list[SandboxError] = []

    def nested() -> None:
        raise inner

    sandbox = PluginSandbox("acme", on_failure=failures.append)
    with pytest.raises(SandboxError) as info:
        sandbox.run("health_check", nested)
    assert info.value is inner
    assert failures == [] and sandbox.circuit.failures == 0
    assert sandbox.metrics.stats("health_check").errors == 1


def test_sandbox_error_pickles() -> None:
    err = SandboxError(
        "acme", ReasonCode.CIRCUIT_OPEN, "portfolio.get", "x", "tb", tripped=True, retry_in=2.0
    )
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
    assert copy.as_dict() == err.as_dict()
    assert copy.as_dict()["code"] == "circuit_open"


# -- results and threads -------------------------------------------------------------------------


def test_results_and_args_travel_but_not_the_callers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
    var.set("req-42")

    def work(a: int, *, b: int) -> tuple[int, str, str]:
        return a + b, var.get(), threading.current_thread().name

    sandbox = PluginSandbox("acme")
    total, seen, thread = sandbox.run("initialize", work, 1, b=2)
    # A fresh context: context-local state such as Django's database connections stays with
    # the caller's thread.
    assert (total, seen) == (3, "-")
    assert thread == "plugin:acme:initialize"  # bounded: ran in a worker thread


def test_worker_never_shares_the_callers_database_connection() -> None:
    import django
    from django.db import connections

    if not django.apps.apps.ready:  # pragma: no cover - the suite always sets Django up
        pytest.skip("needs Django")
    mine = connections["default"]
    theirs = PluginSandbox("acme").run("initialize", lambda: connections["default"])
    assert theirs is not mine


def test_operations_without_a_limit_run_inline() -> None:
    sandbox = PluginSandbox("acme", timeouts={"health_check": None})
    here = threading.get_ident()
    assert sandbox.run("health_check", threading.get_ident) == here
    assert sandbox.run("get_services", threading.get_ident) == here  # no default limit
    assert sandbox.run("initialize", threading.get_ident, timeout=None) == here
    assert sandbox.run("get_services", threading.get_ident, timeout=5) != here


def test_default_timeouts() -> None:
    sandbox = PluginSandbox("acme", timeouts={"initialize": 1.0})
    assert DEFAULT_TIMEOUTS == {
        "initialize": 10.0,
        "health_check": 5.0,
        "shutdown": 5.0,
        "import": 30.0,
    }
    assert sandbox.timeout_for("initialize") == 1.0
    assert sandbox.timeout_for("import") == 30.0
    assert sandbox.timeout_for("portfolio.get_portfolio") is None


def test_worker_exit_hook_runs_in_the_worker() -> None:
    seen: list[str] = []

    def bad_hook() -> None:
        seen.append(threading.current_thread().name)
        raise RuntimeError("hook failed")

    sandbox = PluginSandbox("acme", worker_exit=bad_hook)
    assert sandbox.run("initialize", lambda: 7) == 7
    deadline = time.monotonic() + 2
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == ["plugin:acme:initialize"]


# -- time bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["initialize", "health_check"])
def test_hanging_call_is_abandoned_with_timeout(operation: str, gate: threading.Event) -> None:
    failures: list[SandboxError] = []
    sandbox = PluginSandbox("acme", timeouts={operation: 0.2}, on_failure=failures.append)
    started = time.monotonic()
    with pytest.raises(SandboxError) as info:
        sandbox.run(operation, hang, gate)
    assert time.monotonic() - started < 2.0
    err = info.value
    assert err.code is ReasonCode.TIMEOUT
    assert err.traceback == ""
    assert "in hang" in err.stack  # where it hangs
    assert str(err).startswith(f"plugin 'acme': {operation} failed: did not finish within 0.2 s")
    assert failures == [err]
    [abandoned] = sandbox.abandoned
    assert abandoned.operation == operation and abandoned.thread.is_alive()
    stats = sandbox.metrics.stats(operation)
    assert (stats.calls, stats.errors, stats.timeouts) == (1, 1, 1)

    report = sandbox.close(join_timeout=0.1)
    assert not report.ok
    assert report.threads == [f"plugin:acme:{operation} (abandoned {operation} after 0.2 s)"]
    gate.set()
    abandoned.thread.join(2)
    assert sandbox.abandoned == []


def test_sleeping_health_check_frees_the_caller(gate: threading.Event) -> None:
    sandbox = PluginSandbox("acme", timeouts={"health_check": 0.1})
    started = time.monotonic()
    with pytest.raises(SandboxError):
        sandbox.run("health_check", lambda: gate.wait(60))
    assert time.monotonic() - started < 2.0


def test_slow_call_that_finishes_within_its_limit_succeeds() -> None:
    # A plugin that is merely slow (0.4 s of a 1.5 s limit) is served; a sandbox giving up
    # at a fraction of the limit would fail it as a timeout.
    sandbox = PluginSandbox("acme", timeouts={"initialize": 1.5})

    def slow() -> str:
        time.sleep(0.4)
        return "ready"

    assert sandbox.run("initialize", slow) == "ready"
    stats = sandbox.metrics.stats("initialize")
    assert (stats.calls, stats.errors, stats.timeouts) == (1, 0, 0)
    assert sandbox.abandoned == []


def test_hanging_call_is_abandoned_at_its_limit_not_long_after(gate: threading.Event) -> None:
    # The caller waits the whole limit (a hang is not cut short) and is freed soon after:
    # 3x the limit leaves a loaded machine room, a limit applied 5x late would not fit.
    limit = 0.5
    sandbox = PluginSandbox("acme", timeouts={"initialize": limit})
    started = time.monotonic()
    with pytest.raises(SandboxError) as info:
        sandbox.run("initialize", hang, gate)
    waited = time.monotonic() - started
    assert info.value.code is ReasonCode.TIMEOUT
    assert limit * 0.9 <= waited < limit * 3, waited


# -- circuit and hooks -----------------------------------------------------------------------------


def make(clock: FakeClock, **kw: object) -> tuple[PluginSandbox, list[SandboxError], list[str]]:
    failures: list[SandboxError] = []
    recovered: list[str] = []
    circuit = CircuitBreaker(threshold=2, base_delay=10.0, jitter=0.0, clock=clock)
    sandbox = PluginSandbox(
        "acme",
        timeouts={"initialize": None, "health_check": None, "shutdown": None},
        circuit=circuit,
        on_failure=failures.append,
        on_recover=recovered.append,
        **kw,  # type: ignore[arg-type]
    )
    return sandbox, failures, recovered


def test_circuit_opens_refuses_and_recovers(clock: FakeClock) -> None:
    sandbox, failures, recovered = make(clock)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise OSError("broker down")
        return "ok"

    with pytest.raises(SandboxError) as first:
        sandbox.run("initialize", flaky)
    assert first.value.code is ReasonCode.INITIALIZE_FAILED and not first.value.tripped
    with pytest.raises(SandboxError) as second:
        sandbox.run("initialize", flaky)
    err = second.value
    assert err.code is ReasonCode.CIRCUIT_OPEN and err.tripped
    assert err.cause_code is ReasonCode.INITIALIZE_FAILED
    assert "OSError: broker down; circuit open after 2 consecutive failures" in err.message
    assert err.retry_in == 10.0 and "OSError: broker down" in err.traceback
    assert failures == [first.value, err]

    with pytest.raises(SandboxError) as refused:
        sandbox.run("initialize", flaky)
    assert refused.value.code is ReasonCode.CIRCUIT_OPEN and not refused.value.tripped
    assert "retry in 10.0 s" in str(refused.value)
    assert refused.value.traceback == ""
    assert len(calls) == 2  # plugin code not run
    assert len(failures) == 2  # a refusal is not a failure of plugin code
    assert sandbox.metrics.stats("initialize").rejected == 1

    clock.advance(10.0)
    assert sandbox.run("initialize", flaky) == "ok"
    assert sandbox.circuit.state == "closed"
    assert recovered == ["initialize"]


def test_shutdown_runs_even_with_the_circuit_open(clock: FakeClock) -> None:
    sandbox, failures, _ = make(clock)
    for _ in range(2):
        with pytest.raises(SandboxError):
            sandbox.run("initialize", boom)
    assert sandbox.circuit.state == "open"
    assert sandbox.run("shutdown", lambda: True) is True
    with pytest.raises(SandboxError) as info:
        sandbox.run("shutdown", boom)
    assert info.value.code is ReasonCode.INITIALIZE_FAILED and not info.value.tripped
    assert sandbox.circuit.failures == 2  # shutdown does not feed the circuit
    assert len(failures) == 3


def test_hook_exceptions_are_swallowed_and_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_failure_hook(err: SandboxError) -> None:
        raise RuntimeError("db down")

    def bad_recover_hook(operation: str) -> None:
        raise RuntimeError("db down")

    circuit = CircuitBreaker(threshold=1, base_delay=1.0, jitter=0.0, clock=clock)
    sandbox = PluginSandbox(
        "acme", circuit=circuit, on_failure=bad_failure_hook, on_recover=bad_recover_hook
    )
    with caplog.at_level(logging.ERROR), pytest.raises(SandboxError) as info:
        sandbox.run("health_check", boom, timeout=None)
    assert info.value.cause_code is ReasonCode.HEALTH_FAILED
    clock.advance(1.0)
    with caplog.at_level(logging.ERROR):
        assert sandbox.run("health_check", lambda: "fine", timeout=None) == "fine"
    messages = [r.getMessage() for r in caplog.records]
    assert "on_failure hook failed for plugin acme" in messages
    assert "on_recover hook failed for plugin acme" in messages


def test_metrics_count_run_calls(clock: FakeClock) -> None:
    sandbox, _, _ = make(clock)
    sandbox.run("health_check", lambda: None)
    with pytest.raises(SandboxError):
        sandbox.run("health_check", boom)
    snap = sandbox.metrics.snapshot()["health_check"]
    assert (snap["calls"], snap["errors"], snap["timed"]) == (2, 1, 2)
    assert sandbox.snapshot()["circuit"]["failures"] == 1


def test_a_stack_is_only_that_of_a_running_thread(gate: threading.Event) -> None:
    from stonks_plugins.sandbox.timeouts import thread_stack

    waiting = threading.Thread(target=hang, args=(gate,), name="hung")
    assert thread_stack(waiting) == ""  # not started: no stack to show
    waiting.start()
    try:
        deadline = time.monotonic() + 5
        while "in hang" not in thread_stack(waiting) and time.monotonic() < deadline:
            time.sleep(0.01)  # started, perhaps not yet inside hang()
        assert "in hang" in thread_stack(waiting)
    finally:
        gate.set()
        waiting.join(5)
    assert thread_stack(waiting) == ""  # ended: gone

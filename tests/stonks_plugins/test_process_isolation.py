"""Process isolation (``"isolation": "process"``): a plugin runs in a child process, and
whatever its code does there - exit, segfault, hog memory or CPU, loop forever, raise - the
host process carries on, reports the cause with a stable reason code, and restarts the child
after a backoff. Fixtures: ``tests/fixtures/plugins/proc-*`` (always copied, never run in
place, so no bytecode or marker file lands in the repository)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stonks_overwatch.core.data import PortfolioEntry, TotalPortfolio
from stonks_overwatch.core.exceptions import BrokerUnavailableError
from stonks_overwatch.core.interfaces import PortfolioServiceInterface
from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.discovery.candidate import Candidate
from stonks_plugins.discovery.directories import scan_directory_plugin
from stonks_plugins.errors import ReasonCode
from stonks_plugins.health import Health
from stonks_plugins.registry import PluginRegistry
from stonks_plugins.sandbox.process import (
    EXIT_OUT_OF_MEMORY,
    ProcessCallError,
    ProcessCircuitOpen,
    ProcessCrashed,
    ProcessHost,
    ProcessTimeout,
    spawn,
)
from tests.conftest import BUNDLED, FIXTURES, ROOT
from tests.stonks_plugins.runtime.helpers import wait_until

HostFactory = Callable[..., ProcessHost]


def copy_plugin(src: Path, dest_base: Path) -> Candidate:
    dest = dest_base / src.name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", ".crashed-once"))
    cand = scan_directory_plugin(dest)
    assert cand.ok, cand.problem
    return cand


def gone(pid: int) -> bool:
    """True when no process ``pid`` exists any more (it was reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def make_host(tmp_path: Path) -> Iterator[HostFactory]:
    """``make_host("proc-exit", call_timeout=...)``: a host for a copy of that fixture; every
    host is closed at the end and must leave no child behind."""
    hosts: list[ProcessHost] = []

    def make(folder: str, source: Path = FIXTURES, **kwargs: Any) -> ProcessHost:
        kwargs.setdefault("base_delay", 0.2)
        kwargs.setdefault("call_timeout", 20.0)
        host = ProcessHost(copy_plugin(source / folder, tmp_path), **kwargs)
        hosts.append(host)
        return host

    yield make
    pids = [h.pid for h in hosts if h.pid is not None]
    for host in hosts:
        host.close(grace=2.0)
    assert all(gone(pid) for pid in pids)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessHost]:
    """One proc-healthy host shared by the read-only tests (a spawn costs ~0.3 s)."""
    host = ProcessHost(copy_plugin(FIXTURES / "proc-healthy", tmp_path_factory.mktemp("h")))
    host.start()
    yield host
    host.close()


# -- a healthy plugin ---------------------------------------------------------------------------


def test_calls_run_in_another_process_and_return_the_core_data_classes(
    healthy: ProcessHost,
) -> None:
    me = os.getpid()
    entries = healthy.call("portfolio", "get_portfolio")
    assert [e.symbol for e in entries] == ["PRH1", "PRH2"]
    assert all(isinstance(e, PortfolioEntry) for e in entries)
    # The fixture stamps each result with the PID of the process that imported its module.
    assert healthy.pid is not None and healthy.pid != me
    assert {e.isin for e in entries} == {f"PID{healthy.pid}"}
    total = healthy.call(ServiceType.PORTFOLIO, "get_portfolio_total")
    assert total == TotalPortfolio(total_value=200.0)
    account = healthy.call("account", "get_account_overview")
    assert account.extra == {"pid": str(healthy.pid), "isolation": "process"}
    assert os.getpid() == me


def test_config_crosses_as_a_dict_and_a_new_config_rebuilds_the_service(
    healthy: ProcessHost,
) -> None:
    def label(config: dict[str, Any] | None) -> str:
        result: str = healthy.call("account", "get_account_overview", config=config).account_id
        return result

    assert label({"account_label": "first"}) == "first"
    assert label({"account_label": "first"}) == "first"
    assert label({"account_label": "second", "unknown_key": 1}) == "second"
    assert label(None) == "second"  # no config: the child keeps the instance it has


def test_a_service_proxy_stands_in_for_the_service(healthy: ProcessHost) -> None:
    proxy = healthy.service_proxy("portfolio", {"account_label": "x"})
    assert isinstance(proxy, PortfolioServiceInterface)
    assert [e.symbol for e in proxy.get_portfolio()] == ["PRH1", "PRH2"]
    assert proxy.get_portfolio_total().total_value == 200.0
    # Methods beyond the interface are forwarded too; private names are not.
    assert proxy.echo(1, "a", k=[2]) == {"args": [1, "a"], "kwargs": {"k": [2]}}
    with pytest.raises(AttributeError):
        proxy._secret()
    with pytest.raises(ProcessCallError, match="private"):
        healthy.call("portfolio", "__class__")


def test_health_check_and_metrics_run_in_the_child(healthy: ProcessHost) -> None:
    status = healthy.health_check()
    assert status.status is Health.HEALTHY
    assert status.details["pid"] == healthy.pid
    assert status.details["process"] == {"pid": healthy.pid, "restarts": 0}
    metrics = healthy.metrics()
    assert metrics["plugin"]["health_checks"] >= 1
    assert metrics["process"]["pid"] == healthy.pid
    assert metrics["process"]["max_rss_kb"] > 0
    assert metrics["host"]["restarts"] == 0 and metrics["host"]["calls"] >= 2


def test_a_result_of_the_plugins_own_class_is_refused_and_the_child_lives(
    healthy: ProcessHost,
) -> None:
    pid = healthy.pid
    with pytest.raises(ProcessCallError) as info:
        healthy.call("portfolio", "get_own_object")
    err = info.value
    assert err.cause == "transfer"
    assert "PluginOnly" in err.message and "SDK's data classes" in err.message
    assert healthy.call("portfolio", "get_portfolio_total").total_value == 200.0
    assert healthy.pid == pid


def test_concurrent_callers_never_interleave_on_the_pipe(healthy: ProcessHost) -> None:
    errors: list[str] = []

    def worker(n: int) -> None:
        for i in range(40):
            got = healthy.call("portfolio", "echo", n, i)
            if got != {"args": [n, i], "kwargs": {}}:
                errors.append(f"thread {n} call {i} got {got}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_a_real_plugin_gives_the_same_data_isolated_as_in_process(make_host: HostFactory) -> None:
    host = make_host("degiro-broker", source=BUNDLED)
    registry = PluginRegistry()
    registry.register(host.candidate)
    loaded = registry.load(host.name)
    try:
        for stype, method in [
            (ServiceType.PORTFOLIO, "get_portfolio"),
            (ServiceType.TRANSACTION, "get_transactions"),
            (ServiceType.ACCOUNT, "get_account_overview"),
        ]:
            direct = loaded.services[stype](config=loaded.config_class.from_dict({}))
            assert host.call(stype, method, config={}) == getattr(direct, method)()
    finally:
        registry.clear()


# -- faults -------------------------------------------------------------------------------------


def test_plugin_exception_crosses_as_text_and_the_child_survives(
    make_host: HostFactory,
) -> None:
    host = make_host("proc-raises")
    with pytest.raises(ProcessCallError) as info:
        host.call("portfolio", "get_portfolio")
    err = info.value
    assert isinstance(err, BrokerUnavailableError)  # aggregators skip the broker
    assert err.exc_type == "ValueError"
    assert "line 3 of the export is corrupt" in err.message
    assert "parse_export" in err.traceback and "services.py" in err.traceback
    assert err.operation == "portfolio.get_portfolio"
    pid = host.pid
    assert host.call("portfolio", "get_portfolio_total").total_value == 42.0
    assert (host.pid, host.restarts, host.crashes) == (pid, 0, [])


def test_os_exit_is_reported_with_its_status_and_the_host_lives_on(
    make_host: HostFactory,
) -> None:
    me = os.getpid()
    host = make_host("proc-exit")
    child = host.start()
    with pytest.raises(ProcessCrashed) as info:
        host.call("portfolio", "get_portfolio")
    err = info.value
    assert (err.code, err.cause, err.exitcode, err.pid) == (
        ReasonCode.HEALTH_FAILED,
        "exit",
        3,
        child,
    )
    assert "exited with status 3" in err.message
    assert "during portfolio.get_portfolio" in err.message
    assert os.getpid() == me and not host.alive and gone(child)
    [record] = host.crashes
    assert (record.exitcode, record.code, record.operation) == (3, "health_failed", err.operation)


def test_a_segfault_is_named_and_its_python_stack_captured(make_host: HostFactory) -> None:
    host = make_host("proc-segfault")
    with pytest.raises(ProcessCrashed) as info:
        host.call("portfolio", "get_portfolio")
    err = info.value
    assert err.signal == "SIGSEGV" and err.cause == "signal"
    assert "SIGSEGV" in err.message and "segmentation fault" in err.message
    assert "Segmentation fault" in err.traceback and "get_portfolio" in err.traceback


def test_a_memory_hog_hits_its_limit_and_the_child_is_replaced(make_host: HostFactory) -> None:
    host = make_host("proc-memory-hog", memory_mb=200)
    child = host.start()
    with pytest.raises(ProcessCrashed) as info:
        host.call("portfolio", "get_portfolio")
    err = info.value
    assert (err.code, err.cause, err.exitcode) == (
        ReasonCode.HEALTH_FAILED,
        "memory",
        EXIT_OUT_OF_MEMORY,
    )
    assert "MemoryError" in err.message and "200 MB" in err.message
    assert "get_portfolio" in err.traceback
    assert gone(child)
    time.sleep(host.retry_in)
    assert host.call("portfolio", "get_portfolio_total").total_value == 1.0  # a fresh child
    assert host.restarts == 1 and host.pid != child


def test_an_endless_loop_times_out_and_is_killed(make_host: HostFactory) -> None:
    host = make_host("proc-endless-loop", call_timeout=1.0)
    child = host.start()
    started = time.monotonic()
    with pytest.raises(ProcessTimeout) as info:
        host.call("portfolio", "get_portfolio")
    assert time.monotonic() - started < 10
    err = info.value
    assert (err.code, err.cause) == (ReasonCode.TIMEOUT, "timeout")
    assert "did not return within 1 s" in err.message and f"pid {child}" in err.message
    # faulthandler's dump says where it was stuck.
    assert "services.py" in err.traceback and "get_portfolio" in err.traceback
    assert gone(child)


def test_a_cpu_hog_dies_of_its_cpu_limit(make_host: HostFactory) -> None:
    host = make_host("proc-endless-loop", cpu_seconds=1, call_timeout=30.0)
    started = time.monotonic()
    with pytest.raises(ProcessCrashed) as info:
        host.call("portfolio", "get_portfolio")
    assert time.monotonic() - started < 15
    err = info.value
    assert (err.signal, err.cause, err.code) == ("SIGXCPU", "cpu", ReasonCode.HEALTH_FAILED)
    assert "CPU time limit of 1 s per call" in err.message


def test_start_up_failures_carry_the_in_process_load_codes(make_host: HostFactory) -> None:
    with pytest.raises(ProcessCrashed) as info:
        make_host("import-error").start()
    err = info.value
    assert (err.code, err.operation, err.cause) == (ReasonCode.IMPORT_ERROR, "start", "load")
    assert "ModuleNotFoundError" in err.message

    with pytest.raises(ProcessCrashed) as info:
        make_host("proc-init-exit").call("portfolio", "get_portfolio")
    err = info.value
    assert (err.code, err.operation, err.exitcode) == (ReasonCode.INITIALIZE_FAILED, "start", 5)
    assert "exited with status 5" in err.message and "while starting" in err.message


# -- recovery -----------------------------------------------------------------------------------


def test_a_one_off_crash_fails_fast_then_recovers_after_the_backoff(
    make_host: HostFactory,
) -> None:
    me = os.getpid()
    host = make_host("proc-crash-once", base_delay=0.5, jitter=0.0)
    first = host.start()
    with pytest.raises(ProcessCrashed, match="exited with status 4"):
        host.call("portfolio", "get_portfolio")
    with pytest.raises(ProcessCircuitOpen) as info:
        host.call("portfolio", "get_portfolio")
    err = info.value
    assert err.code is ReasonCode.CIRCUIT_OPEN and err.retry_in is not None
    assert 0 < err.retry_in <= 0.5
    assert "next attempt in" in err.message and "exited with status 4" in err.message
    assert host.pid is None

    time.sleep(err.retry_in)
    [entry] = host.call("portfolio", "get_portfolio")
    assert entry.symbol == "ONCE"
    assert host.pid not in (None, first) and host.restarts == 1
    assert len(host.crashes) == 1 and os.getpid() == me


def test_a_crashed_plugins_next_process_runs_on_idle_cpu_until_it_answers(
    make_host: HostFactory,
) -> None:
    host = make_host("proc-crash-once", base_delay=0.05, jitter=0.0)
    host.start()
    with pytest.raises(ProcessCrashed, match="exited with status 4"):
        host.call("portfolio", "get_portfolio")
    time.sleep(host.retry_in)
    restarted = host.revive()
    assert restarted is not None
    # A restart of a crashing plugin takes only CPU that no page wants.
    assert os.sched_getscheduler(restarted) == os.SCHED_IDLE
    [entry] = host.call("portfolio", "get_portfolio")
    assert entry.symbol == "ONCE" and host.pid == restarted
    if spawn.lift_allowed():  # without the privilege it stays idle, never raised above
        assert os.sched_getscheduler(restarted) == os.SCHED_OTHER
    assert os.getpriority(os.PRIO_PROCESS, restarted) == spawn.CHILD_NICENESS

    host.demote()  # what the runtime does when a page gives up on the child's call
    assert os.sched_getscheduler(restarted) == os.SCHED_IDLE


def test_repeated_crashes_back_off_exponentially_then_give_up(make_host: HostFactory) -> None:
    host = make_host("proc-exit", base_delay=0.2, jitter=0.0, max_restarts=1)
    waits = []
    for _ in range(2):
        with pytest.raises(ProcessCrashed):
            host.call("portfolio", "get_portfolio")
        waits.append(host.retry_in)
        time.sleep(host.retry_in)
    assert 0.1 < waits[0] <= 0.2 and 0.3 < waits[1] <= 0.4
    with pytest.raises(ProcessCircuitOpen, match="gave up after 2 consecutive crashes"):
        host.call("portfolio", "get_portfolio")
    assert host.restarts == 1
    host.start()  # an explicit start tries again
    assert host.call("portfolio", "get_portfolio_total").total_value == 1.0


def test_other_plugins_keep_working_while_one_hangs_and_crashes(
    make_host: HostFactory,
) -> None:
    good = make_host("proc-healthy")
    looping = make_host("proc-endless-loop", call_timeout=1.5)
    exiting = make_host("proc-exit")
    for host in (good, looping, exiting):
        host.start()
    outcome: list[BaseException] = []

    def hang() -> None:
        try:
            looping.call("portfolio", "get_portfolio")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    served = 0
    with pytest.raises(ProcessCrashed):
        exiting.call("portfolio", "get_portfolio")
    while thread.is_alive():
        assert len(good.call("portfolio", "get_portfolio")) == 2
        served += 1
    thread.join()
    assert served > 10
    assert [type(e) for e in outcome] == [ProcessTimeout]
    assert good.call("portfolio", "get_portfolio_total").total_value == 200.0
    assert good.restarts == 0 and good.crashes == []


# -- shutdown and the child's environment -------------------------------------------------------


def test_close_shuts_the_child_down_and_leaves_no_process(make_host: HostFactory) -> None:
    host = make_host("proc-healthy")
    pid = host.start()
    host.close()
    assert gone(pid)
    assert pid not in {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(ProcessCircuitOpen, match="closed"):
        host.call("portfolio", "get_portfolio")


def test_close_ends_a_stuck_call(make_host: HostFactory) -> None:
    host = make_host("proc-endless-loop", call_timeout=60.0)
    pid = host.start()
    caught: list[BaseException] = []

    def call() -> None:
        try:
            host.call("portfolio", "get_portfolio")
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    host.close(grace=0.5)
    thread.join(10)
    assert time.monotonic() - started < 10 and not thread.is_alive()
    assert gone(pid)
    [err] = caught
    assert isinstance(err, ProcessCircuitOpen) and err.cause == "closed"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_copy_of_the_host_does_not_share_the_child(healthy: ProcessHost) -> None:
    assert healthy.pid is not None
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked copy reports through its exit status
        os._exit(0 if healthy.pid is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert healthy.call("portfolio", "get_portfolio_total").total_value == 200.0


def test_the_child_side_imports_no_django() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys, stonks_plugins.sandbox.process.child, stonks_plugins.sandbox.process\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fault_fixtures_refuse_to_misbehave_in_the_host_process(tmp_path: Path) -> None:
    """Loaded in-process by mistake, a process-mode fault fixture raises instead of killing
    or hanging the test run."""
    from stonks_plugins.registry import _load
    from stonks_plugins.sandbox import PluginSandbox

    for folder in ("proc-exit", "proc-endless-loop", "proc-segfault", "proc-memory-hog"):
        cand = copy_plugin(FIXTURES / folder, tmp_path)
        # The in-process loader, as if the manifest's isolation had been ignored.
        loaded = _load(cand, PluginSandbox(cand.name))
        service = loaded.services[ServiceType.PORTFOLIO]()
        with pytest.raises(RuntimeError, match="only misbehaves in an isolated"):
            service.get_portfolio()


def test_the_benchmark_runs_and_prints_its_figures() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_process.py"), "--n", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for fragment in ("p50 µs", "p90 µs", "p99 µs", "direct", "ping", "call", "proxy", "app"):
        assert fragment in proc.stdout
    assert "target: app p50 <= 100 µs" in proc.stdout
    assert "app calls that reached the plugin's child: " in proc.stdout


def test_with_the_background_runtime_a_call_never_restarts_a_crashed_child(
    make_host: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a web or worker process the runtime's thread restarts crashed children: a call -
    a user's page - is answered at once instead of waiting for an interpreter to start."""
    monkeypatch.setattr(ProcessHost, "background_restarts", True)
    host = make_host("proc-crash-once", base_delay=0.05, jitter=0.0)
    with pytest.raises(ProcessCrashed):
        host.call("portfolio", "get_portfolio")
    assert wait_until(lambda: host.revivable, timeout=5)
    with pytest.raises(ProcessCircuitOpen, match="being restarted in the background"):
        host.call("portfolio", "get_portfolio")
    assert host.pid is None  # the call started nothing
    pid = host.revive()
    assert pid is not None and host.pid == pid and not host.revivable
    assert host.revive() is None  # nothing more to do
    assert len(host.call("portfolio", "get_portfolio")) > 0


def test_a_call_during_a_background_restart_is_refused_at_once(
    make_host: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the runtime's thread restarts a crashed child, a call - a user's page - is told
    so at once instead of waiting for the new interpreter to get ready."""
    monkeypatch.setattr(ProcessHost, "background_restarts", True)
    host = make_host("proc-crash-once", base_delay=0.05, jitter=0.0)
    with pytest.raises(ProcessCrashed):
        host.call("portfolio", "get_portfolio")
    assert wait_until(lambda: host.revivable, timeout=5)
    reviving = threading.Thread(target=host.revive)
    reviving.start()
    try:
        assert wait_until(lambda: host._restarting, timeout=5)
        with pytest.raises(ProcessCircuitOpen, match="being restarted in the background"):
            host.call("portfolio", "get_portfolio")
    finally:
        reviving.join(30)
    assert len(host.call("portfolio", "get_portfolio")) > 0

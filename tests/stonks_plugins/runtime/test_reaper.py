"""The reaper judges an abandoned call by the CPU that call used, not by what its thread
used before: a lane hands its calls to parked threads, so a thread that has served a busy
plugin for an hour carries minutes of CPU that are not the call's."""

from __future__ import annotations

import threading
import time

import pytest

from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import lanes, reaper
from stonks_plugins.sandbox import SandboxError
from tests.stonks_plugins.runtime.helpers import wait_until

PLUGIN = "reaper-reused-thread"


def _burn(seconds: float) -> threading.Thread:
    """Work that uses ``seconds`` of CPU and answers (a busy, healthy plugin's calls)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    return threading.current_thread()


def test_a_waiting_call_is_not_stopped_for_the_cpu_its_thread_used_on_earlier_calls() -> None:
    lane = lanes.lane(PLUGIN)
    worked = lane.start("work", _burn, 2 * reaper.SPIN_CPU + 0.1, revalidate=False)
    thread = worked.wait(time.monotonic() + 30, 30)
    assert wait_until(lambda: lane._workers._parked, timeout=5)

    gate = threading.Event()
    waiting = lane.start("wait", gate.wait, 30, revalidate=False)
    try:
        assert waiting.pending.thread is thread  # the parked thread, its CPU behind it
        with pytest.raises(SandboxError, match="no answer within"):
            waiting.wait(time.monotonic() + 0.1, 0.1)
        # It waits: watched from now on, neither stopped nor its plugin's circuit opened.
        [watched] = reaper.watched()
        assert watched.plugin == PLUGIN and not watched.stopped
        assert waiting.pending.thread.is_alive()
        assert plugin_registry.sandbox(PLUGIN).circuit.state == "closed"
    finally:
        gate.set()
    assert wait_until(lambda: waiting.done, timeout=5)
    assert waiting.pending.error is None  # it ended as it would have, not by CallStopped


def test_a_call_that_spun_while_its_caller_waited_is_still_stopped_at_once() -> None:
    lane = lanes.lane(PLUGIN)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinning = lane.start("spin", spin, revalidate=False)
    try:
        with pytest.raises(SandboxError, match="no answer within"):
            spinning.wait(time.monotonic() + 2 * reaper.SPIN_CPU + 0.3, 1.0)
        assert wait_until(lambda: spinning.done, timeout=5)
        assert isinstance(spinning.pending.error, reaper.CallStopped)
        assert plugin_registry.sandbox(PLUGIN).circuit.state == "open"
    finally:
        stop.set()

"""gunicorn --preload forks web workers from a master that already served its warm-up page
through the plugins' lanes: a worker must not inherit lanes whose kept threads exist only in
the master (its calls would wait for a thread that never runs them)."""

from __future__ import annotations

import os
import time

import pytest

from stonks_plugins.runtime import lanes


def _answer_within(seconds: float) -> object:
    call = lanes.lane("fork-probe").start("get_portfolio", lambda: "answered", revalidate=False)
    return call.wait(time.monotonic() + seconds, seconds)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_lanes_of_its_own() -> None:
    assert _answer_within(5) == "answered"  # the lane now keeps a parked thread
    pid = os.fork()
    if pid == 0:  # the child: answer, or exit 1 (never return into pytest)
        try:
            ok = _answer_within(5) == "answered"
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child's call found no thread to run it"
    lanes.reset()

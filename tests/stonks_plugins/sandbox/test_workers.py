"""A lane's kept threads (``sandbox.timeouts.Workers``): a call is handed to a parked thread
instead of starting one (the process-isolated call's cost was mostly that start), and a thread
whose call was given up on is never handed another - the reaper's exception or a stack dump
aimed at the abandoned call must not land in a later one."""

from __future__ import annotations

import threading

from stonks_plugins.sandbox.timeouts import Workers
from tests.stonks_plugins.runtime.helpers import wait_until


def _thread_of(workers: Workers, gave_up: bool) -> threading.Thread:
    """The thread a call ran on (not its ident: the system reuses those)."""
    call = workers.start(threading.current_thread, name="lane:test", on_exit=lambda: not gave_up)
    assert call.done.wait(5)
    thread: threading.Thread = call.result()
    return thread


def test_the_next_call_runs_on_the_parked_thread() -> None:
    workers = Workers(keep=1, idle=30)
    try:
        first = _thread_of(workers, gave_up=False)
        assert wait_until(lambda: workers._parked, timeout=5)
        assert _thread_of(workers, gave_up=False) is first
    finally:
        workers.close()


def test_a_thread_whose_call_was_given_up_on_serves_no_other_call() -> None:
    workers = Workers(keep=1, idle=30)
    try:
        abandoned = _thread_of(workers, gave_up=True)
        assert wait_until(lambda: not abandoned.is_alive(), timeout=5), "it serves on"
        assert not workers._parked
        assert _thread_of(workers, gave_up=False) is not abandoned
    finally:
        workers.close()


def test_close_ends_the_parked_threads() -> None:
    workers = Workers(keep=2, idle=30)
    thread = _thread_of(workers, gave_up=False)
    assert wait_until(lambda: workers._parked, timeout=5)
    workers.close()
    assert wait_until(lambda: not thread.is_alive(), timeout=5)

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


def test_after_close_a_finished_call_ends_its_thread() -> None:
    workers = Workers(keep=2, idle=30)
    workers.close()
    thread = _thread_of(workers, gave_up=False)
    thread.join(5)
    assert not thread.is_alive() and workers._parked == []


def test_a_call_runs_on_a_daemon_thread_named_for_it() -> None:
    workers = Workers(keep=1, idle=30)
    try:
        call = workers.start(
            lambda: threading.current_thread().name, name="lane:first", on_exit=lambda: True
        )
        assert call.done.wait(5) and call.result() == "lane:first"
        assert call.thread.name == "lane:first" and call.thread.daemon
        assert wait_until(lambda: workers._parked, timeout=5)
        again = workers.start(
            lambda: threading.current_thread().name, name="lane:second", on_exit=lambda: True
        )
        assert again.done.wait(5) and again.result() == "lane:second"  # renamed for it
        assert again.thread is call.thread  # the parked one, as Pending says
    finally:
        workers.close()


def test_at_most_keep_threads_wait() -> None:
    workers = Workers(keep=1, idle=30)
    release = threading.Event()
    try:
        calls = [
            workers.start(release.wait, (5,), name=f"lane:{i}", on_exit=lambda: True)
            for i in range(2)
        ]
        release.set()
        assert all(c.done.wait(5) for c in calls)
        threads = [c.thread for c in calls]
        assert wait_until(lambda: sum(t.is_alive() for t in threads) == 1, timeout=5)
        assert [thread for _, thread in workers._parked] == [t for t in threads if t.is_alive()]
    finally:
        workers.close()


def test_a_kept_thread_waits_only_idle_seconds() -> None:
    workers = Workers(keep=1, idle=0.2)
    try:
        thread = _thread_of(workers, gave_up=False)
        assert wait_until(lambda: not thread.is_alive(), timeout=5)
        assert workers._parked == []
    finally:
        workers.close()


def test_a_failing_exit_hook_is_logged_and_ends_the_thread(caplog) -> None:  # type: ignore[no-untyped-def]
    workers = Workers(keep=1, idle=30)

    def hook() -> bool:
        raise RuntimeError("hook broke")

    try:
        call = workers.start(lambda: 42, name="lane:hooked", on_exit=hook)
        assert call.done.wait(5) and call.result() == 42
        call.thread.join(5)
        assert not call.thread.is_alive() and workers._parked == []
        assert "on_exit hook of lane:hooked failed" in caplog.text
    finally:
        workers.close()

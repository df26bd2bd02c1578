"""The plugin's context: what it creates through it is released on unload, and what cannot
be released is reported as a leak."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from stonks_plugins.sandbox import LeakReport, PluginContext, PluginSandbox


class Conn:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.closed = log, name, False

    def close(self) -> None:
        self.closed = True
        self.log.append(f"close {self.name}")


def test_release_stops_and_joins_a_cooperative_thread() -> None:
    ctx = PluginContext("acme")
    seen: list[str] = []

    def poll(interval: float) -> None:
        while not ctx.stop_event.wait(interval):
            pass
        seen.append("stopped")

    thread = ctx.start_thread(poll, 0.01)
    assert thread.daemon and thread.name == "plugin:acme:poll" and thread.is_alive()
    assert ctx.threads() == [thread]
    report = ctx.release(join_timeout=2.0)
    assert report.ok and report.released == 1 and report.threads == []
    assert ctx.stop_event.is_set() and not thread.is_alive() and seen == ["stopped"]


def test_a_thread_that_ignores_stop_is_reported_as_leaked(gate: threading.Event) -> None:
    ctx = PluginContext("acme")
    thread = ctx.start_thread(gate.wait, name="stubborn")
    report = ctx.release(join_timeout=0.1)
    assert not report.ok
    assert report.threads == ["stubborn"]
    assert report.as_dict() == {"ok": False, "threads": ["stubborn"], "errors": [], "released": 0}
    gate.set()
    thread.join(2)


def test_files_resources_and_cleanups_are_released_in_reverse_order(tmp_path: Path) -> None:
    ctx = PluginContext("acme")
    log: list[str] = []
    path = tmp_path / "export.csv"
    path.write_text("a,b\n")
    handle = ctx.open(path)
    first = ctx.track(Conn(log, "db"), kind="connection")
    ctx.add_cleanup(lambda: log.append("cleanup"))
    second = ctx.track(object(), close=lambda: log.append("close custom"))
    tracked = ctx.tracked()
    assert tracked[0] == f"file {path}" and tracked[1] == "connection Conn"
    assert tracked[2].startswith("cleanup ") and tracked[2].endswith("<lambda>")
    assert tracked[3] == "resource object"
    assert second is not None and first.closed is False
    report = ctx.release()
    assert report.ok and report.released == 4
    assert log == ["close custom", "cleanup", "close db"]
    assert handle.closed and first.closed


def test_cleanup_exceptions_are_collected_and_the_rest_still_runs() -> None:
    ctx = PluginContext("acme")
    log: list[str] = []

    def bad() -> None:
        raise RuntimeError("cannot flush\ndetails")

    def exits() -> None:
        raise SystemExit(2)

    ctx.track(Conn(log, "a"))
    ctx.add_cleanup(bad)
    ctx.add_cleanup(exits)
    ctx.track(Conn(log, "b"))
    report = ctx.release()
    assert log == ["close b", "close a"]
    assert report.released == 2
    assert report.errors == [
        "cleanup test_cleanup_exceptions_are_collected_and_the_rest_still_runs.<locals>.exits: "
        "SystemExit: 2",
        "cleanup test_cleanup_exceptions_are_collected_and_the_rest_still_runs.<locals>.bad: "
        "RuntimeError: cannot flush",
    ]
    assert not report.ok


def test_track_needs_a_closer() -> None:
    ctx = PluginContext("acme")
    with pytest.raises(TypeError, match="has no close"):
        ctx.track(42)


def test_untrack_and_closed_files_are_dropped(tmp_path: Path) -> None:
    ctx = PluginContext("acme")
    conn = ctx.track(Conn([], "a"))
    assert ctx.untrack(conn) is True and ctx.untrack(conn) is False
    path = tmp_path / "f.txt"
    path.write_text("x")
    with ctx.open(path) as f:
        f.read()
    ctx.add_cleanup(lambda: None)  # prunes the closed file
    assert ctx.tracked() == ["cleanup test_untrack_and_closed_files_are_dropped.<locals>.<lambda>"]


def test_a_released_context_refuses_new_work(tmp_path: Path) -> None:
    ctx = PluginContext("acme")
    assert ctx.release().ok and ctx.released
    assert ctx.release() == LeakReport()  # idempotent
    with pytest.raises(RuntimeError, match="context was released"):
        ctx.start_thread(lambda: None)
    with pytest.raises(RuntimeError):
        ctx.track(Conn([], "late"))
    with pytest.raises(RuntimeError):
        ctx.open(tmp_path / "x", "w")
    assert not (tmp_path / "x").exists()


def test_thread_exceptions_are_logged_with_the_plugin(caplog: pytest.LogCaptureFixture) -> None:
    ctx = PluginContext("acme")

    def crash() -> None:
        raise ValueError("thread crashed")

    def leave() -> None:
        raise SystemExit

    with caplog.at_level(logging.ERROR):
        a = ctx.start_thread(crash)
        b = ctx.start_thread(leave)
        a.join(2)
        b.join(2)
    assert any("of plugin acme raised" in r.getMessage() for r in caplog.records)
    assert ctx.release().ok


def test_leak_report_merge() -> None:
    a = LeakReport(["t1"], [], 2)
    b = LeakReport([], ["e"], 1)
    assert a.merge(b) == LeakReport(["t1"], ["e"], 3)
    assert LeakReport().ok


def test_sandbox_close_releases_and_starts_a_fresh_context(gate: threading.Event) -> None:
    sandbox = PluginSandbox("acme")
    ctx = sandbox.context
    log: list[str] = []
    ctx.track(Conn(log, "db"))
    ctx.start_thread(gate.wait, name="stuck")
    snap = sandbox.snapshot()
    assert snap["threads"] == ["stuck"] and snap["tracked"] == ["resource Conn"]
    report = sandbox.close(join_timeout=0.05)
    assert log == ["close db"] and report.threads == ["stuck"] and report.released == 1
    assert ctx.released and sandbox.context is not ctx and not sandbox.context.released
    assert sandbox.close().ok

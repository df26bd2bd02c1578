"""The Foundation on real processes: gunicorn with two workers serves the bundled brokers
with the whole broken corpus installed, and a plugin disabled from the CLI (a third process)
leaves the page of every worker, then comes back when enabled."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from tests.conftest import BUNDLED, CORPUS, FIXTURES

pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout: float = 3.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def test_two_workers_serve_bundled_brokers_despite_broken_corpus(stack) -> None:  # type: ignore[no-untyped-def]
    for name in ("degiro-broker", "bitvavo-broker"):
        shutil.copytree(BUNDLED / name, stack.plugin_dir / name)
    for name in CORPUS:
        shutil.copytree(FIXTURES / name, stack.plugin_dir / name)
    stack.manage("plugins", "sync")
    stack.start_gunicorn(workers=2)
    assert len(stack.worker_pids(2)) == 2

    session = stack.session()
    for status, page in session.get_many("/", 8):  # concurrent: every worker renders it
        assert status == 200
        assert 'data-broker="degiro"' in page and 'data-broker="bitvavo"' in page
        assert ">HLTH<" in page and 'data-broker="ibkr"' in page

    rows = stack.plugins_json()
    assert rows["degiro-broker"]["state"] == "active"
    assert rows["import-error"]["error"]["code"] == "import_error"
    assert rows["incompatible-api"]["error"]["code"] == "incompatible_api"
    assert rows["unreadable-json"]["error"]["code"] == "manifest_unreadable"

    stack.manage("plugins", "disable", "bitvavo-broker")

    def gone_everywhere() -> bool:
        pages = [page for _, page in session.get_many("/", 8)]
        return all('data-broker="bitvavo"' not in p and 'data-broker="degiro"' in p for p in pages)

    _wait_for(gone_everywhere, timeout=3.0)
    stack.manage("plugins", "enable", "bitvavo-broker")
    _wait_for(lambda: all('data-broker="bitvavo"' in p for _, p in session.get_many("/", 8)))
    assert "Traceback" not in stack.log()


FAULTS = [
    "fault-import-raises",
    "fault-init-raises",
    "fault-init-hangs",
    "fault-health-hangs",
    "fault-service-raises",
    "fault-thread-leak",
    "dep-missing",
    "dep-cycle-a",
    "dep-cycle-b",
    "healthy-fixture",
]


def test_two_workers_keep_serving_with_the_fault_corpus(stack) -> None:  # type: ignore[no-untyped-def]
    for name in FAULTS:
        shutil.copytree(FIXTURES / name, stack.plugin_dir / name)
    shutil.copytree(BUNDLED / "degiro-broker", stack.plugin_dir / "degiro-broker")
    stack.env["PLUGINS_INITIALIZE_TIMEOUT"] = "1"
    stack.env["PLUGINS_HEALTH_TIMEOUT"] = "1"
    stack.manage("plugins", "sync")
    stack.start_gunicorn(workers=2)
    assert len(stack.worker_pids(2)) == 2
    session = stack.session()
    for _ in range(3):
        start = time.monotonic()
        for status, page in session.get_many("/", 6):
            assert status == 200
            assert 'data-broker="degiro"' in page and ">HLTH<" in page
        assert time.monotonic() - start < 15  # a hanging plugin never holds a worker
    rows = stack.plugins_json()
    assert rows["fault-import-raises"]["error"]["code"] == "import_error"
    assert rows["fault-init-raises"]["error"]["code"] == "initialize_failed"
    assert rows["fault-init-hangs"]["error"]["code"] == "timeout"
    assert rows["dep-cycle-a"]["error"]["code"] == "missing_dependency"
    health = stack.manage("plugins", "health", "fault-health-hangs", "--json", check=False)
    assert health.returncode == 1
    assert json.loads(health.stdout)["status"] == "unhealthy"
    assert len(stack.worker_pids(2)) == 2  # both workers still alive
    assert "WORKER TIMEOUT" not in stack.log()


def test_safe_mode_serves_no_plugin_and_changes_no_state(stack) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(BUNDLED / "degiro-broker", stack.plugin_dir / "degiro-broker")
    shutil.copytree(FIXTURES / "fault-import-raises", stack.plugin_dir / "fault-import-raises")
    stack.manage("plugins", "sync")
    before = stack.plugins_json()
    stack.env["PLUGINS_SAFE_MODE"] = "1"
    stack.start_gunicorn(workers=2)
    session = stack.session()
    for status, page in session.get_many("/", 4):
        assert status == 200
        assert 'id="safe-mode"' in page
        assert 'data-broker="ibkr"' in page and 'data-broker="degiro"' not in page
    assert stack.plugins_json() == before  # fault-import-raises is still 'active', untouched

"""The background runtime of a serving process: it loads every served plugin at start
without a request, retries a failed load after its backoff (never on a user's request), and
writes what it learns itself. These tests commit (the runtime's thread has its own database
connection, as in production)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from stonks_plugins import reporting
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import lanes, loads
from stonks_plugins.runtime.background import background, ensure_started
from stonks_plugins.runtime.serving import serving
from tests.stonks_overwatch.test_home import failures, page
from tests.stonks_plugins.runtime.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _fresh_process() -> None:
    """Forget what this process loaded, as a new web or worker process would start."""
    serving.reset()
    plugin_registry.clear()
    loads.forget()


@pytest.fixture
def runtime(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.PLUGINS_WARMUP = True
    settings.PLUGINS_REFRESH_INTERVAL = 0.1
    settings.CELERY_TASK_ALWAYS_EAGER = False  # no in-process beat in these tests
    yield
    background.stop()


def test_plugins_are_loaded_at_start_before_any_request(make_broker, runtime) -> None:
    make_broker("warm-one", "WRM1")
    make_broker("warm-two", "WRM2")
    manager.sync()
    _fresh_process()
    assert plugin_registry.peek("warm-one") is None

    assert background.start()
    assert wait_until(lambda: plugin_registry.peek("warm-one") and plugin_registry.peek("warm-two"))


def test_a_failed_load_is_retried_in_the_background_and_comes_back(
    make_broker, runtime, admin_client_logged
) -> None:
    root = make_broker("flaky-login", "FLKY", slow=("fail-init",))
    make_broker("steady", "STDY")
    manager.sync()
    row = Plugin.objects.get(name="flaky-login")
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    _fresh_process()

    assert background.start()
    assert wait_until(lambda: plugin_registry.peek("steady"))
    assert wait_until(lambda: plugin_registry.load_failure("flaky-login")[0] >= 1)
    # A user's request during the backoff starts no load: it says when the retry is due.
    html = page(admin_client_logged)
    assert "next attempt in" in failures(html)["flaky-login"]

    (root / "fail-init").unlink()  # the broker's login works again
    assert wait_until(lambda: Plugin.objects.get(name="flaky-login").state == "active")
    row = Plugin.objects.get(name="flaky-login")
    assert row.error_code == ""
    assert row.events.filter(reason__startswith="recovered").exists()
    assert "flaky-login" not in failures(page(admin_client_logged))


def test_a_web_process_takes_requests_once_warm_and_knows_its_hanging_brokers(
    make_broker, runtime, settings, admin_client_logged
) -> None:
    settings.PLUGINS_PAGE_BUDGET = 0.5
    make_broker("warm-quick", "WQCK")
    hanging = make_broker("warm-hangs", "WHNG", slow=("slow-service",))
    manager.sync()
    _fresh_process()
    try:
        # What the WSGI module does at import: start, and wait (bounded) for the warm-up.
        ensure_started(ready_within=5.0)
        assert background.warmed.is_set()
        assert plugin_registry.peek("warm-quick") is not None
        # The warm-up page asked every broker: the quick one's answer is kept, and the
        # hanging one is known not to be waited for - the first user's page is served at once.
        assert lanes.lane("warm-hangs").slow()
        html = page(admin_client_logged)
        assert "WQCK" in html
        assert "still running" in failures(html)["warm-hangs"]
    finally:
        (hanging / "slow-service").unlink()


def test_a_refresh_shuts_a_leaving_plugin_down_without_holding_the_serving_lock(
    make_broker, settings
) -> None:
    """A plugin whose shutdown hangs (here in a process without the background runtime,
    where the refreshing thread runs it itself) never keeps another thread's refresh
    waiting: the lock is released before any plugin code runs."""
    settings.PLUGINS_TIMEOUTS = {**settings.PLUGINS_TIMEOUTS, "shutdown": 10.0}
    reporting.configure(plugin_registry)
    root = make_broker("slow-to-stop", "STOP", slow=("slow-shutdown",))
    manager.sync()
    assert plugin_registry.peek("slow-to-stop") is not None
    manager.disable("slow-to-stop")
    refreshing = threading.Thread(target=serving.refresh, kwargs={"force": True})
    refreshing.start()
    try:
        assert wait_until(lambda: (root / "in-shutdown").exists())
        assert serving._lock.acquire(blocking=False)  # free while the shutdown hangs
        serving._lock.release()
        assert "slow-to-stop" not in plugin_registry.known()
    finally:
        (root / "slow-shutdown").unlink()
        refreshing.join(10)


def test_a_crashed_child_is_restarted_in_the_background_not_by_a_page(
    plugin_dirs, runtime, settings
) -> None:
    settings.PLUGINS_BACKOFF_BASE = 0.1
    plugin_dirs.add("proc-exit")  # its child exits in every get_portfolio
    manager.sync()
    _fresh_process()
    assert background.start()
    assert wait_until(lambda: plugin_registry.peek("proc-exit"))
    host = plugin_registry.peek("proc-exit").host
    assert host is not None
    assert wait_until(lambda: host.pid is not None, timeout=10), host.status()
    first = host.pid
    with pytest.raises(Exception, match="exited"):
        host.call("portfolio", "get_portfolio")
    # Nobody calls again: the runtime's thread starts a new child once the backoff is over.
    assert wait_until(lambda: host.pid not in (None, first), timeout=10), host.status()
    assert host.call("portfolio", "get_portfolio_total").total_value == 1.0

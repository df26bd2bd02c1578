"""Process-isolated plugins through the whole host: served from a child process on the home
page; a crash puts the plugin in error while the page, the host process and the other
plugins carry on; the child is restarted with backoff and a one-off crash recovers."""

from __future__ import annotations

import os
import re
import time

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginEvent
from stonks_plugins.registry import plugin_registry
from tests.conftest import fast_process_plugins

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
ROW = re.compile(r'<tr data-broker="([^"]*)"><td>[^<]*</td><td>([^<]*)</td>')


@pytest.fixture(autouse=True)
def _fast(settings) -> None:  # type: ignore[no-untyped-def]
    fast_process_plugins(settings, call_timeout=2.0)
    from stonks_plugins import reporting

    reporting.configure(plugin_registry)


def served(client) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    resp = client.get("/")
    assert resp.status_code == 200
    out: dict[str, set[str]] = {}
    for broker, symbol in ROW.findall(resp.content.decode()):
        out.setdefault(broker, set()).add(symbol)
    return out


def test_isolated_plugin_serves_from_a_child_process(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("proc-healthy")
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    assert served(admin_client_logged)["proc-healthy"] == {"PRH1", "PRH2"}
    host = plugin_registry.loaded()["proc-healthy"].host
    assert host is not None and host.pid not in (None, os.getpid())
    outcome = manager.check_health("proc-healthy")[0]
    assert outcome.status.status.value == "healthy"
    metrics = manager.metrics("proc-healthy")["metrics"]
    assert metrics["portfolio.get_portfolio"]["calls"] >= 1
    manager.unload_plugin("proc-healthy")
    assert not host.alive


def test_crash_puts_plugin_in_error_and_page_carries_on(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("proc-exit")
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    host_pid = os.getpid()
    page = served(admin_client_logged)
    assert page["healthy-fixture"] == {"HLTH"} and "proc-exit" not in page
    row = Plugin.objects.get(name="proc-exit")
    assert row.state == "error"
    assert "status 3" in row.error_message
    assert PluginEvent.objects.filter(plugin=row, kind="failure").exists()
    # Still registered: the next call after the backoff restarts the child (and it crashes
    # again, being what it is), while the host process and the other plugins carry on.
    time.sleep(1.2)
    page = served(admin_client_logged)
    assert page["healthy-fixture"] == {"HLTH"}
    host = plugin_registry.loaded()["proc-exit"].host
    assert host is not None and host.restarts >= 1
    assert os.getpid() == host_pid


def test_one_off_crash_recovers_after_backoff(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("proc-crash-once")
    manager.sync()
    assert "proc-crash-once" not in served(admin_client_logged)
    assert Plugin.objects.get(name="proc-crash-once").state == "error"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if served(admin_client_logged).get("proc-crash-once") == {"ONCE"}:
            break
    assert served(admin_client_logged).get("proc-crash-once") == {"ONCE"}
    row = Plugin.objects.get(name="proc-crash-once")
    assert (row.state, row.error_code) == ("active", "")
    assert PluginEvent.objects.filter(plugin=row, reason__startswith="recovered").exists()

"""The engine's fault corpus (tests/fixtures/plugins/fault-*, see its README): each plugin
that misbehaves at run time ends in its reason code, its failure is an event with the
traceback, and the page keeps serving the healthy brokers."""

from __future__ import annotations

import io
import json
import re
import time

import pytest
from django.core.management import call_command
from django.dispatch import receiver

from stonks_plugins.lifecycle import signals
from stonks_plugins.manager import manager
from stonks_plugins.models import HealthCheck, Plugin, PluginEvent
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import lanes, outbox
from tests.stonks_plugins.runtime.helpers import wait_until

pytestmark = pytest.mark.django_db
ROW = re.compile(r'<tr data-broker="([^"]*)">')
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
]


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _brokers(client) -> set[str]:  # type: ignore[no-untyped-def]
    resp = client.get("/")
    assert resp.status_code == 200
    return set(ROW.findall(resp.content.decode()))


def _row(name: str) -> Plugin:
    return Plugin.objects.get(name=name)


def _install(plugin_dirs, *names: str) -> None:  # type: ignore[no-untyped-def]
    for name in ("healthy-fixture", *names):
        plugin_dirs.add(name)
    manager.sync()


def test_whole_fault_corpus_site_keeps_serving(plugin_dirs, admin_client_logged) -> None:
    _install(plugin_dirs, *FAULTS)
    start = time.monotonic()
    served = _brokers(admin_client_logged)
    elapsed = time.monotonic() - start
    assert {"healthy-fixture", "ibkr"} <= served
    assert not served & {"fault-import-raises", "fault-init-raises", "fault-init-hangs"}
    # The hanging initialize was abandoned after its limit, not waited for.
    assert elapsed < 10, elapsed
    out = io.StringIO()
    call_command("plugins", "list", "--json", stdout=out)
    codes = {r["name"]: (r["error"] or {}).get("code") for r in json.loads(out.getvalue())}
    assert codes["fault-import-raises"] == "import_error"
    assert codes["fault-init-raises"] == "initialize_failed"
    assert codes["fault-init-hangs"] == "timeout"
    assert codes["dep-missing"] == "missing_dependency"
    assert codes["dep-cycle-a"] == codes["dep-cycle-b"] == "missing_dependency"
    assert codes["healthy-fixture"] is None
    # And again: the failed ones are out of service or refused fast, the rest serves.
    start = time.monotonic()
    assert {"healthy-fixture", "ibkr"} <= _brokers(admin_client_logged)
    assert time.monotonic() - start < 5


def test_import_failure_is_recorded_with_its_traceback(plugin_dirs, admin_client_logged) -> None:
    _install(plugin_dirs, "fault-import-raises")
    assert "healthy-fixture" in _brokers(admin_client_logged)
    row = _row("fault-import-raises")
    assert (row.state, row.error_code) == ("error", "import_error")
    assert "RuntimeError: fault fixture: boom at import time" in row.error_message
    event = PluginEvent.objects.filter(plugin=row, kind="failure").first()
    assert event is not None
    assert "Traceback" in event.details["traceback"]
    assert "boom at import time" in event.details["traceback"]


def test_initialize_failure_is_retried_with_backoff_and_recovers(
    plugin_dirs, admin_client_logged
) -> None:
    folder = plugin_dirs.path / "fault-init-raises"
    _install(plugin_dirs, "fault-init-raises")
    marker = folder / "fail-next"
    marker.write_text("1")
    plugin_py = folder / "initboom" / "plugin.py"
    plugin_py.write_text(
        "from pathlib import Path\n\nfrom stonks_plugins.sdk import BaseBrokerPlugin\n\n"
        "class FixturePlugin(BaseBrokerPlugin):\n"
        "    def initialize(self):\n"
        "        if (Path(__file__).parent.parent / 'fail-next').exists():\n"
        "            raise ConnectionError('fault fixture: broker API refused the login')\n"
        "        return True\n"
    )
    assert "fault-init-raises" not in _brokers(admin_client_logged)
    row = _row("fault-init-raises")
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    assert "ConnectionError: fault fixture: broker API refused the login" in row.error_message

    # Within the backoff the plugin is not tried again: no new failure event.
    failures = PluginEvent.objects.filter(plugin=row, kind="failure").count()
    _brokers(admin_client_logged)
    assert PluginEvent.objects.filter(plugin=row, kind="failure").count() == failures

    marker.unlink()  # the broker comes back
    # Past the backoff (0.2 s doubling, capped at 1 s in tests) a request retries it.
    deadline = time.monotonic() + 10
    while "fault-init-raises" not in _brokers(admin_client_logged):
        assert time.monotonic() < deadline, "not retried after the backoff"
        time.sleep(0.3)
    row = _row("fault-init-raises")
    assert (row.state, row.error_code) == ("active", "")
    assert PluginEvent.objects.filter(plugin=row, reason__startswith="recovered").exists()


def test_hanging_initialize_is_abandoned_with_timeout(plugin_dirs, admin_client_logged) -> None:
    _install(plugin_dirs, "fault-init-hangs")
    start = time.monotonic()
    assert "healthy-fixture" in _brokers(admin_client_logged)
    assert time.monotonic() - start < 5
    row = _row("fault-init-hangs")
    assert (row.state, row.error_code) == ("error", "timeout")
    assert "did not finish within 0.5 s" in row.error_message
    event = PluginEvent.objects.filter(plugin=row, kind="failure").first()
    assert event is not None and "wait" in event.details["stack"]  # where it hangs


def test_hanging_health_check_is_unhealthy_then_health_failed(plugin_dirs) -> None:
    _install(plugin_dirs, "fault-health-hangs")
    for attempt in range(3):
        out = io.StringIO()
        with pytest.raises(SystemExit) as exit_info:
            call_command("plugins", "health", "fault-health-hangs", "--json", stdout=out)
        assert exit_info.value.code == 1
        result = json.loads(out.getvalue())
        assert result["status"] == "unhealthy"
        if attempt == 0:
            assert "did not finish within 0.5 s" in result["message"]
    row = _row("fault-health-hangs")
    assert (row.state, row.error_code) == ("error", "health_failed")
    assert "unhealthy 3 times in a row" in row.error_message
    assert HealthCheck.objects.filter(plugin=row).count() == 3


def test_healthy_plugins_pass_the_health_command(plugin_dirs) -> None:
    _install(plugin_dirs, "fault-thread-leak")
    out = io.StringIO()
    call_command("plugins", "health", "--json", stdout=out)
    rows = {r["name"]: r for r in json.loads(out.getvalue())}
    assert rows["healthy-fixture"]["status"] == "healthy"
    assert rows["fault-thread-leak"]["status"] == "healthy"


def test_service_failures_open_the_circuit(
    plugin_dirs, admin_client_logged, settings, monkeypatch
) -> None:
    settings.PLUGINS_BACKOFF_BASE = 60  # stays open for the whole test, however slow
    settings.PLUGINS_BACKOFF_MAX = 120
    # After two failures in a row the pages stop waiting for it: its next calls are made in
    # the background, this far apart, until the circuit opens.
    monkeypatch.setattr(lanes, "RECHECK_FAILED", 0.05)
    _install(plugin_dirs, "fault-service-raises")
    circuit = plugin_registry.sandbox("fault-service-raises").circuit

    def failing_page() -> bool:
        resp = admin_client_logged.get("/")
        assert resp.status_code == 200
        html = resp.content.decode()
        assert 'data-broker="healthy-fixture"' in html
        assert "bad row at line 7" in html or "circuit" in html
        return circuit.state == "open" and not lanes.busy("fault-service-raises")

    assert wait_until(failing_page)
    outbox.settle()
    row = _row("fault-service-raises")
    assert (row.state, row.error_code) == ("error", "circuit_open")
    # News twice: the first failure, with its traceback, and the one that opened the
    # circuit; the pages between failed the same way and wrote nothing more.
    failures = PluginEvent.objects.filter(plugin=row, kind="failure").order_by("id")
    assert failures.count() == 2
    assert "ValueError: fault fixture" in failures.first().details["traceback"]
    assert "circuit open after" in failures.last().reason
    # While open, calls are refused without running plugin code (no new failure events).
    assert "healthy-fixture" in _brokers(admin_client_logged)
    assert failures.count() == 2


def test_leaked_thread_is_reported_on_unload(plugin_dirs, admin_client_logged) -> None:
    seen: dict[str, object] = {}

    @receiver(signals.plugin_unloaded, weak=False)
    def on_unloaded(sender, name, leaks, **kwargs):  # type: ignore[no-untyped-def]
        seen[name] = leaks

    try:
        _install(plugin_dirs, "fault-thread-leak")
        assert "fault-thread-leak" in _brokers(admin_client_logged)
        report = manager.unload_plugin("fault-thread-leak")
        assert report is not None and not report.ok
        assert any("fault-thread-leak-poller" in t for t in report.threads)
        assert "fault-thread-leak" in seen
        event = PluginEvent.objects.filter(plugin__name="fault-thread-leak", kind="failure")
        assert any("leaked" in e.reason for e in event)
    finally:
        signals.plugin_unloaded.disconnect(on_unloaded)


def test_lifecycle_signals_fire(plugin_dirs, admin_client_logged) -> None:
    fired: list[tuple[str, str]] = []
    handlers = {}
    for sig_name in (
        "plugin_before_load",
        "plugin_loaded",
        "plugin_failed",
        "plugin_state_changed",
        "plugin_before_unload",
        "plugin_unloaded",
    ):

        def handler(sender, name, _s=sig_name, **kwargs):  # type: ignore[no-untyped-def]
            fired.append((_s, name))

        handlers[sig_name] = handler
        getattr(signals, sig_name).connect(handler, weak=False)
    try:
        _install(plugin_dirs, "fault-import-raises")
        _brokers(admin_client_logged)
        manager.unload_plugin("healthy-fixture")
    finally:
        for sig_name, handler in handlers.items():
            getattr(signals, sig_name).disconnect(handler)
    assert ("plugin_before_load", "healthy-fixture") in fired
    assert ("plugin_loaded", "healthy-fixture") in fired
    assert ("plugin_failed", "fault-import-raises") in fired
    assert ("plugin_before_unload", "healthy-fixture") in fired
    assert ("plugin_unloaded", "healthy-fixture") in fired


def test_state_changed_signal_fires_after_commit(
    plugin_dirs, django_capture_on_commit_callbacks
) -> None:
    changes: list[tuple[str, str, str]] = []

    def handler(sender, name, from_state, to_state, **kwargs):  # type: ignore[no-untyped-def]
        changes.append((name, from_state, to_state))

    signals.plugin_state_changed.connect(handler, weak=False)
    try:
        plugin_dirs.add("healthy-fixture")
        with django_capture_on_commit_callbacks(execute=True):
            manager.sync()
        with django_capture_on_commit_callbacks(execute=True):
            manager.disable("healthy-fixture")
    finally:
        signals.plugin_state_changed.disconnect(handler)
    assert ("healthy-fixture", "loaded", "active") in changes
    assert ("healthy-fixture", "unloading", "disabled") in changes

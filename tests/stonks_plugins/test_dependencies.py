"""Plugins that need other plugins: load order, a missing one, a cycle, and the cascade when
a needed plugin is disabled and enabled again."""

from __future__ import annotations

import pytest

from stonks_overwatch.core.registry import BrokerRegistry
from stonks_plugins.dependencies import load_order
from stonks_plugins.discovery import discover
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginEvent

pytestmark = pytest.mark.django_db


def _row(name: str) -> Plugin:
    return Plugin.objects.get(name=name)


def test_missing_plugin_dependency_is_an_error_naming_it(plugin_dirs) -> None:
    plugin_dirs.add("dep-missing")
    manager.sync()
    row = _row("dep-missing")
    assert (row.state, row.error_code) == ("error", "missing_dependency")
    assert "needs plugin 'no-such-plugin' (>=1.0) which is not installed" in row.error_message


def test_cycle_puts_every_plugin_on_it_in_error(plugin_dirs) -> None:
    plugin_dirs.add("dep-cycle-a")
    plugin_dirs.add("dep-cycle-b")
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    for name in ("dep-cycle-a", "dep-cycle-b"):
        row = _row(name)
        assert (row.state, row.error_code) == ("error", "missing_dependency")
        assert "dependency cycle" in row.error_message
        assert "dep-cycle-a" in row.error_message and "dep-cycle-b" in row.error_message
    assert _row("healthy-fixture").state == "active"  # bystanders are unaffected


def test_load_order_puts_needed_plugins_first(plugin_dirs) -> None:
    plugin_dirs.add("dep-child")
    plugin_dirs.add("dep-base")
    order = load_order(discover().plugins)
    assert order.index("dep-base") < order.index("dep-child")


def test_disabling_a_needed_plugin_fails_its_dependents_and_enabling_restores_them(
    plugin_dirs, admin_client_logged
) -> None:
    plugin_dirs.add("dep-base")
    plugin_dirs.add("dep-child")
    manager.sync()
    assert _row("dep-child").state == "active"
    assert 'data-broker="dep-child"' in admin_client_logged.get("/").content.decode()

    manager.disable("dep-base", actor="ops", force=True)
    child = _row("dep-child")
    assert (child.state, child.error_code) == ("error", "missing_dependency")
    assert "needs plugin 'dep-base' (>=1.0) which is disabled" in child.error_message
    page = admin_client_logged.get("/").content.decode()
    assert 'data-broker="dep-child"' not in page
    assert "dep-child" not in BrokerRegistry().get_registered_brokers()

    manager.enable("dep-base", actor="ops")
    assert _row("dep-base").state == "active"
    assert _row("dep-child").state == "active"
    assert 'data-broker="dep-child"' in admin_client_logged.get("/").content.decode()
    reasons = list(
        PluginEvent.objects.filter(plugin__name="dep-child", to_state="error").values_list(
            "reason", flat=True
        )
    )
    assert any("dep-base" in r for r in reasons)


def test_wrong_version_of_needed_plugin(plugin_dirs) -> None:
    import json

    base = plugin_dirs.add("dep-base")
    manifest = json.loads((base / "plugin_manifest.json").read_text())
    manifest["plugin"]["version"] = "0.9.0"
    (base / "plugin_manifest.json").write_text(json.dumps(manifest))
    plugin_dirs.add("dep-child")
    manager.sync()
    child = _row("dep-child")
    assert child.error_code == "missing_dependency"
    assert "but version 0.9.0 is installed" in child.error_message

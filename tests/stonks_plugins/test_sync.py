"""``sync`` writes what discovery found: idempotent, one event per change, a plugin that
disappears is marked (row and config kept), a new folder appears with no core change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.models import EventKind, Plugin, PluginConfig, PluginEvent

pytestmark = pytest.mark.django_db


def rows() -> dict[str, Plugin]:
    return {p.name: p for p in Plugin.objects.all()}


def edit_manifest(folder: Path, **plugin_fields: str) -> None:
    path = folder / "plugin_manifest.json"
    data = json.loads(path.read_text())
    data["plugin"].update(plugin_fields)
    path.write_text(json.dumps(data, indent=2))


def test_first_sync_records_and_activates(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    report = manager.sync(actor="tester")
    assert report.added == ["healthy-fixture"] and report.activated == ["healthy-fixture"]
    plugin = Plugin.objects.get(name="healthy-fixture")
    assert (plugin.state, plugin.enabled, plugin.source, plugin.type) == (
        "active",
        True,
        "directory",
        "broker",
    )
    assert plugin.version == "1.0.0" and plugin.display_name == "Healthy Fixture"
    assert plugin.location == str(plugin_dirs.path / "healthy-fixture")
    assert plugin.manifest["plugin"]["name"] == "healthy-fixture"
    events = list(PluginEvent.objects.filter(plugin=plugin).order_by("id"))
    assert events[0].kind == EventKind.DISCOVERY and "discovered at" in events[0].reason
    assert [e.to_state for e in events[1:]] == ["loading", "loaded", "active"]
    assert {e.actor for e in events} == {"tester"}


def test_second_sync_changes_nothing_and_records_nothing(plugin_dirs) -> None:
    for name in (
        "healthy-fixture",
        "schema-violation",
        "incompatible-api",
        "duplicate-a",
        "duplicate-b",
        "unreadable-json",
    ):
        plugin_dirs.add(name)
    manager.sync()
    events = PluginEvent.objects.count()
    states = {n: (p.state, p.error_code, p.error_message) for n, p in rows().items()}
    assert len(states) == 6
    report = manager.sync()
    assert not report.changed
    assert sorted(report.unchanged) == sorted(states)
    assert PluginEvent.objects.count() == events
    assert {n: (p.state, p.error_code, p.error_message) for n, p in rows().items()} == states


def test_disappeared_plugin_is_marked_and_keeps_its_config(plugin_dirs) -> None:
    folder = plugin_dirs.add("healthy-fixture")
    manager.sync()
    plugin = Plugin.objects.get(name="healthy-fixture")
    PluginConfig.objects.create(plugin=plugin, version=1, data={"a": 1})
    PluginConfig.objects.create(plugin=plugin, version=2, data={"a": 2}, is_active=True)

    shutil.rmtree(folder)
    report = manager.sync()
    assert report.missing == ["healthy-fixture"]
    plugin.refresh_from_db()
    assert plugin.missing is True
    assert plugin.state == "error" and plugin.error_code == "manifest_unreadable"
    assert str(folder) in plugin.error_message and "config is kept" in plugin.error_message
    assert list(plugin.configs.order_by("version").values_list("data", flat=True)) == [
        {"a": 1},
        {"a": 2},
    ]
    assert PluginEvent.objects.filter(plugin=plugin, reason__contains="no longer found").exists()

    # Idempotent while it stays away.
    events = PluginEvent.objects.count()
    assert not manager.sync().changed
    assert PluginEvent.objects.count() == events


def test_disappeared_plugin_comes_back_active(plugin_dirs) -> None:
    folder = plugin_dirs.add("healthy-fixture")
    manager.sync()
    backup = folder.parent.parent / "backup"
    shutil.move(folder, backup)
    manager.sync()
    shutil.move(backup, folder)
    report = manager.sync()
    assert "healthy-fixture" in report.activated
    plugin = Plugin.objects.get(name="healthy-fixture")
    assert (plugin.missing, plugin.state, plugin.error) == (False, "active", None)


def test_disabled_plugin_that_disappears_stays_disabled(plugin_dirs) -> None:
    folder = plugin_dirs.add("healthy-fixture")
    manager.sync()
    manager.disable("healthy-fixture")
    shutil.rmtree(folder)
    manager.sync()
    plugin = Plugin.objects.get(name="healthy-fixture")
    assert (plugin.missing, plugin.state, plugin.enabled) == (True, "disabled", False)


def test_copied_folder_with_a_new_name_appears(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    copy = plugin_dirs.add("healthy-fixture", as_name="healthy-copy")
    edit_manifest(copy, name="healthy-copy", display_name="Healthy Copy")
    report = manager.sync()
    assert report.added == ["healthy-copy"]
    assert {n: p.state for n, p in rows().items()} == {
        "healthy-fixture": "active",
        "healthy-copy": "active",
    }


def test_manifest_changed_on_disk_is_revalidated(plugin_dirs) -> None:
    folder = plugin_dirs.add("healthy-fixture")
    manager.sync()
    edit_manifest(folder, version="1.1.0")
    report = manager.sync()
    assert report.updated == ["healthy-fixture"] and report.activated == ["healthy-fixture"]
    plugin = Plugin.objects.get(name="healthy-fixture")
    assert (plugin.version, plugin.state) == ("1.1.0", "active")
    changed = PluginEvent.objects.filter(
        plugin=plugin, kind=EventKind.DISCOVERY, reason__startswith="changed on disk"
    )
    assert changed.count() == 1 and "version" in changed.get().reason


def test_manifest_broken_then_fixed(plugin_dirs) -> None:
    folder = plugin_dirs.add("healthy-fixture")
    manager.sync()
    good = (folder / "plugin_manifest.json").read_text()
    edit_manifest(folder, version="not a version")
    manager.sync()
    plugin = Plugin.objects.get(name="healthy-fixture")
    assert (plugin.state, plugin.error_code) == ("error", "manifest_invalid")
    assert plugin.error_details[0]["path"] == "$.plugin.version"

    (folder / "plugin_manifest.json").write_text(good)
    manager.sync()
    plugin.refresh_from_db()
    assert (plugin.state, plugin.error) == ("active", None)


def test_new_plugins_wait_for_review_when_configured(plugin_dirs, settings) -> None:
    settings.PLUGINS_ENABLE_NEW = False
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    plugin = Plugin.objects.get(name="healthy-fixture")
    assert (plugin.enabled, plugin.state) == (False, "disabled")
    assert manager.enable("healthy-fixture").state == "active"


def test_runtime_failure_is_not_retried_by_every_sync(plugin_dirs) -> None:
    from stonks_plugins import store
    from stonks_plugins.errors import PluginError, ReasonCode

    plugin_dirs.add("import-error")
    manager.sync()
    # Sync imported it: its state tells the truth at once.
    plugin = Plugin.objects.get(name="import-error")
    assert (plugin.state, plugin.error_code) == ("error", "import_error")
    store.mark_failed(PluginError("import-error", ReasonCode.IMPORT_ERROR, "boom"))
    events = PluginEvent.objects.count()
    assert not manager.sync().changed
    plugin = Plugin.objects.get(name="import-error")
    assert (plugin.state, plugin.error_code) == ("error", "import_error")
    assert PluginEvent.objects.count() == events
    # An operator's enable retries it at once (no backoff), and says how it went.
    plugin = manager.enable("import-error")
    assert (plugin.state, plugin.error_code) == ("error", "import_error")
    assert "stonks_fixture_module_that_does_not_exist" in plugin.error_message
    assert PluginEvent.objects.count() > events


def test_duplicate_loser_is_recorded_as_duplicate(plugin_dirs) -> None:
    plugin_dirs.add("duplicate-a")
    plugin_dirs.add("duplicate-b")
    manager.sync()
    found = rows()
    assert found["dup-broker"].state == "active"
    assert found["dup-broker"].location.endswith("duplicate-a")
    assert found["dup-broker"].warnings  # told about the copy
    loser = found["dup-broker@duplicate-b"]
    assert (loser.state, loser.error_code, loser.declared_name) == (
        "error",
        "duplicate",
        "dup-broker",
    )

"""Refusals through the whole host: a load refused by the plugin's permissions leaves it in
error with ``permission_denied``, a refused call fails with that code, and each is an event
naming the permission that would allow it. ``PLUGINS_ISOLATE_UNTRUSTED`` runs every plugin not
signed by a trusted key in a child (held to its permissions), whatever its manifest says."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.discovery.directories import scan_directory_plugin
from stonks_plugins.errors import ReasonCode
from stonks_plugins.isolated_plugins import database_files, runs_isolated
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginEvent
from stonks_plugins.registry import PluginRegistry, plugin_registry
from stonks_plugins.sandbox import SandboxError
from stonks_plugins.trust import authoring
from tests.conftest import fast_process_plugins

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _reporting(settings) -> None:  # type: ignore[no-untyped-def]
    fast_process_plugins(settings, call_timeout=20.0)
    from stonks_plugins import reporting

    reporting.configure(plugin_registry)


def _stand_in_database(folder: Path) -> Path:
    path = folder / "db.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("create table secrets (value text)")
    conn.close()
    return path


def test_a_load_the_permissions_refuse_ends_in_error_with_an_event(plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    plugin_dirs.add("perm-load-denied")
    database = _stand_in_database(plugin_dirs.path)
    manager.sync()
    with pytest.raises(SandboxError) as info:
        manager.load_plugin("perm-load-denied")
    assert info.value.code is ReasonCode.PERMISSION_DENIED
    row = Plugin.objects.get(name="perm-load-denied")
    assert (row.state, row.error_code) == ("error", "permission_denied")
    assert f'may not read {database}: declare "read:{database}"' in row.error_message
    # The refusal is the newest event: the transition to error, or, where the sync's own
    # bounded load had already put the plugin in error (a timeout on a busy machine), the
    # failure event that changed its reason.
    event = PluginEvent.objects.filter(plugin=row).latest("pk")
    assert event.kind in ("transition", "failure"), event.kind
    assert f'declare "read:{database}"' in event.reason
    assert event.details["code"] == "permission_denied"


def test_a_refused_call_fails_with_permission_denied_and_is_an_event(plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    plugin_dirs.add("perm-probe")
    database = _stand_in_database(plugin_dirs.path)
    manager.sync()
    loaded = manager.load_plugin("perm-probe")
    assert loaded.host is not None and loaded.host.pid != os.getpid()
    service = loaded.create_service(ServiceType.PORTFOLIO)
    with pytest.raises(SandboxError) as info:
        service.probe("read_caught", str(database))
    err = info.value
    assert (err.code, err.operation) == (ReasonCode.PERMISSION_DENIED, "portfolio.probe")
    event = PluginEvent.objects.filter(plugin__name="perm-probe", kind="failure").latest("pk")
    assert event.reason.startswith("portfolio.probe failed: plugin 'perm-probe' may not read")
    assert f'declare "read:{database}"' in event.reason
    assert event.details["code"] == "permission_denied"
    # Other calls go on: the plugin's process was refused one thing, not stopped.
    assert [e.symbol for e in service.get_portfolio()] == ["PRB1"]


def test_database_files_are_the_sqlite_ones_and_their_journals(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    found = database_files(
        {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db},
            "memory": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            "shared": {"ENGINE": "django.db.backends.sqlite3", "NAME": "file:x?mode=memory"},
            "pg": {"ENGINE": "django.db.backends.postgresql", "NAME": "stonks"},
        }
    )
    assert found == (str(db), f"{db}-journal", f"{db}-wal", f"{db}-shm")


# -- PLUGINS_ISOLATE_UNTRUSTED ------------------------------------------------------------------


def test_untrusted_plugins_run_isolated_when_the_setting_says_so(plugin_dirs, settings) -> None:  # type: ignore[no-untyped-def]
    cand = scan_directory_plugin(plugin_dirs.add("healthy-fixture"))
    assert cand.manifest is not None and cand.manifest.isolation == "in_process"
    settings.PLUGINS_ISOLATE_UNTRUSTED = False
    assert not runs_isolated(cand)
    settings.PLUGINS_ISOLATE_UNTRUSTED = True
    assert runs_isolated(cand)
    registry = PluginRegistry()
    registry.register(cand)
    try:
        loaded = registry.load(cand.name)
        assert loaded.host is not None and loaded.host.pid not in (None, os.getpid())
        service = loaded.create_service(ServiceType.PORTFOLIO)
        assert [e.symbol for e in service.get_portfolio()] == ["HLTH"]
    finally:
        registry.clear()


def test_a_plugin_signed_by_a_trusted_key_stays_in_process(
    plugin_dirs,  # type: ignore[no-untyped-def]
    settings,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    root = plugin_dirs.add("healthy-fixture")
    key = authoring.keygen(tmp_path / "signing.key")
    authoring.lock(str(root))
    authoring.sign(str(root), tmp_path / "signing.key")
    settings.PLUGINS_ISOLATE_UNTRUSTED = True
    settings.PLUGINS_TRUSTED_KEYS = [key]
    assert not runs_isolated(scan_directory_plugin(root))
    settings.PLUGINS_TRUSTED_KEYS = []  # the same signature, by a key nobody trusts
    assert runs_isolated(scan_directory_plugin(root))


def test_a_manifest_that_asks_for_a_process_gets_one_whatever_the_setting(
    plugin_dirs,  # type: ignore[no-untyped-def]
    settings,  # type: ignore[no-untyped-def]
) -> None:
    root = plugin_dirs.add("perm-probe")
    settings.PLUGINS_ISOLATE_UNTRUSTED = False
    assert runs_isolated(scan_directory_plugin(root))
    assert json.loads((root / "plugin_manifest.json").read_text())["isolation"] == "process"

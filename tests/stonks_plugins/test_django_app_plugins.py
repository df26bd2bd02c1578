"""Plugins that are Django apps (``x-django-app``): installed at start-up with their own
tables; one that arrives while the process runs is flagged ``restart required`` and not
served until a restart and ``migrate``."""

from __future__ import annotations

import json
import shutil
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from stonks_plugins import django_apps, loader
from stonks_plugins.discovery.directories import scan_directory_plugin
from stonks_plugins.models import Plugin, PluginEvent
from tests.conftest import FIXTURES, manage_in_subprocess

APP = FIXTURES / "app-fixture"


def _copy(dest_dir: Path) -> Path:
    dest = dest_dir / "app-fixture"
    shutil.copytree(APP, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


# -- plugin_apps, as settings calls it -------------------------------------------------------


def test_plugin_apps_lists_declared_apps_without_running_plugin_code(tmp_path: Path) -> None:
    _copy(tmp_path)
    shutil.copytree(FIXTURES / "healthy-fixture", tmp_path / "healthy-fixture")
    before = set(sys.modules)
    try:
        apps = django_apps.plugin_apps([tmp_path, tmp_path / "nowhere"])
        assert apps == ["_stonks_plugin_pkgs.app_fixture.notesapp"]
        new = set(sys.modules) - before
        assert new <= {"_stonks_plugin_pkgs", "_stonks_plugin_pkgs.app_fixture"}
        # loader.mount agrees with the parent mounted at settings time and keeps it.
        cand = scan_directory_plugin(tmp_path / "app-fixture")
        parent = sys.modules["_stonks_plugin_pkgs.app_fixture"]
        assert loader.mount(cand) == "_stonks_plugin_pkgs.app_fixture"
        assert sys.modules["_stonks_plugin_pkgs.app_fixture"] is parent
    finally:
        sys.modules.pop("_stonks_plugin_pkgs.app_fixture", None)


def test_plugin_apps_survives_broken_manifests(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "plugin_manifest.json").write_text("{not json")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "plugin_manifest.json").write_text(json.dumps({"x-django-app": "no-such pkg"}))
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "plugin_manifest.json").write_text(json.dumps({"x-django-app": "absent"}))
    assert django_apps.plugin_apps([tmp_path]) == []


def test_synthetic_names_match_the_loader() -> None:
    assert django_apps.PKG_ROOT == loader.PKG_ROOT
    name = "app-fixture.v2"
    assert f"{django_apps.PKG_ROOT}.{django_apps._slug(name)}" == loader.package_prefix(name)


# -- installed after start-up: restart required ----------------------------------------------


@pytest.mark.django_db
def test_app_plugin_added_after_start_is_flagged_restart_required(plugin_dirs) -> None:
    from stonks_plugins.manager import manager

    plugin_dirs.add("app-fixture")
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    row = Plugin.objects.get(name="app-fixture")
    # Not served: its models are not in this process's app registry.
    assert row.state == "error" and row.error_code == "incompatible_core"
    assert "restart" in row.error_message and "manage.py migrate" in row.error_message
    assert row.summary()["restart_required"] is True
    assert row.summary()["migrate_required"] is False
    event = PluginEvent.objects.filter(plugin=row, details__requires="restart").get()
    assert "restart" in event.reason and "migrate" in event.reason
    assert Plugin.objects.get(name="healthy-fixture").summary()["restart_required"] is False

    # Idempotent: a second sync writes no new event.
    count = PluginEvent.objects.filter(plugin=row).count()
    manager.sync()
    assert PluginEvent.objects.filter(plugin=row).count() == count

    # Disabling and enabling need no restart; the flag stays until one happens.
    manager.disable("app-fixture")
    manager.enable("app-fixture")
    assert Plugin.objects.get(name="app-fixture").requires == "restart"

    buf = StringIO()
    call_command("plugins", "list", stdout=buf)
    text = buf.getvalue()
    line = next(li for li in text.splitlines() if li.startswith("app-fixture"))
    assert "(restart required)" in line


@pytest.mark.django_db
def test_api_lists_restart_required(plugin_dirs, admin_client_logged) -> None:
    from stonks_plugins.manager import manager

    plugin_dirs.add("app-fixture")
    manager.sync()
    data = admin_client_logged.get("/api/v1/plugins/").json()
    rows = data["results"] if isinstance(data, dict) else data
    row = next(r for r in rows if r["name"] == "app-fixture")
    assert row["restart_required"] is True and row["migrate_required"] is False


# -- installed at start-up: migrate, then served from its own table --------------------------


SCRIPT = """
import json, re
from django.contrib.auth import get_user_model
from django.test import Client
from django.apps import apps
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin

Note = apps.get_model("notesapp", "Note")
Note.objects.create(text="one")
Note.objects.create(text="two")
manager.sync()
user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
client = Client()
client.force_login(user)
html = client.get("/").content.decode()
row = Plugin.objects.get(name="app-fixture")
print(json.dumps({"summary": row.summary(), "notes_in_page": "App Fixture Notes: 2" in html,
                  "label": Note._meta.app_label, "table": Note._meta.db_table}, default=str))
"""


@pytest.mark.slow
def test_app_plugin_installed_at_start_gets_its_table_and_is_served(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    _copy(plugins)
    manage = manage_in_subprocess(tmp_path, plugins)

    # Before migrate: the app is loaded but its table is missing -> migrate required.
    base = manage("migrate", "stonks_plugins", "--verbosity", "0")
    assert base.returncode == 0, base.stderr
    assert manage("plugins", "sync").returncode == 0
    listed = manage("plugins", "list")
    line = next(li for li in listed.stdout.splitlines() if li.startswith("app-fixture"))
    assert "(migrate required)" in line, listed.stdout

    plan = manage("showmigrations", "notesapp")
    assert "0001_initial" in plan.stdout, plan.stdout + plan.stderr
    migrate = manage("migrate", "--verbosity", "0")
    assert migrate.returncode == 0, migrate.stderr

    run = manage("shell", "-c", SCRIPT)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["label"] == "notesapp" and out["table"] == "notesapp_note"
    assert out["summary"]["state"] == "active", out
    assert out["summary"]["restart_required"] is False
    assert out["summary"]["migrate_required"] is False
    assert out["notes_in_page"], "the home page shows the count read from the plugin's table"

    listed = manage("plugins", "list", "--json")
    row = {r["name"]: r for r in json.loads(listed.stdout)}["app-fixture"]
    assert row["restart_required"] is False and row["state"] == "active"

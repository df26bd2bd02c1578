"""The entry-point route: a bundled plugin installed as a distribution is discovered through
its entry point, serves the home page from the installed package, and beats a folder copy of
itself (the documented duplicate rule)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BUNDLED, ROOT

pytestmark = pytest.mark.slow

SCRIPT = r"""
import json, os, sys
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "stonks_overwatch.settings"
django.setup()
from django.core.management import call_command
from django.test import Client
from django.contrib.auth.models import User
call_command("migrate", verbosity=0)
call_command("plugins", "sync")
from stonks_plugins.models import Plugin
rows = {p.name: p.summary() for p in Plugin.objects.all()}
user = User.objects.create_user("u", password="pw")
client = Client()
client.force_login(user)
page = client.get("/").content.decode()
tops = ("degiro", "bitvavo", "_stonks_plugin_pkgs")
mods = sorted(m for m in sys.modules if m.split(".")[0] in tops)
print(json.dumps({"rows": rows, "page": page, "modules": mods}))
"""


@pytest.fixture(scope="module")
def installed(bundled_site: Path) -> Path:
    """Both bundled plugins pip-installed (from their own pyproject.toml) into a target dir."""
    assert (bundled_site / "degiro" / "plugin_manifest.json").is_file()
    return bundled_site


def _run(site: Path, tmp_path: Path, plugin_dirs: str) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PLUGIN_DIRS": plugin_dirs,
        "REDIS_URL": "",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_installed_plugins_found_through_entry_points(installed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    result = _run(installed, tmp_path, str(empty))
    rows = result["rows"]
    for name in ("degiro-broker", "bitvavo-broker"):
        assert rows[name]["source"] == "entry_point"
        assert rows[name]["state"] == "active", rows[name]
        assert rows[name]["location"].startswith("stonks-")
    # Served from the installed packages under their real names, not a plugin folder.
    assert 'data-broker="degiro"' in result["page"]
    assert 'data-broker="bitvavo"' in result["page"]
    assert "degiro.services" in result["modules"]
    assert not any(m.startswith("_stonks_plugin_pkgs.") for m in result["modules"])


def test_installed_distribution_beats_folder_copy(installed: Path, tmp_path: Path) -> None:
    result = _run(installed, tmp_path, str(BUNDLED))
    rows = result["rows"]
    assert rows["degiro-broker"]["source"] == "entry_point"
    assert rows["degiro-broker"]["state"] == "active"
    loser = rows["degiro-broker@degiro-broker"]
    assert loser["source"] == "directory"
    assert loser["state"] == "error"
    assert loser["error"]["code"] == "duplicate"
    assert "takes precedence" in loser["error"]["message"]
    # The page shows the degiro positions once, not twice.
    assert result["page"].count("EXAMPLE TECH CORP") == 1

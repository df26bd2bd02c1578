"""The home page as a user sees it: every active broker's positions, plugin or legacy; a
disabled broker's data leaves, enabling brings it back; one failing plugin does not take the
page down."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.registry import plugin_registry

pytestmark = pytest.mark.django_db

ROW = re.compile(
    r'<tr data-broker="(?P<broker>[^"]*)"><td>(?P<name>[^<]*)</td><td>(?P<symbol>[^<]*)</td>'
)
FAILURE = re.compile(r'<li data-broker="(?P<broker>[^"]*)"><strong>[^<]*</strong>: (?P<msg>[^<]*)')


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def page(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def symbols(html: str) -> dict[str, set[str]]:
    """Broker name -> symbols of its rows in the portfolio table."""
    found: dict[str, set[str]] = {}
    for m in ROW.finditer(html):
        found.setdefault(m["broker"], set()).add(m["symbol"])
    return found


def failures(html: str) -> dict[str, str]:
    return {m["broker"]: m["msg"] for m in FAILURE.finditer(html)}


def rename(folder: Path, name: str) -> None:
    path = folder / "plugin_manifest.json"
    data = json.loads(path.read_text())
    data["plugin"]["name"] = name
    path.write_text(json.dumps(data))


def test_home_needs_login(client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_legacy_broker_is_always_there(plugin_dirs, admin_client_logged) -> None:
    html = page(admin_client_logged)
    assert symbols(html) == {"ibkr": {"EXSC", "SMTB"}}
    assert failures(html) == {}


def test_plugin_data_appears_after_sync(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("healthy-fixture")
    assert "healthy-fixture" not in symbols(page(admin_client_logged))  # not synced yet
    manager.sync()
    html = page(admin_client_logged)
    assert symbols(html) == {"ibkr": {"EXSC", "SMTB"}, "healthy-fixture": {"HLTH"}}
    row = html[html.index('<tr data-broker="healthy-fixture">') :]
    row = row[: row.index("</tr>")]
    assert "Healthy Fixture Holding" in row and ">10<" in row and ">125.00<" in row
    assert "healthy-fixture" in html.split("across", 1)[1].split("</p>", 1)[0]


def test_plugin_code_is_imported_by_sync_not_by_discovery(plugin_dirs, admin_client_logged) -> None:
    """Discovery reads manifests only; sync starts what it found (so 'active' means the code
    imported and initialised), and the page then serves that same load."""
    plugin_dirs.add("healthy-fixture")
    prefix = "_stonks_plugin_pkgs.healthy_fixture"
    manager.discover_plugins()
    assert not [m for m in sys.modules if m.startswith(prefix)]
    manager.sync()
    assert f"{prefix}.healthy.services" in sys.modules
    loaded = plugin_registry.peek("healthy-fixture")
    assert loaded is not None
    page(admin_client_logged)
    assert plugin_registry.peek("healthy-fixture") is loaded


def test_disable_removes_the_data_enable_brings_it_back(
    plugin_dirs, admin_client_logged, django_capture_on_commit_callbacks
) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    assert "healthy-fixture" in symbols(page(admin_client_logged))

    with django_capture_on_commit_callbacks(execute=True):
        manager.disable("healthy-fixture", actor="admin")
    html = page(admin_client_logged)
    assert "healthy-fixture" not in symbols(html)
    assert "ibkr" in symbols(html)
    assert failures(html) == {}

    with django_capture_on_commit_callbacks(execute=True):
        manager.enable("healthy-fixture", actor="admin")
    assert symbols(page(admin_client_logged))["healthy-fixture"] == {"HLTH"}


def test_copied_folder_under_a_new_name_shows_up_with_no_core_change(
    plugin_dirs, admin_client_logged
) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    copy = plugin_dirs.add("healthy-fixture", as_name="healthy-copy")
    rename(copy, "healthy-copy")
    assert "healthy-copy" not in symbols(page(admin_client_logged))
    manager.sync()
    found = symbols(page(admin_client_logged))
    assert found["healthy-copy"] == {"HLTH"} and found["healthy-fixture"] == {"HLTH"}


def test_two_plugins_shipping_the_same_package_both_serve(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("collide-one")
    plugin_dirs.add("collide-two")
    manager.sync()
    found = symbols(page(admin_client_logged))
    assert found["collide-one"] == {"COL1"}
    assert found["collide-two"] == {"COL2"}
    assert "broker" not in sys.modules


def test_plugin_failing_to_import_is_in_error_after_sync_and_off_the_page(
    plugin_dirs, admin_client_logged
) -> None:
    plugin_dirs.add("healthy-fixture")
    plugin_dirs.add("import-error")
    manager.sync()
    # Sync imported it: the state tells the truth before any user's request.
    plugin = Plugin.objects.get(name="import-error")
    assert (plugin.state, plugin.error_code) == ("error", "import_error")
    assert "stonks_fixture_module_that_does_not_exist" in plugin.error_message

    # Out of service: the page shows the healthy brokers and no warning.
    html = page(admin_client_logged)
    assert symbols(html) == {"ibkr": {"EXSC", "SMTB"}, "healthy-fixture": {"HLTH"}}
    assert failures(html) == {}


def test_safe_page_with_no_plugins_dir(settings, tmp_path, admin_client_logged) -> None:
    settings.PLUGIN_DIRS = [tmp_path / "not-there"]
    manager.sync()
    assert symbols(page(admin_client_logged)) == {"ibkr": {"EXSC", "SMTB"}}

"""Hot code reload: an edited file of a directory plugin is live after ``plugins reload``,
without restarting, and a broken edit is reported and leaves the site serving."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginEvent

pytestmark = pytest.mark.django_db


def _edit_position(folder, symbol: str) -> None:  # type: ignore[no-untyped-def]
    data = folder / "healthy" / "data.py"
    data.write_text(f'POSITION = ("Healthy Fixture Holding", "{symbol}", 10.0, 12.5)\n')


def test_edited_file_is_live_after_reload(plugin_dirs, admin_client_logged) -> None:
    folder = plugin_dirs.add("healthy-fixture")
    manager.sync()
    assert ">HLTH<" in admin_client_logged.get("/").content.decode()

    _edit_position(folder, "EDIT")
    # Without a reload the loaded code keeps serving.
    assert ">HLTH<" in admin_client_logged.get("/").content.decode()

    out = io.StringIO()
    call_command("plugins", "reload", "healthy-fixture", stdout=out)
    assert "healthy-fixture: active" in out.getvalue()
    page = admin_client_logged.get("/").content.decode()
    assert ">EDIT<" in page and ">HLTH<" not in page
    row = Plugin.objects.get(name="healthy-fixture")
    assert row.revision == 1
    assert PluginEvent.objects.filter(
        plugin=row, kind="action", reason__startswith="reload", actor="cli"
    ).exists()


def test_broken_edit_is_reported_and_site_keeps_serving(plugin_dirs, admin_client_logged) -> None:
    folder = plugin_dirs.add("healthy-fixture")
    plugin_dirs.add("collide-one")
    manager.sync()
    admin_client_logged.get("/")
    (folder / "healthy" / "data.py").write_text("POSITION = (  # a syntax error\n")

    with pytest.raises(SystemExit) as exit_info:
        call_command("plugins", "reload", "healthy-fixture", stdout=io.StringIO())
    assert exit_info.value.code == 1
    row = Plugin.objects.get(name="healthy-fixture")
    assert (row.state, row.error_code) == ("error", "import_error")
    assert "SyntaxError" in row.error_message
    page = admin_client_logged.get("/").content.decode()
    assert admin_client_logged.get("/").status_code == 200
    assert ">COL1<" in page and ">HLTH<" not in page

    _edit_position(folder, "FIXD")
    call_command("plugins", "reload", "healthy-fixture", stdout=io.StringIO())
    assert Plugin.objects.get(name="healthy-fixture").state == "active"
    assert ">FIXD<" in admin_client_logged.get("/").content.decode()


def test_reload_of_disabled_plugin_is_refused(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    manager.disable("healthy-fixture")
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("plugins", "reload", "healthy-fixture", stdout=io.StringIO(), stderr=err)
    assert exit_info.value.code == 1
    assert "cannot go from 'disabled'" in err.getvalue()

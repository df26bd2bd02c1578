"""Locked plugins: ``plugins lock`` records every file's SHA-256 in the manifest, and a
locked plugin whose files changed is ``integrity_failed`` before any of its code runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from stonks_plugins import loader
from stonks_plugins.discovery import scan_directory_plugin
from stonks_plugins.errors import PluginError, ReasonCode
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.sandbox.process import ProcessCrashed, ProcessHost
from stonks_plugins.trust import integrity
from tests.cli import cli, cli_json

from .conftest import MakePlugin, Markers, edit_one_byte, served

pytestmark = pytest.mark.django_db

FILES = {"README.txt", "__init__.py", "trustpkg/__init__.py", "trustpkg/data.py"}
FILES |= {"trustpkg/services.py"}


def lock(name: str) -> None:
    code, out, err = cli("lock", name)
    assert code == 0, out + err


# -- the lock ---------------------------------------------------------------------------------


def test_lock_records_every_file_and_keeps_the_rest_of_the_manifest(
    make_plugin: MakePlugin,
) -> None:
    root = make_plugin("locky")
    cache = root / "trustpkg" / "__pycache__"
    cache.mkdir()
    (cache / "services.cpython-311.pyc").write_bytes(b"\0" * 16)
    before = json.loads((root / "plugin_manifest.json").read_text())

    code, out, _ = cli("lock", "locky")
    assert code == 0
    assert f"locked locky: {len(FILES)} files recorded in" in out
    assert "plugins sync" in out
    text = (root / "plugin_manifest.json").read_text()
    after = json.loads(text)
    assert list(after) == [*before, "integrity"]  # the rest kept, in its order
    assert {k: v for k, v in after.items() if k != "integrity"} == before
    assert text.startswith('{\n  "plugin": {\n    "version"')  # indent 2
    assert set(after["integrity"]) == FILES  # no manifest, no __pycache__
    assert after["integrity"]["trustpkg/data.py"] == integrity.sha256_file(
        root / "trustpkg" / "data.py"
    )

    code, out, _ = cli("lock", str(root))  # by path too; nothing to change
    assert code == 0 and "the lock is current" in out
    code, data = cli_json("lock", "locky")
    assert code == 0
    assert data["files"] == len(FILES) and data["changed"] is False


def test_lock_of_an_unknown_plugin_fails(plugin_dirs) -> None:
    code, _, err = cli("lock", "no-such-plugin")
    assert code == 1 and "no plugin named 'no-such-plugin'" in err
    with pytest.raises(CommandError, match="required: name"):  # exit 2 from manage.py
        cli("lock")


def test_locked_intact_plugin_loads_and_serves(
    make_plugin: MakePlugin, markers: Markers, admin_client_logged
) -> None:
    make_plugin("intact", "INTC")
    lock("intact")
    cli("sync")
    row = Plugin.objects.get(name="intact")
    assert (row.state, row.error) == ("active", None)
    assert row.trust["locked"] is True and row.trust["status"] == "unsigned"
    assert served(admin_client_logged)["intact"] == {"INTC"}
    assert markers.ran("intact") == ["folder", "package", "services"]


# -- a locked plugin whose files changed ------------------------------------------------------


def _refused(name: str, *fragments: str) -> Plugin:
    row = Plugin.objects.get(name=name)
    assert (row.state, row.error_code) == ("error", "integrity_failed"), row.error
    for fragment in fragments:
        assert fragment in row.error_message
    assert row.trust["status"] == "tampered"
    return row


def test_one_edited_byte_fails_sync_and_enable_and_no_code_runs(
    make_plugin: MakePlugin, markers: Markers, admin_client_logged
) -> None:
    root = make_plugin("edited", "EDIT")
    lock("edited")
    edit_one_byte(root / "trustpkg" / "services.py")

    code, out, _ = cli("sync")
    assert code == 0 and "failed: edited" in out
    _refused("edited", "changed: trustpkg/services.py", "plugins lock")
    code, out, _ = cli("enable", "edited")
    assert code == 1 and "integrity_failed" in out and "trustpkg/services.py" in out
    _refused("edited")
    assert "edited" not in served(admin_client_logged)
    assert markers.ran("edited") == []
    code, rows = cli_json("list")
    (listed,) = rows
    assert listed["error"]["code"] == "integrity_failed"
    assert listed["trust"]["status"] == "tampered"
    assert "trustpkg/services.py" in listed["trust"]["problem"]


def test_an_extra_code_file_fails_a_data_file_does_not(
    make_plugin: MakePlugin, markers: Markers
) -> None:
    root = make_plugin("extra")
    lock("extra")
    (root / "NOTES.md").write_text("an operator's note: not code\n")
    cli("sync")
    assert Plugin.objects.get(name="extra").state == "active"

    (root / "trustpkg" / "evil.py").write_text("raise SystemExit('evil')\n")
    markers.clear()
    cli("reload", "extra")
    _refused("extra", "extra code: trustpkg/evil.py")
    assert "NOTES.md" not in Plugin.objects.get(name="extra").error_message
    assert markers.ran("extra") == []


def test_a_missing_file_fails(make_plugin: MakePlugin, markers: Markers) -> None:
    root = make_plugin("missing")
    lock("missing")
    (root / "README.txt").unlink()  # a listed file of any kind
    cli("sync")
    _refused("missing", "missing: README.txt")
    assert markers.ran("missing") == []


def test_restoring_the_files_lets_the_plugin_load_again(make_plugin: MakePlugin) -> None:
    root = make_plugin("restored")
    lock("restored")
    data = root / "trustpkg" / "data.py"
    original = data.read_bytes()
    data.write_bytes(original.replace(b"2.0", b"9.0"))
    cli("sync")
    _refused("restored", "changed: trustpkg/data.py")
    data.write_bytes(original)
    cli("sync")
    row = Plugin.objects.get(name="restored")
    assert (row.state, row.error, row.trust["status"]) == ("active", None, "unsigned")


# -- the loader's gate: in process and in a process-isolated child ------------------------------


def test_loader_verifies_before_the_folder_init_runs(
    make_plugin: MakePlugin, markers: Markers
) -> None:
    root = make_plugin("gated")
    lock("gated")
    cand = scan_directory_plugin(root)
    edit_one_byte(root / "trustpkg" / "services.py")
    with pytest.raises(PluginError) as info:
        loader.resolve(cand, "trustpkg.services.PortfolioService")
    assert info.value.code is ReasonCode.INTEGRITY_FAILED
    assert "changed: trustpkg/services.py" in info.value.message
    assert markers.ran("gated") == []


def test_a_process_isolated_child_verifies_too(make_plugin: MakePlugin, markers: Markers) -> None:
    root = make_plugin("isolated", isolation="process")
    lock("isolated")
    (root / "trustpkg" / "extra.py").write_text("x = 1\n")
    host = ProcessHost(scan_directory_plugin(root), start_timeout=30.0)
    try:
        with pytest.raises(ProcessCrashed) as info:
            host.start()
    finally:
        host.close()
    assert info.value.code is ReasonCode.INTEGRITY_FAILED
    assert "extra code: trustpkg/extra.py" in info.value.message
    assert markers.ran("isolated") == []


# -- the cache --------------------------------------------------------------------------------


def test_a_cached_verdict_never_hides_a_change(make_plugin: MakePlugin) -> None:
    root = make_plugin("cached")
    lock("cached")
    lock_ = json.loads((root / "plugin_manifest.json").read_text())["integrity"]
    assert integrity.check_folder(root, lock_).ok
    assert integrity.check_folder(root, lock_).ok  # answered from the cache or not: the same
    services = root / "trustpkg" / "services.py"
    st = services.stat()
    edit_one_byte(services)
    os.utime(services, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    report = integrity.check_folder(root, lock_)
    assert report.changed == ("trustpkg/services.py",)
    shutil.rmtree(root / "trustpkg")
    report = integrity.check_folder(root, lock_)
    assert set(report.missing) == {
        "trustpkg/__init__.py",
        "trustpkg/data.py",
        "trustpkg/services.py",
    }


def test_manager_facade_sees_the_same_verdict(make_plugin: MakePlugin) -> None:
    root = make_plugin("facade")
    lock("facade")
    (root / "trustpkg" / "data.py").write_text("POSITION = None\n")
    manager.sync()
    _refused("facade", "changed: trustpkg/data.py")


def test_a_link_to_a_folder_cannot_be_locked_nor_slipped_in(
    make_plugin: MakePlugin, tmp_path: Path
) -> None:
    root = make_plugin("linked")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "code.py").write_text("x = 1\n")
    (root / "vendor").symlink_to(outside, target_is_directory=True)
    code, _, err = cli("lock", "linked")
    assert code == 1 and "vendor/ links to a folder" in err
    (root / "vendor").unlink()
    lock("linked")
    (root / "vendor").symlink_to(outside, target_is_directory=True)
    cli("sync")
    _refused("linked", "extra code: vendor/ (a link to a folder)")

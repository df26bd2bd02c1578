"""``manage.py plugins ...``: output a person can act on, ``--json`` a script can parse, and
exit status 0 (success), 1 (the thing failed), 2 (bad usage)."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from stonks_plugins.models import Plugin, PluginEvent
from tests.cli import cli, cli_json
from tests.conftest import CORPUS, FIXTURES, manage_in_subprocess

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(plugin_dirs):  # type: ignore[no-untyped-def]
    for name in CORPUS:
        plugin_dirs.add(name)
    return plugin_dirs


# -- sync, list, show --------------------------------------------------------------------------


def test_sync_reports_what_changed_then_nothing(corpus) -> None:
    code, out, _ = cli("sync")
    assert code == 0
    assert "added:" in out and "healthy-fixture" in out
    assert "failed:" in out and "incompatible-api" in out
    assert "import-error" in out.split("failed:", 1)[1]  # sync imported it: it cannot be
    assert "11 plugins known, 7 in error" in out
    code, out, _ = cli("sync")
    assert code == 0 and out.strip().endswith("nothing changed")


def test_sync_json(corpus) -> None:
    code, data = cli_json("sync")
    assert code == 0
    assert set(data) >= {"added", "updated", "missing", "activated", "failed", "unchanged"}
    assert "dup-broker@duplicate-b" in data["failed"]
    code, data = cli_json("sync")
    assert data["added"] == data["failed"] == data["activated"] == []


def test_list_json_follows_the_contract(corpus) -> None:
    cli("sync")
    code, rows = cli_json("list")
    assert code == 0 and isinstance(rows, list)
    by_name = {r["name"]: r for r in rows}
    assert len(by_name) == 11
    for row in rows:
        assert {"name", "version", "type", "source", "state", "enabled", "error"} <= set(row)
        assert row["source"] == "directory"
        assert row["error"] is None or set(row["error"]) == {"code", "message"}
    assert (by_name["healthy-fixture"]["state"], by_name["healthy-fixture"]["error"]) == (
        "active",
        None,
    )
    assert by_name["healthy-fixture"]["version"] == "1.0.0"
    assert by_name["healthy-fixture"]["type"] == "broker"
    assert by_name["healthy-fixture"]["enabled"] is True
    expected = {
        "unreadable-json": "manifest_unreadable",
        "schema-violation": "manifest_invalid",
        "incompatible-api": "incompatible_api",
        "incompatible-core": "incompatible_core",
        "missing-dependency": "missing_dependency",
        "dup-broker@duplicate-b": "duplicate",
    }
    for name, code_ in expected.items():
        assert by_name[name]["state"] == "error"
        assert by_name[name]["error"]["code"] == code_
        assert by_name[name]["error"]["message"]


def test_list_json_when_nothing_is_known(plugin_dirs) -> None:
    assert cli_json("list") == (0, [])
    code, out, _ = cli("list")
    assert code == 0 and "plugins sync" in out


def test_list_filters_and_text_table(corpus) -> None:
    cli("sync")
    _, rows = cli_json("list", "--state", "error")
    assert {r["state"] for r in rows} == {"error"} and len(rows) == 7
    _, rows = cli_json("list", "--type", "broker")
    assert "unreadable-json" not in {r["name"] for r in rows}  # type unknown: unreadable
    code, out, _ = cli("list")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "VERSION", "TYPE", "SOURCE", "STATE", "ERROR"]
    line = next(ln for ln in out.splitlines() if ln.startswith("incompatible-core "))
    assert "error" in line and "incompatible_core: needs stonks-overwatch-core >=3.0.0" in line


def test_show_names_every_bad_field(corpus) -> None:
    cli("sync")
    code, out, _ = cli("show", "schema-violation")
    assert code == 0
    assert "manifest_invalid" in out
    for path in ("$.plugin.version", "$.plugin.type", "$.colour"):
        assert path in out
    assert "recent events:" in out
    code, data = cli_json("show", "schema-violation")
    assert code == 0
    assert {d["path"] for d in data["error_details"]} == {
        "$.plugin.version",
        "$.plugin.type",
        "$.colour",
    }
    assert data["manifest"]["colour"] == "red" and data["events"]


def test_show_unknown_plugin_exits_1(plugin_dirs) -> None:
    code, out, err = cli("show", "nope")
    assert code == 1 and "no plugin named 'nope'" in err and "plugins sync" in err
    code, out, _ = cli("show", "nope", "--json")
    assert code == 1 and "no plugin named 'nope'" in json.loads(out)["error"]


# -- enable, disable, events -------------------------------------------------------------------


def test_disable_says_disabled_and_not_some_manifest_warning(corpus) -> None:
    # The winner of a duplicate name carries a warning about the copy; turning it off is
    # the operator's own doing, and the output must not offer that warning as the reason.
    cli("sync")
    _, shown = cli_json("show", "dup-broker")
    assert shown["warnings"]
    code, out, _ = cli("disable", "dup-broker")
    assert (code, out.strip()) == (0, "dup-broker: disabled")


def test_disable_and_enable(corpus) -> None:
    cli("sync")
    code, out, _ = cli("disable", "healthy-fixture")
    assert (code, out.strip()) == (0, "healthy-fixture: disabled")
    _, rows = cli_json("list")
    row = next(r for r in rows if r["name"] == "healthy-fixture")
    assert (row["state"], row["enabled"]) == ("disabled", False)
    code, data = cli_json("enable", "healthy-fixture")
    assert code == 0 and (data["state"], data["enabled"]) == ("active", True)
    actors = set(
        PluginEvent.objects.filter(plugin__name="healthy-fixture", kind="action").values_list(
            "actor", flat=True
        )
    )
    assert actors == {"cli"}


def test_enable_a_broken_plugin_exits_1_with_its_reason(corpus) -> None:
    cli("sync")
    code, out, _ = cli("enable", "incompatible-api")
    assert code == 1
    assert "incompatible_api" in out and ">=9.0.0" in out
    assert Plugin.objects.get(name="incompatible-api").state == "error"


def test_enable_unknown_exits_1(plugin_dirs) -> None:
    assert cli("enable", "nope")[0] == 1
    assert cli("disable", "nope")[0] == 1


def test_events(corpus) -> None:
    cli("sync")
    cli("disable", "healthy-fixture")
    code, rows = cli_json("events", "healthy-fixture")
    assert code == 0
    assert rows[0]["to"] == "disabled" and rows[0]["actor"] == "cli"
    assert {r["plugin"] for r in rows} == {"healthy-fixture"}
    code, out, _ = cli("events", "--limit", "3")
    assert code == 0 and len(out.strip().splitlines()) == 3


# -- validate ----------------------------------------------------------------------------------


def test_validate_valid_folder_exits_0(tmp_path: Path) -> None:
    folder = FIXTURES / "healthy-fixture"
    code, out, _ = cli("validate", str(folder))
    assert code == 0 and out.startswith("ok: healthy-fixture 1.0.0")
    code, data = cli_json("validate", str(folder / "plugin_manifest.json"))
    assert code == 0 and data["valid"] is True and data["errors"] == []


def test_validate_invalid_folder_exits_1_naming_each_json_path() -> None:
    code, out, _ = cli("validate", str(FIXTURES / "schema-violation"))
    assert code == 1
    assert "invalid: schema-violation" in out and "[manifest_invalid]" in out
    assert "  $.plugin.version: 'one.two'" in out
    assert "  $.plugin.type: 'banana' is not one of" in out
    assert "  $.colour: unknown key" in out
    code, data = cli_json("validate", str(FIXTURES / "schema-violation"))
    assert code == 1
    assert data["valid"] is False and data["code"] == "manifest_invalid"
    assert {e["path"] for e in data["errors"]} == {"$.plugin.version", "$.plugin.type", "$.colour"}


@pytest.mark.parametrize(
    ("folder", "code", "fragments"),
    [
        ("unreadable-json", "manifest_unreadable", ["line 6, column 3"]),
        ("incompatible-api", "incompatible_api", [">=9.0.0", "1.0.0"]),
        ("incompatible-core", "incompatible_core", [">=3.0.0", "2.0.0"]),
        ("missing-dependency", "missing_dependency", ["no-such-distribution-xyz", ">=1.0"]),
    ],
)
def test_validate_broken_folder_exits_1_with_code(
    folder: str, code: str, fragments: list[str]
) -> None:
    status, data = cli_json("validate", str(FIXTURES / folder))
    assert status == 1 and data["code"] == code and not data["valid"]
    text = " ".join(e["message"] for e in data["errors"])
    for fragment in fragments:
        assert fragment in text
    assert all(e["path"].startswith("$") for e in data["errors"])


def test_validate_manifest_file_under_another_name(tmp_path: Path) -> None:
    bad = tmp_path / "candidate.json"
    shutil.copy(FIXTURES / "schema-violation" / "plugin_manifest.json", bad)
    status, data = cli_json("validate", str(bad))
    assert status == 1 and data["code"] == "manifest_invalid"
    assert "$.colour" in {e["path"] for e in data["errors"]}
    good = tmp_path / "good.json"
    shutil.copy(FIXTURES / "healthy-fixture" / "plugin_manifest.json", good)
    assert cli("validate", str(good))[0] == 0


def test_validate_by_name_and_all(corpus) -> None:
    assert cli("validate", "healthy-fixture")[0] == 0
    code, data = cli_json("validate", "schema-violation")
    assert code == 1 and data["code"] == "manifest_invalid"
    assert cli("validate", "no-such-plugin")[0] == 1
    code, results = cli_json("validate")
    assert code == 1 and len(results) == 11
    assert {r["name"] for r in results if r["valid"]} == {
        "healthy-fixture",
        "collide-one",
        "collide-two",
        "dup-broker",
        "import-error",
    }


def test_validate_all_valid_exits_0(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    assert cli("validate")[0] == 0


def test_validate_missing_path_is_bad_usage() -> None:
    with pytest.raises(CommandError) as err:
        cli("validate", "no/such/folder")
    assert err.value.returncode == 2
    assert "no such file or folder" in str(err.value)


def test_unknown_subcommand_is_refused() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        cli("explode")


# -- the real thing: manage.py in a subprocess ------------------------------------------------


@pytest.mark.slow
def test_real_exit_codes_in_a_subprocess(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    for name in CORPUS:
        shutil.copytree(FIXTURES / name, plugins / name)
    manage = manage_in_subprocess(tmp_path, plugins)

    migrate = manage("migrate", "--verbosity", "0")
    assert migrate.returncode == 0, migrate.stderr
    # The whole broken corpus is in PLUGIN_DIRS: the project still starts and answers.
    done = manage("plugins", "sync")
    assert done.returncode == 0, done.stderr
    listed = manage("plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["healthy-fixture"]["state"] == "active"
    assert rows["schema-violation"]["error"]["code"] == "manifest_invalid"
    assert rows["unreadable-json"]["error"]["code"] == "manifest_unreadable"

    invalid = manage("plugins", "validate", str(plugins / "schema-violation"))
    assert invalid.returncode == 1
    assert "$.plugin.version" in invalid.stdout and "$.colour" in invalid.stdout
    assert manage("plugins", "validate", str(plugins / "healthy-fixture")).returncode == 0

    bad_usage = manage("plugins", "explode")
    assert bad_usage.returncode == 2 and "invalid choice" in bad_usage.stderr
    assert manage("plugins").returncode == 2  # no subcommand
    missing = manage("plugins", "validate", str(tmp_path / "nowhere" / "x.json"))
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    assert manage("plugins", "show", "nope").returncode == 1


@pytest.mark.django_db
def test_sync_shows_progress_on_request(plugin_dirs) -> None:
    for name in ("healthy-fixture", "collide-one", "collide-two"):
        plugin_dirs.add(name)
    out, err = StringIO(), StringIO()
    call_command("plugins", "sync", "--progress", stdout=out, stderr=err)
    assert "syncing 3/3" in err.getvalue()
    out, err = StringIO(), StringIO()
    call_command("plugins", "sync", "--json", stdout=out, stderr=err)
    assert err.getvalue() == ""  # machine-readable runs stay quiet

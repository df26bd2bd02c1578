"""The broken-plugin corpus (tests/fixtures/plugins, see its README): for each case the
expected reason code and a message a person can act on; with the whole corpus installed at
once, the site still starts and serves, and no incompatible plugin's code is ever imported."""

from __future__ import annotations

import json
import os
import re
import sys
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from stonks_plugins.loader import package_prefix
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from tests.conftest import CORPUS, FIXTURES

pytestmark = pytest.mark.django_db


# folder -> (plugin name, reason code, fragments the message must contain)
BROKEN: dict[str, tuple[str, str, list[str]]] = {
    "unreadable-json": (
        "unreadable-json",
        "manifest_unreadable",
        ["plugin_manifest.json", "invalid JSON at line 6, column 3"],
    ),
    "schema-violation": (
        "schema-violation",
        "manifest_invalid",
        ["$.plugin.version", "$.plugin.type", "$.colour"],
    ),
    "incompatible-api": ("incompatible-api", "incompatible_api", [">=9.0.0", "serves API 1.0.0"]),
    "incompatible-core": (
        "incompatible-core",
        "incompatible_core",
        ["stonks-overwatch-core >=3.0.0", "this core is 2.0.0"],
    ),
    "missing-dependency": (
        "missing-dependency",
        "missing_dependency",
        ["no-such-distribution-xyz", ">=1.0", "not installed"],
    ),
    "duplicate-b": (
        "dup-broker@duplicate-b",
        "duplicate",
        ["duplicate-a", "duplicate-b", "takes precedence"],
    ),
}
# Broken only once their code runs: sync imports it, so it is in error right after sync.
ON_FIRST_USE: dict[str, tuple[str, str, list[str]]] = {
    "import-error": (
        "import-error",
        "import_error",
        ["ModuleNotFoundError", "stonks_fixture_module_that_does_not_exist"],
    ),
}
# plugin name -> the one symbol it serves on the home page
SERVING = {
    "healthy-fixture": "HLTH",
    "collide-one": "COL1",
    "collide-two": "COL2",
    "dup-broker": "DUPA",
}
INCOMPATIBLE = ["incompatible-api", "incompatible-core", "missing-dependency"]
ROW = re.compile(r'<tr data-broker="([^"]*)"><td>[^<]*</td><td>([^<]*)</td>')


def sentinel(folder: str) -> str:
    return "STONKS_FIXTURE_SENTINEL_" + folder.upper().replace("-", "_")


@pytest.fixture(autouse=True)
def _no_sentinel(monkeypatch: pytest.MonkeyPatch, settings) -> None:  # type: ignore[no-untyped-def]
    for folder in INCOMPATIBLE:
        monkeypatch.delenv(sentinel(folder), raising=False)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def corpus(plugin_dirs):  # type: ignore[no-untyped-def]
    for name in CORPUS:
        plugin_dirs.add(name)
    return plugin_dirs


def served(html: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for broker, symbol in ROW.findall(html):
        found.setdefault(broker, set()).add(symbol)
    return found


def list_json() -> dict[str, dict[str, object]]:
    out = StringIO()
    call_command("plugins", "list", "--json", stdout=out)
    return {r["name"]: r for r in json.loads(out.getvalue())}


def test_corpus_is_what_the_readme_describes() -> None:
    assert set(CORPUS) == {
        *BROKEN,
        *ON_FIRST_USE,
        "duplicate-a",
        "collide-one",
        "collide-two",
        "healthy-fixture",
    }
    readme = (FIXTURES / "README.md").read_text()
    for folder in sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()):
        assert f"`{folder}`" in readme


@pytest.mark.parametrize("folder", sorted(BROKEN))
def test_broken_plugin_is_listed_in_error_with_its_reason(corpus, folder: str) -> None:
    name, code, fragments = BROKEN[folder]
    manager.sync()
    plugin = Plugin.objects.get(name=name)
    assert (plugin.state, plugin.error_code) == ("error", code)
    for fragment in fragments:
        assert fragment in plugin.error_message, plugin.error_message
    row = list_json()[name]
    assert row["state"] == "error"
    assert row["error"] == {"code": code, "message": plugin.error_message}


def test_schema_violation_details_name_each_json_path(corpus) -> None:
    manager.sync()
    details = Plugin.objects.get(name="schema-violation").error_details
    assert {d["path"] for d in details} == {"$.plugin.version", "$.plugin.type", "$.colour"}
    assert all(d["message"] for d in details)


def test_site_still_starts_and_serves_with_the_whole_corpus(corpus, admin_client_logged) -> None:
    # Start-up with every broken plugin in PLUGIN_DIRS: ready() neither raises nor writes.
    apps.get_app_config("stonks_plugins").ready()
    assert not Plugin.objects.exists()
    assert admin_client_logged.get("/healthz").json()["status"] == "ok"

    report = manager.sync()
    assert len(report.added) == len(CORPUS)
    # The plugin whose import fails is in error as soon as sync returns, before any page.
    for name, code, fragments in ON_FIRST_USE.values():
        plugin = Plugin.objects.get(name=name)
        assert (plugin.state, plugin.error_code) == ("error", code)
        for fragment in fragments:
            assert fragment in plugin.error_message
        assert name in report.failed
    response = admin_client_logged.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    shown = served(html)
    assert shown.pop("ibkr") == {"EXSC", "SMTB"}
    assert shown == {name: {symbol} for name, symbol in SERVING.items()}
    assert "DUPB" not in html  # the duplicate that lost does not serve

    # Out of service since sync: the page needs no warning about it.
    assert 'data-broker="import-error"' not in html

    # Every listed case ends where the table says; the healthy ones are active.
    rows = list_json()
    for name, code, _ in [*BROKEN.values(), *ON_FIRST_USE.values()]:
        assert (rows[name]["state"], rows[name]["error"]["code"]) == ("error", code)  # type: ignore[index]
    for name in SERVING:
        assert (rows[name]["state"], rows[name]["error"]) == ("active", None)

    # And it keeps serving.
    again = admin_client_logged.get("/")
    assert again.status_code == 200
    assert {n: s for n, s in served(again.content.decode()).items() if n != "ibkr"} == {
        name: {symbol} for name, symbol in SERVING.items()
    }


def test_incompatible_plugins_code_is_never_imported(corpus, admin_client_logged) -> None:
    manager.sync()
    admin_client_logged.get("/")
    manager.sync()
    for folder in INCOMPATIBLE:
        manager.enable(folder)  # an operator insisting does not import it either
        assert Plugin.objects.get(name=folder).state == "error"
        manager.validate_plugin(folder)
        with pytest.raises(SystemExit) as exit_:
            call_command("plugins", "validate", str(corpus.path / folder), stdout=StringIO())
        assert exit_.value.code == 1
    for folder in INCOMPATIBLE:
        assert sentinel(folder) not in os.environ
        prefix = package_prefix(folder)
        assert not [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]
    assert not [m for m in sys.modules if m.split(".")[0] == "incompat"]


def test_sentinels_work(corpus) -> None:
    """The sentinel would catch an import: importing one really sets the mark and fails."""
    from stonks_plugins import loader
    from stonks_plugins.discovery import scan_directory_plugin

    cand = scan_directory_plugin(corpus.path / "incompatible-core")
    try:
        with pytest.raises(RuntimeError, match="was imported"):
            loader.mount(cand)
        assert os.environ[sentinel("incompatible-core")]
    finally:
        loader.release(cand)
        os.environ.pop(sentinel("incompatible-core"), None)


def test_broken_plugins_can_be_switched_off_and_stay_off(corpus) -> None:
    manager.sync()
    for name, _, _ in BROKEN.values():
        assert manager.disable(name).state == "disabled"
    manager.sync()
    states = {
        p.name: p.state for p in Plugin.objects.filter(name__in=[b[0] for b in BROKEN.values()])
    }
    assert set(states.values()) == {"disabled"}

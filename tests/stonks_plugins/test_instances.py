"""Several instances of one plugin (issue 15): ``NAME:LABEL`` rows beside the plugin's own
(its default instance), each with its own config, secrets, state, events and broker on the
home page; added and removed through the manager, the CLI, the API and the console."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from stonks_plugins import instances
from stonks_plugins.instance_names import InvalidLabel
from stonks_plugins.instances import InstanceRefused
from stonks_plugins.manager import manager
from stonks_plugins.models import HealthCheck, Plugin, PluginConfig, PluginEvent
from stonks_plugins.redaction import MASK
from stonks_plugins.registry import plugin_registry
from tests.cli import cli, cli_exit, cli_json
from tests.conftest import ROOT, fast_process_plugins

pytestmark = pytest.mark.django_db

EXPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "exports" / "degiro"
DEGIRO = "degiro-broker"
PARTNER = "degiro-broker:partner"
SECRET = "partner-pass-7731"
API = "/api/v1"
ROW = re.compile(
    r'<tr data-broker="(?P<broker>[^"]*)"><td>(?P<name>[^<]*)</td><td>(?P<symbol>[^<]*)</td>'
    r"<td>(?P<shown>[^<]*)</td>\s*<td[^>]*>(?P<shares>[^<]*)</td><td[^>]*>(?P<value>[^<]*)</td>"
)
# What each export set holds (tests/fixtures/exports/degiro): symbol -> (shares, value).
MAIN_ROWS = {  # nl-current
    "IE0000000051": ("20", "2070.40"),
    "NL0000000053": ("33", "836.88"),
    "US0000000052": ("4", "780.40"),
    "NL0000000055": ("12", "120.00"),
}
PARTNER_ROWS = {"IE0000000002": ("10", "815.00"), "US0000000001": ("1", "165.00")}  # en-older


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    """Two accounts' DeGiro exports with different figures: a Dutch and an English set."""
    out = {}
    for key, case in (("main", "nl-current"), ("partner", "en-older")):
        out[key] = tmp_path / "exports" / key
        shutil.copytree(EXPORTS / case, out[key])
    return out


@pytest.fixture
def degiro(plugin_dirs) -> str:  # type: ignore[no-untyped-def]
    plugin_dirs.add(DEGIRO)
    manager.sync()
    return DEGIRO


@pytest.fixture
def two_accounts(degiro, folders, applied) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """The default instance reads the main account's exports, ``partner`` the other's."""
    applied(manager.set_config, DEGIRO, config_for(folders["main"]))
    applied(manager.add_instance, DEGIRO, "partner", actor="admin")
    applied(
        manager.set_config, PARTNER, config_for(folders["partner"], "bo", SECRET), actor="admin"
    )
    return folders


def config_for(folder: Path, user: str = "ana", password: str = "pw-main") -> dict:
    return {
        "credentials": {"username": user, "password": password, "int_account": 1},
        "settings": {"import_folder": str(folder)},
    }


def portfolio(html: str) -> dict[str, dict[str, tuple[str, str, str]]]:
    """data-broker -> symbol -> (broker column, shares, value) of the portfolio table."""
    found: dict[str, dict[str, tuple[str, str, str]]] = {}
    for m in ROW.finditer(html):
        found.setdefault(m["broker"], {})[m["symbol"]] = (
            m["shown"].strip(),
            m["shares"],
            m["value"],
        )
    return found


def page(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


# -- the home page ------------------------------------------------------------------------------


def test_two_degiro_instances_show_on_the_home_page_with_their_own_figures(
    two_accounts, admin_client_logged
) -> None:
    html = page(admin_client_logged)
    shown = portfolio(html)
    # The default instance is the plugin as before: its records say "degiro".
    assert {s: (sh, v) for s, (_, sh, v) in shown["degiro"].items()} == MAIN_ROWS
    assert {col for col, _, _ in shown["degiro"].values()} == {"degiro"}
    # The partner's account is its own broker, named NAME:LABEL in the broker column.
    assert {s: (sh, v) for s, (_, sh, v) in shown[PARTNER].items()} == PARTNER_ROWS
    assert {col for col, _, _ in shown[PARTNER].values()} == {PARTNER}
    brokers = html.split("across", 1)[1].split("</p>", 1)[0]
    assert DEGIRO in brokers and PARTNER in brokers


def test_disabling_an_instance_leaves_the_other_on_the_page(
    two_accounts, admin_client_logged, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        manager.disable(PARTNER, actor="admin")
    shown = portfolio(page(admin_client_logged))
    assert PARTNER not in shown and set(shown["degiro"]) == set(MAIN_ROWS)
    assert Plugin.objects.get(name=DEGIRO).state == "active"
    with django_capture_on_commit_callbacks(execute=True):
        manager.enable(PARTNER, actor="admin")
    assert set(portfolio(page(admin_client_logged))[PARTNER]) == set(PARTNER_ROWS)


# -- each instance its own --------------------------------------------------------------------


def test_each_instance_has_its_own_config_secrets_events_and_loaded_code(
    two_accounts, admin_client_logged
) -> None:
    base, partner = Plugin.objects.get(name=DEGIRO), Plugin.objects.get(name=PARTNER)
    assert (partner.instance_of_id, partner.label) == (base.pk, "partner")
    assert (base.instance_of_id, base.label) == (None, "")
    assert (partner.version, partner.type, partner.location) == (
        base.version,
        base.type,
        base.location,
    )
    assert partner.manifest == base.manifest and partner.trust == base.trust
    # Config versions and secrets: one each, masked, neither sees the other's.
    assert PluginConfig.objects.filter(plugin=base).count() == 1
    assert PluginConfig.objects.filter(plugin=partner).count() == 1
    view = manager.get_config(PARTNER)
    assert view.data["credentials"]["password"] == MASK
    assert view.data["settings"]["import_folder"] == str(two_accounts["partner"])
    assert manager.get_config(DEGIRO).data["credentials"]["username"] == "ana"
    assert SECRET not in json.dumps([e.reason for e in PluginEvent.objects.all()])
    # Events: the instance's own history, and the plugin's note that it was added.
    assert any(
        "instance 'partner' of degiro-broker added" in e.reason for e in partner.events.all()
    )
    assert any(f"instance {PARTNER} added" in e.reason for e in base.events.all())
    # Both loaded at once, each with its own config and its own copy of the code.
    page(admin_client_logged)
    main_code, partner_code = plugin_registry.peek(DEGIRO), plugin_registry.peek(PARTNER)
    assert main_code is not None and partner_code is not None
    assert main_code.config.import_folder == str(two_accounts["main"])
    assert partner_code.config.import_folder == str(two_accounts["partner"])
    assert partner_code.config.username == "bo" and main_code.config.username == "ana"
    assert type(main_code.instance).__module__ != type(partner_code.instance).__module__
    assert type(partner_code.instance).__module__ in sys.modules
    # Health checks are stored per instance and read each its own folder.
    manager.check_health(PARTNER, actor="admin")
    check = HealthCheck.objects.get(plugin=partner)
    assert check.details["folder"] == str(two_accounts["partner"])
    assert not HealthCheck.objects.filter(plugin=base).exists()


@pytest.mark.slow
def test_a_process_isolated_plugin_runs_each_instance_in_its_own_child(
    plugin_dirs, settings, admin_client_logged
) -> None:
    fast_process_plugins(settings, call_timeout=5.0)
    plugin_dirs.add("proc-healthy")
    manager.sync()
    manager.add_instance("proc-healthy", "two")
    for name in ("proc-healthy", "proc-healthy:two"):  # children started, however busy the CPU
        manager.load_plugin(name)
    shown = portfolio(page(admin_client_logged))
    assert set(shown["proc-healthy"]) == set(shown["proc-healthy:two"]) == {"PRH1", "PRH2"}
    hosts = [plugin_registry.loaded()[n].host for n in ("proc-healthy", "proc-healthy:two")]
    assert all(h is not None for h in hosts)
    assert hosts[0].pid != hosts[1].pid  # type: ignore[union-attr]
    manager.remove_instance("proc-healthy", "two")
    assert not hosts[1].alive  # type: ignore[union-attr]
    assert hosts[0].alive  # type: ignore[union-attr]


INSTALLED_SCRIPT = r"""
import json, os, sys
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "stonks_overwatch.settings"
django.setup()
from django.core.management import call_command
from django.test import Client
from django.contrib.auth.models import User
call_command("migrate", verbosity=0)
call_command("plugins", "sync")
call_command("plugins", "instances", "add", "degiro-broker", "partner")
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
user = User.objects.create_user("u", password="pw")
client = Client()
client.force_login(user)
before = client.get("/").content.decode()
names = ("degiro-broker", "degiro-broker:partner")
folders = {n: manager.load_plugin(n).config.import_folder for n in names}
call_command("plugins", "instances", "remove", "degiro-broker", "partner")
after = client.get("/").content.decode()
print(json.dumps({
    "rows": {p.name: p.summary() for p in Plugin.objects.all()},
    "before": before, "after": after, "folders": folders,
    "shared": "degiro.services" in sys.modules,
}))
"""


@pytest.mark.slow
def test_an_installed_plugins_instances_share_its_package(bundled_site, folders, tmp_path) -> None:
    """Entry-point plugins import under their real names: an instance shares the package
    (removing it leaves the plugin's modules to the plugin) and is configured by its own
    environment overrides."""
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(bundled_site), str(ROOT)]),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PLUGIN_DIRS": str(empty),
        "REDIS_URL": "",
        "STONKS_PLUGIN_DEGIRO_BROKER__SETTINGS__IMPORT_FOLDER": str(folders["main"]),
        "STONKS_PLUGIN_DEGIRO_BROKER_PARTNER__SETTINGS__IMPORT_FOLDER": str(folders["partner"]),
    }
    out = subprocess.run(
        [sys.executable, "-c", INSTALLED_SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["folders"] == {DEGIRO: str(folders["main"]), PARTNER: str(folders["partner"])}
    assert result["rows"][DEGIRO]["source"] == "entry_point" and PARTNER not in result["rows"]
    before, after = portfolio(result["before"]), portfolio(result["after"])
    assert set(before["degiro"]) == set(MAIN_ROWS) and set(before[PARTNER]) == set(PARTNER_ROWS)
    assert PARTNER not in after and set(after["degiro"]) == set(MAIN_ROWS)
    assert result["shared"]


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_adds_configures_lists_and_removes_an_instance(degiro, folders, applied) -> None:
    code, added = applied(cli_json, "instances", "add", DEGIRO, "partner")
    assert code == 0, added
    assert (added["name"], added["instance_of"], added["label"]) == (PARTNER, DEGIRO, "partner")
    assert added["state"] == "active"

    code, out, err = applied(
        cli,
        "config",
        "set",
        PARTNER,
        "credentials.username=bo",
        f"credentials.password={SECRET}",
        "credentials.int_account=7",
        f"settings.import_folder={folders['partner']}",
    )
    assert code == 0, err
    assert f"{PARTNER}: saved config version 1" in out
    code, got = cli_json("config", "get", PARTNER)
    assert got["data"]["settings"]["import_folder"] == str(folders["partner"])
    assert got["data"]["credentials"]["password"] == MASK
    assert cli_json("config", "get", DEGIRO)[1]["version"] == 0  # the other is untouched

    code, listed = cli_json("list")
    by_name = {p["name"]: p for p in listed}
    assert by_name[PARTNER]["instance_of"] == DEGIRO and by_name[DEGIRO]["instance_of"] is None
    code, out, _ = cli("instances", "list", PARTNER)
    assert code == 0 and "(default)" in out and PARTNER in out and "partner" in out
    assert [p["name"] for p in cli_json("instances", "list", DEGIRO)[1]] == [DEGIRO, PARTNER]

    code, out, _ = cli("instances", "remove", DEGIRO, "partner")
    assert code == 0 and f"{PARTNER}: removed" in out
    assert not Plugin.objects.filter(name=PARTNER).exists()
    assert not PluginConfig.objects.filter(plugin__name=PARTNER).exists()
    assert not PluginEvent.objects.filter(plugin__name=PARTNER).exists()
    assert PARTNER not in plugin_registry.known()
    assert Plugin.objects.get(name=DEGIRO).state == "active"  # the plugin stays


def test_cli_refusals_name_the_plugin_and_what_is_wrong(degiro) -> None:
    code, _, err = cli_exit("instances", "add", DEGIRO, "Bad Label")
    assert code == 2 and "'Bad Label' is not a valid instance label" in err and DEGIRO in err
    code, _, err = cli("instances", "remove", DEGIRO, "nobody")
    assert code == 1 and "no plugin named 'degiro-broker:nobody'" in err
    cli("instances", "add", DEGIRO, "partner")
    code, _, err = cli("instances", "add", DEGIRO, "partner")
    assert code == 1 and "already has an instance labelled 'partner'" in err
    code, _, err = cli("instances", "add", PARTNER, "more")
    assert code == 1 and "is itself an instance" in err
    code, out, _ = cli("instances", "add", "no-such-plugin", "x", "--json")
    assert code == 1 and "no plugin named 'no-such-plugin'" in json.loads(out)["error"]


def test_an_instance_never_reads_another_plugins_environment_overrides(degiro) -> None:
    manager.add_instance(DEGIRO, "a")
    # 'a__b' would read STONKS_PLUGIN_DEGIRO_BROKER_A__B__..., which instance 'a' reads as
    # its own setting 'b': a password meant for one would log the other in.
    code, _, err = cli("instances", "add", DEGIRO, "a__b")
    assert code == 1 and f"plugin '{DEGIRO}'" in err
    assert "STONKS_PLUGIN_DEGIRO_BROKER_A__B__" in err and f"'{DEGIRO}:a'" in err
    assert not Plugin.objects.filter(name=f"{DEGIRO}:a__b").exists()
    assert manager.add_instance(DEGIRO, "a-b").name == f"{DEGIRO}:a-b"  # a prefix of its own


def test_a_new_instance_is_enabled_per_the_setting_and_runs_on_its_defaults(
    degiro, settings, admin_client_logged
) -> None:
    settings.PLUGINS_ENABLE_NEW = False
    off = manager.add_instance(DEGIRO, "later")
    assert (off.enabled, off.state) == (False, "disabled")
    assert "degiro-broker:later" not in portfolio(page(admin_client_logged))
    settings.PLUGINS_ENABLE_NEW = True
    on = manager.add_instance(DEGIRO, "now")
    assert (on.enabled, on.state) == (True, "active")
    assert manager.get_config("degiro-broker:now").version == 0  # nothing saved: defaults
    shown = portfolio(page(admin_client_logged))
    assert set(shown["degiro-broker:now"]) == set(shown["degiro"])  # the shipped samples


def test_the_default_instance_cannot_be_removed(degiro) -> None:
    with pytest.raises(InstanceRefused, match="default instance, which cannot be removed"):
        instances.delete(DEGIRO, "cli")
    assert Plugin.objects.filter(name=DEGIRO).exists()
    with pytest.raises(InvalidLabel):
        manager.remove_instance(DEGIRO, "")


# -- single instance ----------------------------------------------------------------------------


def test_a_plugin_that_supports_a_single_instance_refuses_a_second(plugin_dirs) -> None:
    folder = plugin_dirs.add("healthy-fixture")
    manifest = json.loads((folder / "plugin_manifest.json").read_text())
    manifest["capabilities"]["multiple_instances"] = False
    (folder / "plugin_manifest.json").write_text(json.dumps(manifest))
    plugin_dirs.add("v2-tap-middleware")
    manager.sync()
    code, _, err = cli("instances", "add", "healthy-fixture", "second")
    assert code == 1
    assert "plugin 'healthy-fixture': supports a single instance" in err
    assert "capabilities.multiple_instances: false" in err
    assert not Plugin.objects.filter(name="healthy-fixture:second").exists()
    # Other types than brokers default to a single instance, and say which field to set.
    with pytest.raises(InstanceRefused, match=r"capabilities\.multiple_instances") as refused:
        manager.add_instance("v2-tap-middleware", "second")
    assert "v2-tap-middleware" in str(refused.value)


def test_the_manifest_field_is_validated(tmp_path) -> None:
    from stonks_plugins.manifest import ManifestError, parse_manifest

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "plugins" / "healthy-fixture"
    data = json.loads((folder / "plugin_manifest.json").read_text())
    assert parse_manifest(data, "x").allows_instances  # a broker: yes unless it says no
    data["capabilities"]["multiple_instances"] = "no"
    with pytest.raises(ManifestError) as bad:
        parse_manifest(data, "x")
    assert "$.capabilities.multiple_instances" in json.dumps(
        [i.as_dict() for i in bad.value.issues]
    )


# -- sync: instances mirror their plugin ----------------------------------------------------


def test_an_instance_goes_missing_and_comes_back_with_its_plugin(plugin_dirs, tmp_path) -> None:
    folder = plugin_dirs.add(DEGIRO)
    manager.sync()
    manager.add_instance(DEGIRO, "partner")
    aside = tmp_path / "aside"
    shutil.move(folder, aside)
    report = manager.sync()
    assert set(report.missing) >= {DEGIRO, PARTNER}
    partner = Plugin.objects.get(name=PARTNER)
    assert partner.missing and partner.state == "error"
    assert partner.error_code == "manifest_unreadable"
    assert PluginConfig.objects.filter(plugin=partner).count() == 0  # kept, not deleted
    shutil.move(aside, folder)
    manager.sync()
    partner = Plugin.objects.get(name=PARTNER)
    assert not partner.missing and partner.state == "active"


def test_an_instance_follows_its_plugin_into_error_and_upgrades_with_it(plugin_dirs) -> None:
    folder = plugin_dirs.add(DEGIRO)
    manager.sync()
    manager.add_instance(DEGIRO, "partner")
    path = folder / "plugin_manifest.json"
    good = path.read_text()
    broken = json.loads(good)
    broken["plugin"]["version"] = "not a version!"
    path.write_text(json.dumps(broken))
    manager.sync()
    base, partner = Plugin.objects.get(name=DEGIRO), Plugin.objects.get(name=PARTNER)
    assert base.error_code == partner.error_code == "manifest_invalid"
    assert partner.state == "error"
    upgraded = json.loads(good)
    upgraded["plugin"]["version"] = "1.1.0"
    path.write_text(json.dumps(upgraded))
    manager.sync()
    partner = Plugin.objects.get(name=PARTNER)
    assert (partner.state, partner.version) == ("active", "1.1.0")
    assert partner.manifest_hash == Plugin.objects.get(name=DEGIRO).manifest_hash


# -- the API ------------------------------------------------------------------------------------


def test_api_adds_lists_shows_and_removes_instances(degiro, admin_client_logged) -> None:
    client = admin_client_logged
    url = f"{API}/plugins/{DEGIRO}/instances/"
    response = client.post(url, {"label": "partner"}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["instance_of"], body["label"]) == (PARTNER, DEGIRO, "partner")
    detail = client.get(f"{API}/plugins/{PARTNER}/")
    assert detail.status_code == 200 and detail.json()["instance_of"] == DEGIRO
    assert detail.json()["links"]["instances"].endswith(f"/plugins/{PARTNER}/instances/")
    listed = client.get(url).json()
    assert [(p["name"], p["label"]) for p in listed] == [(DEGIRO, ""), (PARTNER, "partner")]
    assert client.get(f"{API}/plugins/{PARTNER}/config/").status_code == 200
    every = {p["name"]: p for p in client.get(f"{API}/plugins/").json()["results"]}
    assert every[PARTNER]["instance_of"] == DEGIRO and every[DEGIRO]["label"] == ""

    bad = client.post(url, {"label": "No Spaces"}, content_type="application/json")
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0]["path"] == "$.label"
    again = client.post(url, {"label": "partner"}, content_type="application/json")
    assert (
        again.status_code == 409 and "already has an instance" in again.json()["error"]["message"]
    )

    gone = client.delete(f"{API}/plugins/{DEGIRO}/instances/partner/")
    assert gone.status_code == 200 and gone.json()["name"] == DEGIRO
    assert client.get(f"{API}/plugins/{PARTNER}/").status_code == 404
    assert client.delete(f"{API}/plugins/{DEGIRO}/instances/partner/").status_code == 404


def test_api_answers_bad_requests_with_the_error_shape(degiro, admin_client_logged) -> None:
    client = admin_client_logged
    url = f"{API}/plugins/{DEGIRO}/instances/"
    for body in ("[1]", '{"label": 5}', "{}", '{"label": "a\\u0000b"}', '{"label": "x"*'):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["error"]["code"] in ("validation_error", "parse_error")
    for label in ("%00", "No%20Spaces", "a" * 41, "-x"):
        response = client.delete(f"{API}/plugins/{DEGIRO}/instances/{label}/")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    default = client.delete(f"{API}/plugins/{PARTNER.split(':')[0]}:x/instances/x/")
    assert default.status_code == 404
    missing = client.post(f"{API}/plugins/nope/instances/", {"label": "a"}, "application/json")
    assert missing.status_code == 404
    assert not Plugin.objects.filter(label__gt="").exists()


def test_api_changes_need_the_change_permission(degiro, client, django_user_model) -> None:
    from django.contrib.auth.models import Permission

    reader = django_user_model.objects.create_user("reader", "r@x.io", "pw")
    reader.user_permissions.add(Permission.objects.get(codename="view_plugin"))
    client.force_login(reader)
    url = f"{API}/plugins/{DEGIRO}/instances/"
    assert client.get(url).status_code == 200
    refused = client.post(url, {"label": "partner"}, content_type="application/json")
    assert refused.status_code == 403
    assert not Plugin.objects.filter(name=PARTNER).exists()


# -- the console --------------------------------------------------------------------------------


def test_console_lists_adds_and_removes_instances(degiro, admin_client_logged) -> None:
    client = admin_client_logged
    base = Plugin.objects.get(name=DEGIRO)
    page_url = f"/admin/stonks_plugins/plugin/{base.pk}/change/"
    html = client.get(page_url).content.decode()
    assert 'id="instances"' in html and "Add instance" in html
    response = client.post(
        f"/admin/stonks_plugins/plugin/{base.pk}/instances/add/", {"label": "partner"}
    )
    partner = Plugin.objects.get(name=PARTNER)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/admin/stonks_plugins/plugin/{partner.pk}/change/")
    html = client.get(page_url).content.decode()
    assert f'data-instance="{PARTNER}"' in html
    assert f"/admin/stonks_plugins/plugin/{partner.pk}/change/" in html
    changelist = client.get("/admin/stonks_plugins/plugin/").content.decode()
    assert PARTNER in changelist
    own = client.get(f"/admin/stonks_plugins/plugin/{partner.pk}/change/").content.decode()
    assert "Remove this instance" in own and "instance <code>partner</code>" in own
    bad = client.post(f"/admin/stonks_plugins/plugin/{base.pk}/instances/add/", {"label": "-x"})
    assert bad.status_code == 302
    assert "not a valid instance label" in client.get(bad["Location"]).content.decode()
    client.post(f"/admin/stonks_plugins/plugin/{partner.pk}/instances/remove/")
    assert not Plugin.objects.filter(name=PARTNER).exists()
    assert client.get(f"/admin/stonks_plugins/plugin/{base.pk}/instances/add/").status_code == 405


# -- the data migration ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_existing_rows_become_default_instances() -> None:
    """Rows from before instances (migration 0008) are their plugins' default instances."""
    before = [("stonks_plugins", "0008_config_schema_version")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("stonks_plugins")
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps.get_model("stonks_plugins", "Plugin")
        old.objects.create(name="degiro-broker", source="directory", version="1.0.0")
        executor = MigrationExecutor(connection)
        executor.migrate([("stonks_plugins", "0009_instances")])
        new = executor.loader.project_state([("stonks_plugins", "0009_instances")]).apps
        row = new.get_model("stonks_plugins", "Plugin").objects.get(name="degiro-broker")
        assert (row.label, row.instance_of_id) == ("", None)
    finally:
        MigrationExecutor(connection).migrate(latest)
    row = Plugin.objects.get(name="degiro-broker")
    assert row.summary()["instance_of"] is None and row.base_name is None

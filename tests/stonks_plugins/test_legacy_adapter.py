"""The legacy broker (``ibkr``, registered by registry_setup.py) managed as a plugin: a row
with source ``legacy``, a generated manifest, a migrated config, enable/disable/health like
any plugin, and the registry mode setting."""

from __future__ import annotations

import json
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.legacy.adapter import (
    LegacyBrokerAdapter,
    LegacyProvider,
    capture,
    dotted_ref,
)
from stonks_plugins.legacy.bridge import LazyService
from stonks_plugins.manager import manager
from stonks_plugins.manifest import parse_manifest
from stonks_plugins.models import HealthCheck, Plugin
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime.serving import serving
from tests.stonks_overwatch.test_home import page, symbols

pytestmark = pytest.mark.django_db
IBKR = {"EXSC", "SMTB"}


@pytest.fixture(autouse=True)
def _legacy_as_plugins(settings, plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_LEGACY_AS_PLUGINS = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def cli(*args: str) -> tuple[int, Any]:
    out, err = StringIO(), StringIO()
    try:
        call_command("plugins", *args, "--json", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, json.loads(out.getvalue())


def _ibkr_adapter() -> LegacyBrokerAdapter:
    return LegacyBrokerAdapter(capture(BrokerRegistry(), set())["ibkr"])


def test_generated_manifest_is_a_valid_seed_manifest() -> None:
    raw = _ibkr_adapter().create_plugin_manifest()
    manifest = parse_manifest(raw, "test")
    assert manifest.name == "ibkr" and manifest.type == "broker"
    assert raw["api"]["min_version"] == "1.0.0"
    assert raw["services"] == {
        "account": "stonks_overwatch.core.legacy_brokers.ibkr.services.IbkrAccountService",
        "portfolio": "stonks_overwatch.core.legacy_brokers.ibkr.services.IbkrPortfolioService",
        "transaction": (
            "stonks_overwatch.core.legacy_brokers.ibkr.services.IbkrTransactionService"
        ),
    }
    assert (
        raw["configuration"]["config_class"]
        == "stonks_overwatch.core.legacy_brokers.ibkr.config.IbkrConfig"
    )
    props = raw["configuration"]["schema"]["properties"]
    assert props["account_id"] == {"type": "string", "default": "U0000000"}
    assert props["enabled"]["type"] == "boolean"


def test_unimportable_provider_has_no_dotted_ref() -> None:
    class Local:
        pass

    assert dotted_ref(Local) is None
    assert dotted_ref(lambda: None) is None
    assert dotted_ref(BrokerRegistry) == "stonks_overwatch.core.registry.BrokerRegistry"


def test_sync_lists_ibkr_as_an_active_legacy_plugin_with_a_migrated_config() -> None:
    assert cli("sync")[0] == 0
    code, rows = cli("list")
    assert code == 0
    ibkr = next(r for r in rows if r["name"] == "ibkr")
    assert ibkr["source"] == "legacy" and ibkr["state"] == "active" and ibkr["enabled"]
    assert ibkr["type"] == "broker" and ibkr["error"] is None
    config = manager.get_config("ibkr")
    assert config.version == 1
    assert config.data["account_id"] == "U0000000" and config.data["base_currency"] == "USD"
    # A second sync changes nothing.
    code, report = cli("sync")
    assert "ibkr" not in report["added"] + report["updated"]


def test_services_go_through_the_sandbox_boundary(admin_client_logged) -> None:
    manager.sync()
    assert symbols(page(admin_client_logged))["ibkr"] == IBKR
    provider = BrokerRegistry().get_service_class("ibkr", ServiceType.PORTFOLIO)
    assert isinstance(provider, LegacyProvider)
    BrokerFactory().create_service("ibkr", "portfolio").get_portfolio()
    ops = manager.metrics("ibkr")
    assert "portfolio.get_portfolio" in json.dumps(ops)


def test_disable_removes_ibkr_from_the_home_page_and_enable_brings_it_back(
    admin_client_logged,
) -> None:
    manager.sync()
    assert symbols(page(admin_client_logged))["ibkr"] == IBKR
    assert cli("disable", "ibkr")[0] == 0
    assert "ibkr" not in symbols(page(admin_client_logged))
    assert "ibkr" not in BrokerRegistry().get_registered_brokers()
    assert Plugin.objects.get(name="ibkr").state == "disabled"
    assert cli("enable", "ibkr")[0] == 0
    assert Plugin.objects.get(name="ibkr").state == "active"
    assert symbols(page(admin_client_logged))["ibkr"] == IBKR


def test_health_check_reports_healthy() -> None:
    manager.sync()
    code, out = cli("health", "ibkr")
    assert code == 0, out
    assert json.dumps(out).count("healthy") >= 1 and "unhealthy" not in json.dumps(out)


def test_a_new_config_version_reaches_the_legacy_services(
    django_capture_on_commit_callbacks,
) -> None:
    manager.sync()
    with django_capture_on_commit_callbacks(execute=True):
        manager.set_config("ibkr", {"account_id": "U7654321"})
    assert manager.get_config("ibkr").status == "active"
    serving.refresh(force=True)
    overview = BrokerFactory().create_service("ibkr", "account").get_account_overview()
    assert overview.account_id == "U7654321"


def test_reset_restores_the_legacy_registration() -> None:
    manager.sync()
    manager.disable("ibkr")
    serving.refresh(force=True)
    assert not BrokerRegistry().is_registered("ibkr")
    serving.reset()  # no registry read here: a read would refresh from the (disabled) row
    restored = BrokerRegistry()._services["ibkr"][ServiceType.PORTFOLIO]
    assert restored.__name__ == "IbkrPortfolioService"
    assert "ibkr" not in plugin_registry.known()


# -- PLUGINS_REGISTRY_MODE ------------------------------------------------------------------


def test_mode_alongside_serves_legacy_and_plugins(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    assert symbols(page(admin_client_logged)) == {"ibkr": IBKR, "healthy-fixture": {"HLTH"}}


def test_mode_plugins_drops_legacy_brokers(settings, plugin_dirs, admin_client_logged) -> None:
    settings.PLUGINS_REGISTRY_MODE = "plugins"
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    assert symbols(page(admin_client_logged)) == {"healthy-fixture": {"HLTH"}}


def test_mode_plugins_lists_an_unmigrated_legacy_broker_as_not_served(
    settings, admin_client_logged, django_capture_on_commit_callbacks
) -> None:
    manager.sync()
    with django_capture_on_commit_callbacks(execute=True):
        manager.set_config("ibkr", {"account_id": "U7654321"})
    settings.PLUGINS_REGISTRY_MODE = "plugins"
    assert cli("sync")[0] == 0
    assert "ibkr" not in symbols(page(admin_client_logged))
    row = next(r for r in cli("list")[1] if r["name"] == "ibkr")
    # Not active (it is not served), not in error (nothing failed), still wanted.
    assert (row["state"], row["enabled"], row["error"]) == ("disabled", True, None)
    assert row["source"] == "legacy" and not row["missing"]
    shown = cli("show", "ibkr")[1]
    assert "not served: PLUGINS_REGISTRY_MODE=plugins" in " ".join(shown["warnings"])
    assert "PLUGINS_REGISTRY_MODE=plugins" in shown["events"][0]["reason"]
    assert manager.get_config("ibkr").data["account_id"] == "U7654321"  # config kept
    # Enabling it is remembered but serves nothing (exit 1) while the mode says no.
    code, shown = cli("enable", "ibkr")
    assert code == 1 and (shown["state"], shown["enabled"]) == ("disabled", True)
    assert "ibkr" not in symbols(page(admin_client_logged))
    # Back to alongside: served again, with its config, and the row says active.
    settings.PLUGINS_REGISTRY_MODE = "alongside"
    assert cli("sync")[0] == 0
    assert symbols(page(admin_client_logged))["ibkr"] == IBKR
    row = next(r for r in cli("list")[1] if r["name"] == "ibkr")
    assert (row["state"], row["enabled"], row["error"]) == ("active", True, None)
    assert cli("show", "ibkr")[1]["warnings"] == []
    overview = BrokerFactory().create_service("ibkr", "account").get_account_overview()
    assert overview.account_id == "U7654321"


def test_mode_legacy_serves_only_legacy_brokers(settings, plugin_dirs, admin_client_logged) -> None:
    settings.PLUGINS_REGISTRY_MODE = "legacy"
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    manager.disable("ibkr")  # the plugin system keeps its hands off the legacy registry
    assert symbols(page(admin_client_logged)) == {"ibkr": IBKR}
    assert isinstance(BrokerRegistry().get_service_class("ibkr", "portfolio"), type)
    # ...and the list says so: ibkr is served although disabled, the plugin is not served.
    rows = {r["name"]: r for r in cli("list")[1]}
    assert (rows["ibkr"]["state"], rows["ibkr"]["enabled"]) == ("active", False)
    assert "PLUGINS_REGISTRY_MODE=legacy" in " ".join(cli("show", "ibkr")[1]["warnings"])
    plugin = rows["healthy-fixture"]
    assert (plugin["state"], plugin["enabled"], plugin["error"]) == ("disabled", True, None)
    assert "PLUGINS_REGISTRY_MODE=legacy" in " ".join(cli("show", "healthy-fixture")[1]["warnings"])


def test_mode_legacy_keeps_an_operators_wishes_for_when_the_mode_changes(
    settings, plugin_dirs, admin_client_logged
) -> None:
    settings.PLUGINS_REGISTRY_MODE = "legacy"
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    assert cli("disable", "ibkr")[0] == 0
    # Enabling is remembered, but fails (exit 1) to serve it while the mode says no.
    code, shown = cli("enable", "healthy-fixture")
    assert code == 1 and (shown["state"], shown["enabled"]) == ("disabled", True)
    assert symbols(page(admin_client_logged)) == {"ibkr": IBKR}
    settings.PLUGINS_REGISTRY_MODE = "alongside"
    assert cli("sync")[0] == 0
    assert symbols(page(admin_client_logged)) == {"healthy-fixture": {"HLTH"}}
    rows = {r["name"]: r for r in cli("list")[1]}
    assert (rows["ibkr"]["state"], rows["ibkr"]["enabled"]) == ("disabled", False)
    assert (rows["healthy-fixture"]["state"], rows["healthy-fixture"]["enabled"]) == (
        "active",
        True,
    )
    assert cli("show", "healthy-fixture")[1]["warnings"] == []


def test_an_unknown_mode_falls_back_to_alongside(settings, admin_client_logged) -> None:
    settings.PLUGINS_REGISTRY_MODE = "bogus"
    manager.sync()
    assert symbols(page(admin_client_logged)) == {"ibkr": IBKR}


# -- plugins migrate-legacy -------------------------------------------------------------------


def test_migrate_legacy_writes_a_plugin_that_validates_loads_and_serves(
    plugin_dirs, admin_client_logged
) -> None:
    folder = plugin_dirs.path / "ibkr-plugin"
    code, result = cli("migrate-legacy", "ibkr", "--out", str(folder))
    assert code == 0 and result["name"] == "ibkr-plugin"
    services = (folder / "broker" / "services.py").read_text()
    assert "from stonks_plugins.sdk import" in services and "stonks_overwatch" not in services
    assert cli("validate", str(folder))[0] == 0
    manager.sync()
    rows = {r["name"]: r for r in cli("list")[1]}
    assert rows["ibkr-plugin"]["source"] == "directory" and rows["ibkr-plugin"]["state"] == "active"
    html = page(admin_client_logged)
    assert html.count("EXSC") == 2  # the legacy broker and its migrated copy, side by side
    assert BrokerFactory().create_service("ibkr-plugin", "portfolio").get_portfolio() == (
        BrokerFactory().create_service("ibkr", "portfolio").get_portfolio()
    )


def test_migrated_plugin_passes_the_test_kit(tmp_path) -> None:
    from stonks_plugins.testing import PluginTestSuite

    folder = tmp_path / "ibkr-plugin"
    assert cli("migrate-legacy", "ibkr", "--out", str(folder))[0] == 0
    results = PluginTestSuite(folder).run_all(cycles=1)
    assert all(r.passed for r in results), [r.failures for r in results]


def test_migrated_plugin_replaces_the_legacy_broker_in_plugins_mode(
    settings, plugin_dirs, admin_client_logged
) -> None:
    settings.PLUGINS_REGISTRY_MODE = "plugins"
    folder = plugin_dirs.path / "ibkr"
    assert cli("migrate-legacy", "ibkr", "--out", str(folder), "--name", "ibkr")[0] == 0
    manager.sync()
    assert symbols(page(admin_client_logged)) == {"ibkr": IBKR}
    assert Plugin.objects.get(name="ibkr").source == "directory"
    provider = BrokerRegistry().get_service_class("ibkr", "portfolio")
    assert isinstance(provider, LazyService)


def test_migrate_legacy_refuses_an_unknown_broker_and_a_full_folder(tmp_path) -> None:
    code, out = cli("migrate-legacy", "nope", "--out", str(tmp_path / "x"))
    assert code == 1 and "no legacy broker named 'nope'" in out["error"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("")
    code, out = cli("migrate-legacy", "ibkr", "--out", str(tmp_path / "full"))
    assert code == 1 and "not empty" in out["error"]


# -- the acceptance test ----------------------------------------------------------------

IBKR_ROW = re.compile(r'<tr data-broker="ibkr">.*?</tr>', re.S)
LIST_FIELDS = ("name", "version", "type", "state", "enabled", "error")


def test_switching_the_registry_mode_changes_nothing_a_user_sees_but_the_source(
    settings, plugin_dirs, admin_client_logged
) -> None:
    """ibkr migrated to a plugin of the same name: legacy -> alongside -> plugins and back
    shows the same portfolio rows (name, symbol, broker, shares, value) and the same
    ``plugins list`` row; only ``source`` tells who serves it, and it tells the truth."""
    folder = plugin_dirs.path / "ibkr"
    assert cli("migrate-legacy", "ibkr", "--out", str(folder), "--name", "ibkr")[0] == 0
    expected_source = {"legacy": "legacy", "alongside": "legacy", "plugins": "directory"}
    seen = []
    for mode in ("legacy", "alongside", "plugins", "alongside", "legacy", "plugins", "legacy"):
        settings.PLUGINS_REGISTRY_MODE = mode
        code, report = cli("sync")
        assert code == 0, report
        html = page(admin_client_logged)
        rows = IBKR_ROW.findall(html)
        assert len(rows) == 2 and "Some brokers could not be read" not in html, mode
        listed = next(r for r in cli("list")[1] if r["name"] == "ibkr")
        assert listed["source"] == expected_source[mode], mode
        assert (listed["state"], listed["enabled"], listed["error"]) == ("active", True, None)
        seen.append((mode, rows, {k: listed[k] for k in LIST_FIELDS}))
        # The source is who really serves it.
        provider = BrokerRegistry().get_service_class("ibkr", "portfolio")
        served_by_plugin = isinstance(provider, LazyService)
        assert served_by_plugin == (expected_source[mode] == "directory"), mode
        if mode != "plugins":  # the plugin waiting behind the legacy broker is named
            warnings = " ".join(cli("show", "ibkr")[1]["warnings"])
            assert str(folder) in warnings and f"PLUGINS_REGISTRY_MODE={mode}" in warnings
    _, first_rows, first_listed = seen[0]
    for mode, rows, listed in seen[1:]:
        assert rows == first_rows, mode
        assert listed == first_listed, mode
    assert Plugin.objects.filter(name__startswith="ibkr").count() == 1


def test_without_legacy_rows_a_plugin_behind_a_legacy_name_is_listed_as_not_served(
    settings, plugin_dirs, admin_client_logged
) -> None:
    """Legacy brokers unmanaged (no rows): the plugin of the legacy name has its own row, and
    it does not claim to be active while the legacy broker serves the name."""
    settings.PLUGINS_LEGACY_AS_PLUGINS = False
    folder = plugin_dirs.path / "ibkr"
    assert cli("migrate-legacy", "ibkr", "--out", str(folder), "--name", "ibkr")[0] == 0
    assert cli("sync")[0] == 0
    assert symbols(page(admin_client_logged))["ibkr"] == IBKR
    assert type(BrokerRegistry().get_service_class("ibkr", "portfolio")).__name__ != "LazyService"
    row = next(r for r in cli("list")[1] if r["name"] == "ibkr")
    assert (row["source"], row["state"], row["enabled"]) == ("directory", "disabled", True)
    assert "legacy broker 'ibkr'" in " ".join(cli("show", "ibkr")[1]["warnings"])
    settings.PLUGINS_REGISTRY_MODE = "plugins"
    assert cli("sync")[0] == 0
    assert next(r for r in cli("list")[1] if r["name"] == "ibkr")["state"] == "active"
    assert type(BrokerRegistry().get_service_class("ibkr", "portfolio")).__name__ == "LazyService"
    assert symbols(page(admin_client_logged))["ibkr"] == IBKR


# -- the console ------------------------------------------------------------------------------


def test_the_console_manages_the_legacy_broker_like_any_plugin(admin_client_logged) -> None:
    # Listed with source legacy; its page shows the generated manifest; the list's actions
    # disable it (its data leaves the home page) and enable it again, as for a plugin.
    manager.sync()
    listing = admin_client_logged.get("/admin/stonks_plugins/plugin/?source=legacy")
    assert listing.status_code == 200
    shown = [p.name for p in listing.context["cl"].result_list]
    assert shown == ["ibkr"]
    pk = Plugin.objects.get(name="ibkr").pk
    detail = admin_client_logged.get(f"/admin/stonks_plugins/plugin/{pk}/change/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "stonks_overwatch.core.registry_setup" in html  # the generated manifest's origin

    def act(action: str) -> None:
        response = admin_client_logged.post(
            "/admin/stonks_plugins/plugin/",
            {"action": action, "_selected_action": [pk], "index": "0"},
            follow=True,
        )
        assert response.status_code == 200

    act("disable_plugins")
    assert Plugin.objects.get(name="ibkr").state == "disabled"
    assert "ibkr" not in symbols(page(admin_client_logged))
    act("enable_plugins")
    assert Plugin.objects.get(name="ibkr").state == "active"
    assert symbols(page(admin_client_logged))["ibkr"] == IBKR
    act("check_health")
    check = HealthCheck.objects.filter(plugin__name="ibkr").first()
    assert check is not None and check.status == "healthy"

"""Upgrading a plugin under a stored config: ``acme-broker`` 0.1.0 stores ``currency``, 0.2.0
renames it ``base_currency`` (config schema v2). The user's USD must survive: migrated by
the plugin's ``migrate_config`` into a new config version, or - with no working migration -
kept byte for byte while the plugin waits in ``config_invalid`` for an operator. Going back
to an older version is refused unless the sync is told to allow it."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_plugins.manager import manager
from stonks_plugins.models import EventKind, Plugin, PluginConfig, PluginEvent
from tests.cli import cli, cli_json
from tests.conftest import fast_process_plugins

pytestmark = pytest.mark.django_db

NAME = "acme-broker"
SECRET = "acme-pa55word-never-shown"
V1_CONFIG = {
    "credentials": {"username": "ana", "password": SECRET},
    "settings": {"currency": "USD"},
}

V1_SETTINGS = {"currency": {"enum": ["EUR", "USD", "GBP"], "default": "EUR"}}
V2_SETTINGS = {"base_currency": {"enum": ["EUR", "USD", "GBP"], "default": "EUR"}}

RENAMES = """
    @staticmethod
    def migrate_config(from_version, data):
        settings = dict(data.get("settings", {}))
        if from_version < 2 and "currency" in settings:
            settings["base_currency"] = settings.pop("currency")
        return {**data, "settings": settings}
"""
RAISES = """
    @classmethod
    def migrate_config(cls, from_version, data):
        raise RuntimeError("cannot read the old layout " + data["credentials"]["password"])
"""
HANGS = """
    @classmethod
    def migrate_config(cls, from_version, data):
        import time
        time.sleep(30)
        return data
"""
RETURNS_JUNK = """
    @staticmethod
    def migrate_config(from_version, data):
        return {"settings": {"base_currency": "JPY"}}
"""


def write_acme(
    folder: Path,
    version: str,
    settings_schema: dict[str, Any],
    *,
    schema_version: int | None = None,
    hook: str = "",
    setting: str = "currency",
    isolation: str = "in_process",
) -> Path:
    """A complete ``acme-broker`` folder: manifest, config class, service, plugin class."""
    if folder.exists():
        shutil.rmtree(folder)
    pkg = folder / "acme"
    pkg.mkdir(parents=True)
    configuration: dict[str, Any] = {
        "config_class": "acme.config.AcmeConfig",
        "schema": {
            "type": "object",
            "properties": {
                "credentials": {
                    "type": "object",
                    "properties": {
                        "username": {"type": "string", "minLength": 1},
                        "password": {"type": "string", "writeOnly": True, "format": "password"},
                    },
                    "required": ["username", "password"],
                },
                "settings": {"type": "object", "properties": settings_schema},
            },
            "required": ["credentials"],
        },
    }
    if schema_version is not None:
        configuration["version"] = schema_version
    manifest = {
        "plugin": {"name": NAME, "version": version, "type": "broker", "display_name": "Acme"},
        "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
        "dependencies": {"python": ">=3.11"},
        "capabilities": {"services": ["portfolio"]},
        "configuration": configuration,
        "services": {"portfolio": "acme.services.PortfolioService"},
        "entry_points": {"main": "acme.plugin:AcmePlugin"},
        "isolation": isolation,
    }
    (folder / "plugin_manifest.json").write_text(json.dumps(manifest, indent=2))
    (pkg / "__init__.py").write_text("")
    (pkg / "config.py").write_text(
        textwrap.dedent(f"""
        from dataclasses import dataclass

        from stonks_plugins.sdk import BaseConfig


        @dataclass
        class AcmeConfig(BaseConfig):
            username: str = ""
            password: str = ""
            {setting}: str = "EUR"
        """)
    )
    (pkg / "services.py").write_text(
        textwrap.dedent(f"""
        from stonks_plugins.sdk import PortfolioEntry, PortfolioServiceInterface, TotalPortfolio


        class PortfolioService(PortfolioServiceInterface):
            def get_portfolio(self):
                currency = self.config.{setting}
                return [PortfolioEntry(name="Acme", symbol="ACME-" + currency, shares=1.0,
                                       price=1.0, value=1.0, currency=currency)]

            def get_portfolio_total(self):
                return TotalPortfolio(total_value=1.0)
        """)
    )
    (pkg / "plugin.py").write_text(
        "from stonks_plugins.sdk import BaseBrokerPlugin\n\n\n"
        "class AcmePlugin(BaseBrokerPlugin):\n    version_note = "
        + repr(version)
        + "\n"
        + textwrap.indent(textwrap.dedent(hook), "    ")
    )
    return folder


def v1(folder: Path) -> Path:
    return write_acme(folder, "0.1.0", V1_SETTINGS)


def v2(folder: Path, hook: str = RENAMES, schema_version: int | None = 2) -> Path:
    return write_acme(
        folder,
        "0.2.0",
        V2_SETTINGS,
        schema_version=schema_version,
        hook=hook,
        setting="base_currency",
    )


@pytest.fixture
def installed(plugin_dirs, django_capture_on_commit_callbacks) -> Path:  # type: ignore[no-untyped-def]
    """acme-broker 0.1.0 synced and configured with USD (config version 1, live)."""
    folder = v1(plugin_dirs.path / NAME)
    manager.sync()
    with django_capture_on_commit_callbacks(execute=True):
        manager.set_config(NAME, V1_CONFIG, actor="ops")
    live = PluginConfig.objects.get(plugin__name=NAME, is_active=True)
    assert (live.version, live.schema_version) == (1, 1)
    assert BrokerFactory().create_config(NAME).currency == "USD"
    return folder


def row() -> Plugin:
    return Plugin.objects.get(name=NAME)


def stored_rows() -> list[tuple[Any, ...]]:
    """The config versions as stored, byte for byte (the JSON column's text)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT version, data, status, is_active, schema_version FROM "
            f"{PluginConfig._meta.db_table} ORDER BY version"
        )
        return list(cursor.fetchall())


def events_text() -> str:
    return " ".join(f"{e.reason} {e.details}" for e in PluginEvent.objects.all())


def test_before_the_fix_usd_silently_became_the_eur_default(installed) -> None:
    """The report: 0.2.0 with no migration served EUR. Now the plugin says what is wrong
    and nobody is served a default in place of the user's choice."""
    v2(installed, hook="", schema_version=None)  # renamed setting, no schema bump, no hook
    manager.sync()
    plugin = row()
    assert (plugin.version, plugin.state, plugin.error_code) == ("0.2.0", "error", "config_invalid")
    assert "$.settings.currency" in plugin.error_message
    assert NAME not in BrokerRegistry().get_registered_brokers()  # not served on EUR
    # What the CLI shows: the paths, and the way out.
    code, shown = cli_json("show", NAME)
    assert code == 0
    assert shown["error"]["code"] == "config_invalid"
    assert {d["path"] for d in shown["error_details"]} >= {"$.settings.currency"}
    assert f"plugins config set {NAME}" in shown["error"]["message"]


def test_upgrade_migrates_the_config_keeping_value_and_secret(installed) -> None:
    v2(installed)
    code, _, _ = cli("sync")
    assert code == 0
    plugin = row()
    assert (plugin.version, plugin.state, plugin.error) == ("0.2.0", "active", None)

    live = PluginConfig.objects.get(plugin=plugin, is_active=True)
    assert (live.version, live.status, live.schema_version, live.base_version) == (
        2,
        "active",
        2,
        1,
    )
    assert live.message == "migrated from schema v1 to v2 (plugin 0.1.0 -> 0.2.0)"
    assert set(live.changed) == {"$.settings.base_currency", "$.settings.currency"}
    old = PluginConfig.objects.get(plugin=plugin, version=1)
    assert (old.status, old.is_active) == ("superseded", False)

    shown = manager.get_config(NAME)
    assert shown.data["settings"] == {"base_currency": "USD"}
    assert shown.data["credentials"]["password"] != SECRET  # masked
    assert SECRET not in json.dumps(live.data)  # still encrypted at rest
    config = BrokerFactory().create_config(NAME)
    assert (config.base_currency, config.password) == ("USD", SECRET)

    migrated = PluginEvent.objects.get(plugin=plugin, reason__contains="migrated from schema")
    assert migrated.kind == EventKind.ACTION
    assert migrated.details["config_version"] == 2
    assert (migrated.details["from_version"], migrated.details["to_version"]) == ("0.1.0", "0.2.0")
    upgraded = PluginEvent.objects.get(plugin=plugin, reason="upgraded from 0.1.0 to 0.2.0")
    assert upgraded.kind == EventKind.DISCOVERY
    assert upgraded.details == {"from_version": "0.1.0", "to_version": "0.2.0"}
    assert SECRET not in events_text()

    # A second sync has nothing to migrate.
    manager.sync()
    assert PluginConfig.objects.filter(plugin=plugin).count() == 2


def test_no_migration_keeps_the_config_byte_identical_until_the_operator_fixes_it(
    installed, django_capture_on_commit_callbacks
) -> None:
    before = stored_rows()
    v2(installed, hook="")  # schema v2, but the class has no migrate_config
    report = manager.sync()
    assert NAME in report.failed
    plugin = row()
    assert (plugin.state, plugin.error_code) == ("error", "config_invalid")
    assert "$.settings.currency" in plugin.error_message
    assert "no migrate_config" in plugin.error_message
    assert "kept unchanged" in plugin.error_message
    assert [d["path"] for d in plugin.error_details] == ["$.settings.currency"]
    assert stored_rows() == before  # never replaced by defaults

    # Syncing again neither retries nor repeats itself.
    events = PluginEvent.objects.count()
    manager.sync()
    assert PluginEvent.objects.count() == events and stored_rows() == before
    # Enabling it as it is fails the same way: the config still does not fit.
    assert manager.enable(NAME, actor="ops").error_code == "config_invalid"
    assert stored_rows() == before

    # The operator sets the renamed setting; the secret sent back masked is kept.
    masked = manager.get_config(NAME).data
    fixed = {"credentials": masked["credentials"], "settings": {"base_currency": "USD"}}
    with django_capture_on_commit_callbacks(execute=True):
        manager.set_config(NAME, fixed, actor="ops", base_version=1)
    assert manager.get_config(NAME).status == "active"
    assert PluginConfig.objects.get(plugin__name=NAME, version=2).schema_version == 2
    code, out, _ = cli("enable", NAME)
    assert code == 0, out
    assert row().state == "active"
    config = BrokerFactory().create_config(NAME)
    assert (config.base_currency, config.password) == ("USD", SECRET)


@pytest.mark.parametrize(
    ("hook", "said"),
    [
        (RAISES, "migrate_config failed"),
        (RETURNS_JUNK, "migrate_config's result does not fit either"),
    ],
    ids=["raises", "returns-what-the-schema-refuses"],
)
def test_a_failing_migration_keeps_the_config(installed, hook: str, said: str) -> None:
    before = stored_rows()
    v2(installed, hook=hook)
    manager.sync()
    plugin = row()
    assert (plugin.state, plugin.error_code) == ("error", "config_invalid")
    assert said in plugin.error_message and "$.settings.currency" in plugin.error_message
    assert SECRET not in plugin.error_message  # the plugin quoted it; it is masked
    assert SECRET not in events_text()
    assert stored_rows() == before


def test_a_hanging_migration_is_abandoned_and_the_config_kept(installed, settings) -> None:
    settings.PLUGINS_SYNC_LOAD_TIMEOUT = 0.5
    before = stored_rows()
    v2(installed, hook=HANGS)
    manager.sync()
    plugin = row()
    assert (plugin.state, plugin.error_code) == ("error", "config_invalid")
    assert "did not finish within 0.5 s" in plugin.error_message
    assert stored_rows() == before


def test_a_config_that_still_fits_is_kept_as_it_is(installed) -> None:
    """A new version whose schema the stored config fits: nothing to migrate or refuse."""
    before = stored_rows()
    write_acme(installed, "0.1.1", V1_SETTINGS, schema_version=None)
    manager.sync()
    assert (row().version, row().state) == ("0.1.1", "active")
    assert stored_rows() == before
    assert BrokerFactory().create_config(NAME).currency == "USD"


def test_downgrade_is_refused_then_allowed_with_the_flag(installed) -> None:
    v2(installed)
    manager.sync()
    assert (row().version, row().state) == ("0.2.0", "active")
    migrated = stored_rows()

    v1(installed)
    code, _, _ = cli("sync")
    assert code == 0
    plugin = row()
    assert (plugin.state, plugin.error_code) == ("error", "incompatible_core")
    assert plugin.version == "0.2.0"  # the row keeps what is installed
    assert "older than the installed 0.2.0" in plugin.error_message
    assert "--allow-downgrade" in plugin.error_message
    refused = PluginEvent.objects.get(plugin=plugin, reason="downgrade from 0.2.0 to 0.1.0 refused")
    assert refused.details["from_version"] == "0.2.0" and refused.details["to_version"] == "0.1.0"
    assert stored_rows() == migrated
    events = PluginEvent.objects.count()
    cli("sync")  # said once
    assert PluginEvent.objects.count() == events

    code, _, _ = cli("sync", "--allow-downgrade")
    assert code == 0
    plugin = row()
    assert plugin.version == "0.1.0"
    allowed = PluginEvent.objects.get(plugin=plugin, reason__startswith="downgraded from 0.2.0")
    assert allowed.kind == EventKind.DISCOVERY
    assert (allowed.details["from_version"], allowed.details["to_version"]) == ("0.2.0", "0.1.0")
    # The migrated config does not fit the old schema: kept, and the plugin says so.
    assert (plugin.state, plugin.error_code) == ("error", "config_invalid")
    assert "$.settings.base_currency" in plugin.error_message
    assert stored_rows() == migrated


def test_an_isolated_plugins_migration_never_runs_in_the_host(
    plugin_dirs, settings, django_capture_on_commit_callbacks
) -> None:
    """Its code runs only in its own process: the host checks the stored config instead."""
    fast_process_plugins(settings, call_timeout=10.0)
    folder = write_acme(plugin_dirs.path / NAME, "0.1.0", V1_SETTINGS, isolation="process")
    manager.sync()
    with django_capture_on_commit_callbacks(execute=True):
        manager.set_config(NAME, V1_CONFIG, actor="ops")
    assert manager.get_config(NAME).status == "active"
    before = stored_rows()
    write_acme(
        folder,
        "0.2.0",
        V2_SETTINGS,
        schema_version=2,
        hook=RENAMES,
        setting="base_currency",
        isolation="process",
    )
    manager.sync()
    plugin = row()
    assert (plugin.state, plugin.error_code) == ("error", "config_invalid")
    assert "not run for a plugin isolated in its own process" in plugin.error_message
    assert stored_rows() == before

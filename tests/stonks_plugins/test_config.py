"""Plugin configuration on the embedded default (one process, eager tasks): schema,
validation with JSON paths, defaults, secrets, versions, rollback, precedence and hot
application — what an operator sees through the CLI and the home page."""

from __future__ import annotations

import json
import re

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from stonks_overwatch.core.factory import BrokerFactory
from stonks_plugins.config.system import config_system, env_overrides
from stonks_plugins.config.validation import ConfigInvalid
from stonks_plugins.config.versions import StaleConfig
from stonks_plugins.manager import manager
from stonks_plugins.models import PluginConfig, PluginEvent
from stonks_plugins.redaction import MASK
from tests.cli import cli

pytestmark = pytest.mark.django_db
SECRET = "hunter2-very-secret"
GOOD = {"credentials": {"username": "ana", "password": SECRET}, "settings": {"currency": "USD"}}
ROW = re.compile(r'<tr data-broker="config-fixture"><td>[^<]*</td><td>([^<]*)</td>')


@pytest.fixture
def fixture_plugin(plugin_dirs, settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    plugin_dirs.add("config-fixture")
    plugin_dirs.add("degiro-broker")
    plugin_dirs.add("bitvavo-broker")
    manager.sync()
    return "config-fixture"


def symbol(client) -> str:  # type: ignore[no-untyped-def]
    return ROW.findall(client.get("/").content.decode())[0]


def test_schemas_come_from_manifest_file_inline_or_generated(fixture_plugin) -> None:
    own = manager.config_schema("config-fixture")
    assert own["properties"]["credentials"]["properties"]["password"]["writeOnly"] is True
    assert own["additionalProperties"] is False  # closed to unknown keys
    degiro = manager.config_schema("degiro-broker")  # the seed's DEGIRO schema, inline
    assert degiro["properties"]["credentials"]["required"] == [
        "username",
        "password",
        "int_account",
    ]
    assert degiro["properties"]["settings"]["properties"]["session_timeout"]["default"] == 3600
    bitvavo = manager.config_schema("bitvavo-broker")  # generated from required_credentials
    creds = bitvavo["properties"]["credentials"]
    assert creds["required"] == ["api_key", "api_secret"]
    assert creds["properties"]["api_secret"]["writeOnly"] is True
    assert creds["properties"]["api_key"]["writeOnly"] is True


def test_invalid_config_lists_every_path_and_changes_nothing(fixture_plugin) -> None:
    bad = {
        "credentials": {"username": "", "password": "short"},
        "settings": {"currency": "JPY", "refresh_minutes": 0, "colour": "red"},
    }
    with pytest.raises(ConfigInvalid) as info:
        manager.set_config("config-fixture", bad, actor="t")
    issues = {i.path: i for i in info.value.issues}
    assert set(issues) == {
        "$.credentials.username",
        "$.credentials.password",
        "$.settings.currency",
        "$.settings.refresh_minutes",
        "$.settings.colour",
    }
    assert issues["$.credentials.username"].rule == "minLength"
    assert issues["$.settings.colour"].rule == "additionalProperties"
    assert issues["$.settings.refresh_minutes"].rule == "minimum"
    assert "short" not in str(info.value)  # a secret's value is never echoed
    assert not PluginConfig.objects.exists()
    assert not PluginEvent.objects.filter(reason__contains="config version").exists()

    code, _, err = cli("config", "set", "config-fixture", "credentials.username=ana")
    assert code == 1
    assert "$.credentials.password: is required but missing [required]" in err
    assert "nothing was changed" in err


def test_defaults_filled_and_hot_applied_on_the_page(
    fixture_plugin, applied, admin_client_logged
) -> None:
    assert symbol(admin_client_logged) == "CFG-EUR"  # class defaults before any config
    view = applied(manager.set_config, "config-fixture", GOOD, actor="ops")
    assert view.version == 1
    latest = manager.get_config("config-fixture")
    assert latest.status == "active"
    assert latest.data["settings"] == {"currency": "USD", "refresh_minutes": 60}
    assert symbol(admin_client_logged) == "CFG-USD"  # live without a restart
    config = BrokerFactory().create_config("config-fixture")
    assert (config.username, config.password, config.refresh_minutes) == ("ana", SECRET, 60)


def test_secrets_are_encrypted_masked_and_kept_when_sent_back(fixture_plugin, applied) -> None:
    applied(manager.set_config, "config-fixture", GOOD, actor="ops")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT data FROM {PluginConfig._meta.db_table}")
        raw = " ".join(str(r[0]) for r in cursor.fetchall())
    assert SECRET not in raw and "$enc" in raw
    _, out, _ = cli("config", "get", "config-fixture", "--json")
    shown = json.loads(out)
    assert shown["data"]["credentials"]["password"] == MASK
    assert SECRET not in out
    assert SECRET not in cli("config", "history", "config-fixture", "--json")[1]
    events = " ".join(str(e.details) + e.reason for e in PluginEvent.objects.all())
    assert SECRET not in events
    # An edit that sends the masked value back keeps the stored secret.
    edited = {**shown["data"], "settings": {"currency": "GBP"}}
    applied(manager.set_config, "config-fixture", edited, actor="ops", base_version=1)
    assert BrokerFactory().create_config("config-fixture").password == SECRET


def test_versions_stale_write_history_and_rollback(
    fixture_plugin, applied, admin_client_logged
) -> None:
    applied(manager.set_config, "config-fixture", GOOD, actor="ana")
    code, _, _ = applied(cli, "config", "set", "config-fixture", "settings.currency=GBP")
    assert code == 0
    with pytest.raises(StaleConfig) as info:
        manager.set_config("config-fixture", GOOD, actor="bob", base_version=1)
    assert "latest is version 2" in str(info.value)
    code, out, _ = cli("config", "history", "config-fixture", "--json")
    rows = json.loads(out)
    assert [(r["version"], r["created_by"]) for r in rows] == [(2, "cli"), (1, "ana")]
    assert rows[0]["changed"] == ["$.settings.currency"]
    code, out, _ = applied(cli, "config", "rollback", "config-fixture", "1")
    assert code == 0 and "saved config version 3" in out
    latest = manager.get_config("config-fixture")
    assert latest.data["settings"]["currency"] == "USD"
    assert latest.status == "active"
    assert symbol(admin_client_logged) == "CFG-USD"
    code, _, err = cli("config", "rollback", "config-fixture", "9")
    assert code == 1 and "no config version 9" in err


def test_config_refused_by_the_plugin_keeps_the_previous_one(
    fixture_plugin, applied, admin_client_logged
) -> None:
    applied(manager.set_config, "config-fixture", GOOD, actor="ops")
    assert symbol(admin_client_logged) == "CFG-USD"
    view = applied(
        manager.set_config,
        "config-fixture",
        {"settings": {"currency": "XXX"}},
        actor="ops",
        partial=True,
    )
    assert view.version == 2
    refused = manager.config_history("config-fixture")[0]
    assert refused.status == "failed"
    assert "unsupported currency XXX" in refused.message
    assert manager.get_config("config-fixture").version == 1  # latest good one is the base
    assert symbol(admin_client_logged) == "CFG-USD"
    event = PluginEvent.objects.filter(kind="failure", reason__contains="version 2 refused")
    assert event.exists()


def test_precedence_base_defaults_stored_environment(
    fixture_plugin, applied, settings, monkeypatch
) -> None:
    settings.BROKER_CONFIGS = {
        "config-fixture": {"settings": {"refresh_minutes": 5, "currency": "GBP"}}
    }
    effective = config_system.effective("config-fixture")
    assert effective["settings"] == {"currency": "EUR", "refresh_minutes": 60}  # defaults win
    applied(manager.set_config, "config-fixture", GOOD, actor="ops")
    assert config_system.effective("config-fixture")["settings"]["currency"] == "USD"
    monkeypatch.setenv("STONKS_PLUGIN_CONFIG_FIXTURE__SETTINGS__REFRESH_MINUTES", "15")
    monkeypatch.setenv("STONKS_PLUGIN_CONFIG_FIXTURE__SETTINGS__CURRENCY", "EUR")
    assert env_overrides("config-fixture") == {
        "settings": {"refresh_minutes": 15, "currency": "EUR"}
    }
    assert config_system.effective_flat("config-fixture")["refresh_minutes"] == 15
    assert config_system.effective_flat("config-fixture")["currency"] == "EUR"


def test_key_rotation(fixture_plugin, applied, settings) -> None:
    old_key = Fernet.generate_key().decode()
    settings.PLUGINS_SECRET_KEY = old_key
    applied(manager.set_config, "config-fixture", GOOD, actor="ops")
    new_key = Fernet.generate_key().decode()
    settings.PLUGINS_SECRET_KEY = new_key
    settings.PLUGINS_SECRET_KEY_FALLBACKS = [old_key]
    code, out, _ = cli("config", "rotate-key")
    assert code == 0 and "1 config version" in out
    settings.PLUGINS_SECRET_KEY_FALLBACKS = []
    assert config_system.effective_flat("config-fixture")["password"] == SECRET


def test_cli_usage_errors(fixture_plugin, tmp_path) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("plugins", "config", "set", "config-fixture", "novalue")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("plugins", "config", "set", "config-fixture", "--file", str(bad))


def test_a_version_is_checked_with_the_config_it_goes_live_with(
    fixture_plugin, settings, monkeypatch
) -> None:
    """Applying a version layers it as the live config is layered (one function): the plugin
    checks what it is then built with - here a version stored before its plugin declared
    the default of ``refresh_minutes``, under a host-wide value the default takes over."""
    from stonks_plugins.config.apply import apply_version
    from stonks_plugins.models import ConfigStatus, Plugin

    settings.BROKER_CONFIGS = {"config-fixture": {"settings": {"refresh_minutes": 5}}}
    monkeypatch.setenv("STONKS_PLUGIN_CONFIG_FIXTURE__SETTINGS__CURRENCY", "GBP")
    PluginConfig.objects.create(  # no refresh_minutes: saved before the schema had one
        plugin=Plugin.objects.get(name="config-fixture"),
        version=1,
        data={"credentials": {"username": "ana", "password": SECRET}, "settings": {}},
        status=ConfigStatus.PENDING,
        created_by="t",
    )
    checked: dict[str, object] = {}
    result = apply_version("config-fixture", 1, check=lambda name, flat: checked.update(flat))
    assert result.applied
    assert checked["refresh_minutes"] == 60 and checked["currency"] == "GBP"
    assert checked == config_system.effective_flat("config-fixture")

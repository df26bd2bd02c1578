"""Every PLUGINS_* setting has one default, in stonks_plugins/conf.py: the host's settings
read the environment through that table, so a default changed there is the default a site
runs with (PLUGINS_SLOW_CALL once said 0.25 s in settings.py and 0.1 s in the table)."""

from __future__ import annotations

import os

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from stonks_plugins.conf import DEFAULTS, ENVIRONMENT_PARTS, from_environment


def test_with_no_environment_every_setting_is_the_tables_default(monkeypatch) -> None:
    for var in [v for v in os.environ if v.startswith("PLUGINS_")]:
        monkeypatch.delenv(var)
    read = from_environment(environ.Env())
    expected = {f"PLUGINS_{k}": v for k, v in DEFAULTS.items() if k != "MODE_NOTE"}
    assert read == expected


@pytest.mark.parametrize(
    ("var", "raw", "setting", "value"),
    [
        ("PLUGINS_SLOW_CALL", "0.3", "PLUGINS_SLOW_CALL", 0.3),
        ("PLUGINS_SAFE_MODE", "1", "PLUGINS_SAFE_MODE", True),
        ("PLUGINS_MAX_INFLIGHT", "7", "PLUGINS_MAX_INFLIGHT", 7),
        ("PLUGINS_TRUSTED_KEYS", "k1,k2", "PLUGINS_TRUSTED_KEYS", ["k1", "k2"]),
        ("PLUGINS_SIGNATURE_POLICY", "enforce", "PLUGINS_SIGNATURE_POLICY", "enforce"),
    ],
)
def test_a_variable_sets_its_setting_typed_as_its_default(
    monkeypatch, var: str, raw: str, setting: str, value: object
) -> None:
    monkeypatch.setenv(var, raw)
    assert from_environment(environ.Env())[setting] == value


def test_a_table_takes_one_variable_per_entry_and_keeps_the_others(monkeypatch) -> None:
    monkeypatch.setenv("PLUGINS_PROCESS_MEMORY_MB", "64")
    limits = from_environment(environ.Env())["PLUGINS_PROCESS_LIMITS"]
    assert limits == {**DEFAULTS["PROCESS_LIMITS"], "memory_mb": 64}
    assert set(ENVIRONMENT_PARTS["TIMEOUTS"]) == set(DEFAULTS["TIMEOUTS"])


def test_a_malformed_value_names_its_variable(monkeypatch) -> None:
    monkeypatch.setenv("PLUGINS_PAGE_BUDGET", "two seconds")
    with pytest.raises(ImproperlyConfigured) as refused:
        from_environment(environ.Env())
    assert str(refused.value) == (
        "environment variable PLUGINS_PAGE_BUDGET='two seconds' is not a number "
        "(its default is 2.0)"
    )


def test_a_setting_is_read_once_and_again_after_it_changes(settings) -> None:
    """A page reads these settings a hundred times: the value is kept, and Django's
    setting_changed signal (override_settings, the settings fixture) makes it read again."""
    from django.test import override_settings

    from stonks_plugins.conf import plugin_settings

    settings.PLUGINS_PAGE_BUDGET = 1.5
    assert plugin_settings.PAGE_BUDGET == 1.5
    assert plugin_settings.__dict__["PAGE_BUDGET"] == 1.5  # kept: the next read is a lookup
    with override_settings(PLUGINS_PAGE_BUDGET=0.7):
        assert plugin_settings.PAGE_BUDGET == 0.7
    assert plugin_settings.PAGE_BUDGET == 1.5
    with pytest.raises(AttributeError, match="PLUGINS_NO_SUCH"):
        plugin_settings.NO_SUCH  # noqa: B018


def test_a_plugin_loaded_after_a_setting_changed_gets_the_new_limit(
    settings, plugin_dirs, db
) -> None:
    """The registry's hooks copy the limits a plugin's sandbox is made with; a changed
    setting reaches the next load at once (a test that lifted ``initialize`` to 60 s had its
    plugin abandoned after the suite's 0.5 s, and failed on a slow machine)."""
    from stonks_plugins.manager import manager
    from stonks_plugins.registry import plugin_registry

    settings.PLUGINS_TIMEOUTS = {**settings.PLUGINS_TIMEOUTS, "initialize": 60.0}
    settings.PLUGINS_CIRCUIT_THRESHOLD = 9
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    box = plugin_registry.sandbox("healthy-fixture")
    assert box.timeouts["initialize"] == 60.0
    assert box.circuit.threshold == 9

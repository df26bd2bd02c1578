"""Per-plugin logs (issue 15, item 7): what a plugin's code logs - through its logger or with a
plain ``logging.getLogger(__name__)`` in its modules, in-process or in its own child process -
is kept as that plugin's, masked and bounded, and shown at ``GET plugins/NAME/logs/``, by
``plugins logs NAME`` and on its console page; another plugin's records never mix in, and the
host's log sees what it saw before."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.logs import capture
from stonks_plugins.logs import store as log_store
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginLogRecord
from stonks_plugins.redaction import MASK, forget_all
from stonks_plugins.registry import plugin_registry
from tests.cli import cli, cli_json
from tests.conftest import fast_process_plugins

pytestmark = pytest.mark.django_db

BROKER = "logs-broker"
NEIGHBOUR = "logs-neighbour"
PASSWORD = "pw-Logs-7Hq2-omega"
OWN_LOGGER = "stonks_plugins.plugin.logs_broker"
SERVICE_LOGGER = "_stonks_plugin_pkgs.logs_broker.logsbroker.services"


@pytest.fixture(autouse=True)
def _clean(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    forget_all()  # a secret known from an earlier test would mask this test's output
    yield
    forget_all()


@pytest.fixture
def reader(django_user_model) -> APIClient:  # type: ignore[no-untyped-def]
    """A dashboard's token with the view permission only."""
    user = django_user_model.objects.create_user("reader", "reader@x.io", None)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="stonks_plugins", codename="view_plugin")
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def read_portfolio(name: str, times: int = 1) -> None:
    service = BrokerFactory().create_service(name, ServiceType.PORTFOLIO)
    for _ in range(times):
        assert service.get_portfolio()


def api_logs(client: APIClient, name: str, **query: Any) -> list[dict[str, Any]]:
    resp = client.get(f"/api/v1/plugins/{name}/logs/", query)
    assert resp.status_code == 200, resp.content
    return resp.json()["results"]  # type: ignore[no-any-return]


@pytest.fixture
def logged(plugin_dirs, applied) -> None:  # type: ignore[no-untyped-def]
    """logs-broker configured with a password, read and health-checked; logs-neighbour
    read; everything flushed; then a process that knows no secret reads it all."""
    plugin_dirs.add(BROKER)
    plugin_dirs.add(NEIGHBOUR)
    manager.sync()
    applied(
        manager.set_config,
        BROKER,
        {"credentials": {"username": "ana", "password": PASSWORD}},
        actor="ops",
    )
    assert manager.get_config(BROKER).status == "active"  # initialize() ran with it
    read_portfolio(BROKER)
    read_portfolio(NEIGHBOUR)
    manager.check_health(BROKER)  # logs a traceback quoting the password; stores the logs
    log_store.flush(force=True)
    forget_all()


def test_a_plugins_records_reach_the_api_newest_first_masked_and_its_own(logged, reader) -> None:
    records = api_logs(reader, BROKER)
    messages = [r["message"] for r in records]
    # Through its own logger, and through its service module's plain logger.
    assert f"logging in as ana with password {MASK}" in messages
    assert "services module imported" in messages
    assert "read 1 position (api_key=********)" in messages
    loggers = {r["logger"] for r in records}
    assert loggers == {OWN_LOGGER, SERVICE_LOGGER}
    # Newest first: the health probe ran last, the module was imported first.
    assert messages[0] == "health probe failed"
    assert messages[-1] == "services module imported"
    stamps = [r["at"] for r in records]
    assert stamps == sorted(stamps, reverse=True)
    probe = records[0]
    assert (probe["level"], probe["levelno"]) == ("ERROR", logging.ERROR)
    assert "ConnectionError: probe refused password ********" in probe["exc_text"]
    assert probe["process"] == f"{socket.gethostname()}:{os.getpid()}"
    # The neighbour's reads are the neighbour's.
    assert not any("neighbour" in m for m in messages)
    neighbour = api_logs(reader, NEIGHBOUR)
    assert [r["message"] for r in neighbour] == ["neighbour read its own position"]
    assert neighbour[0]["plugin"] == NEIGHBOUR
    # The password is nowhere, even in the rows themselves.
    assert not PluginLogRecord.objects.filter(message__contains=PASSWORD).exists()
    assert not PluginLogRecord.objects.filter(exc_text__contains=PASSWORD).exists()
    assert PASSWORD not in reader.get(f"/api/v1/plugins/{BROKER}/logs/").content.decode()


def test_the_api_filters_by_least_level_pages_and_needs_the_view_permission(
    logged, reader, django_user_model
) -> None:
    warnings = api_logs(reader, BROKER, level="WARNING")
    assert [r["level"] for r in warnings] == ["ERROR", "WARNING"]
    assert [r["level"] for r in api_logs(reader, BROKER, level="ERROR")] == ["ERROR"]
    # DEBUG is below PLUGINS_LOG_LEVEL (INFO): never kept.
    assert all(r["level"] != "DEBUG" for r in api_logs(reader, BROKER, level="DEBUG"))

    page = reader.get(f"/api/v1/plugins/{BROKER}/logs/", {"page_size": 2}).json()
    assert page["count"] == len(api_logs(reader, BROKER)) and len(page["results"]) == 2
    assert page["next"] and page["previous"] is None

    bad = reader.get(f"/api/v1/plugins/{BROKER}/logs/", {"level": "loud"})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0]["path"] == "level"
    assert reader.get("/api/v1/plugins/no-such-plugin/logs/").status_code == 404

    stranger = django_user_model.objects.create_user("stranger", "s@x.io", None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=stranger).key}")
    assert client.get(f"/api/v1/plugins/{BROKER}/logs/").status_code == 403
    assert APIClient().get(f"/api/v1/plugins/{BROKER}/logs/").status_code == 401


def test_the_cli_shows_the_same_records(logged) -> None:
    code, rows = cli_json("logs", BROKER)
    assert code == 0
    assert rows[0]["message"] == "health probe failed" and rows[0]["level"] == "ERROR"
    assert f"logging in as ana with password {MASK}" in [r["message"] for r in rows]
    assert {r["plugin"] for r in rows} == {BROKER}

    code, out, _ = cli("logs", BROKER, "--level", "warning", "--limit", "1")
    assert code == 0
    lines = out.splitlines()
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR +stonks_plugins\.plugin\.logs_broker: "
        r"health probe failed$",
        lines[0],
    )
    assert any("ConnectionError: probe refused password ********" in line for line in lines)
    assert "read 1 position" not in out  # --limit 1
    assert PASSWORD not in out

    assert cli("logs", "no-such-plugin")[0] == 1
    # Bad usage (exit 2 from manage.py itself).
    with pytest.raises(CommandError, match="'loud' is not one of DEBUG, INFO"):
        cli("logs", BROKER, "--level", "loud")
    with pytest.raises(CommandError, match="must be a whole number of at least 1"):
        cli("logs", BROKER, "--limit", "0")


def test_the_console_page_has_a_logs_section(logged, admin_client_logged) -> None:
    pk = Plugin.objects.get(name=BROKER).pk
    page = admin_client_logged.get(f"/admin/stonks_plugins/plugin/{pk}/change/").content.decode()
    section = page[page.index('id="logs"') :]
    section = section[: section.index("</section>")]
    assert f"logging in as ana with password {MASK}" in section
    assert "read 1 position (api_key=********)" in section
    assert 'data-log-level="ERROR"' in section and "probe refused password ********" in section
    assert SERVICE_LOGGER in section
    assert "neighbour" not in section
    assert PASSWORD not in page

    other = Plugin.objects.get(name=NEIGHBOUR).pk
    page = admin_client_logged.get(f"/admin/stonks_plugins/plugin/{other}/change/")
    assert "neighbour read its own position" in page.content.decode()


def test_each_plugin_keeps_only_its_newest_records(plugin_dirs, settings, reader) -> None:
    settings.PLUGINS_LOG_RECORDS = 5
    plugin_dirs.add(BROKER)
    manager.sync()
    read_portfolio(BROKER, times=8)
    log_store.flush(force=True)
    records = api_logs(reader, BROKER)
    assert len(records) == 5
    assert {r["message"] for r in records} == {"read 1 position (api_key=********)"}
    newest = records[0]["id"]
    read_portfolio(BROKER, times=2)
    log_store.flush(force=True)
    records = api_logs(reader, BROKER)
    assert len(records) == 5 and records[0]["id"] > newest
    # The retention job trims too, e.g. after the setting was lowered.
    settings.PLUGINS_LOG_RECORDS = 2
    assert log_store.trim_all() == 3
    assert PluginLogRecord.objects.filter(plugin__name=BROKER).count() == 2


def test_least_level_setting_and_the_host_log_as_before(plugin_dirs, settings, caplog) -> None:
    settings.PLUGINS_LOG_LEVEL = "DEBUG"
    plugin_dirs.add(BROKER)
    with caplog.at_level(logging.INFO):
        manager.sync()  # loads it: initialize() logs INFO and DEBUG
        read_portfolio(BROKER)
    log_store.flush(force=True)
    kept = list(manager.logs(BROKER).values_list("level", "message"))
    assert (logging.DEBUG, "debug detail: session cache warmed") in kept
    # The host's log shows what it showed before: INFO and up, not the DEBUG kept above.
    assert "logging in as nobody with password none" in caplog.text
    assert "read 1 position" in caplog.text
    assert "debug detail" not in caplog.text
    # Unloaded: its loggers are as they were.
    manager.unload_plugin(BROKER)
    assert capture.attached(BROKER) == []
    assert logging.getLogger(OWN_LOGGER).level == logging.NOTSET
    assert logging.getLogger(OWN_LOGGER).propagate


def test_reads_write_nothing_and_records_wait_for_the_flush(plugin_dirs, reader) -> None:
    plugin_dirs.add(BROKER)
    manager.sync()
    read_portfolio(BROKER)
    log_store.flush(force=True)
    before = PluginLogRecord.objects.count()
    read_portfolio(BROKER)  # logged now, in memory only
    assert len(api_logs(reader, BROKER)) == before
    assert PluginLogRecord.objects.count() == before
    assert log_store.flush(force=True) == 1
    assert len(api_logs(reader, BROKER)) == before + 1


def test_records_from_elsewhere_are_masked_when_stored(plugin_dirs, applied, reader) -> None:
    """Records a child process sends are not scrubbed on their way in: the store masks them
    with the plugin's configured secrets."""
    plugin_dirs.add(BROKER)
    manager.sync()
    applied(
        manager.set_config,
        BROKER,
        {"credentials": {"username": "ana", "password": PASSWORD}},
        actor="ops",
    )
    forget_all()  # this process knows no secret: only the stored config does
    capture.clear()
    entry = capture.Entry(time.time(), logging.WARNING, "child", f"tried {PASSWORD} twice")
    capture.feed(BROKER, [entry])
    assert log_store.flush(force=True) == 1
    assert api_logs(reader, BROKER)[0]["message"] == f"tried {MASK} twice"


@pytest.mark.slow
def test_a_process_isolated_plugins_records_come_from_its_child(
    plugin_dirs, settings, reader
) -> None:
    fast_process_plugins(settings, call_timeout=5.0)
    from stonks_plugins import reporting

    reporting.configure(plugin_registry)
    plugin_dirs.add("logs-proc")
    plugin_dirs.add(NEIGHBOUR)
    manager.sync()
    read_portfolio("logs-proc")
    read_portfolio(NEIGHBOUR)
    host = plugin_registry.loaded()["logs-proc"].host
    assert host is not None and host.pid not in (None, os.getpid())
    child = host.pid
    log_store.flush(force=True)
    records = api_logs(reader, "logs-proc")
    messages = [r["message"] for r in records]
    assert messages == [
        "child lookup failed",
        f"child read 1 position in pid {child}",
        f"child started in pid {child}",
    ]
    assert "KeyError: 'missing'" in records[0]["exc_text"]
    assert {r["process"] for r in records} == {f"{socket.gethostname()}:{child}"}
    assert {r["logger"] for r in records} == {
        "stonks_plugins.plugin.logs_proc",
        "_stonks_plugin_pkgs.logs_proc.logsproc.services",
    }
    assert [r["message"] for r in api_logs(reader, NEIGHBOUR)] == [
        "neighbour read its own position"
    ]
    manager.unload_plugin("logs-proc")


def test_an_instance_keeps_logs_of_its_own(plugin_dirs, reader) -> None:
    plugin_dirs.add(BROKER)
    manager.sync()
    manager.add_instance(BROKER, "work")
    capture.clear()  # only what the reads below log
    read_portfolio(f"{BROKER}:work", times=2)
    read_portfolio(BROKER)
    log_store.flush(force=True)
    own = api_logs(reader, f"{BROKER}:work")
    assert [r["message"] for r in own] == ["read 1 position (api_key=********)"] * 2
    assert {r["plugin"] for r in own} == {f"{BROKER}:work"}
    assert len(api_logs(reader, BROKER)) == 1


def test_the_host_takes_from_a_child_only_well_formed_records() -> None:
    """A plugin's child is not trusted: what rides on its replies is checked field by field,
    and a reply without records is read as it always was."""
    from stonks_plugins.sandbox.process import log_relay

    capture.clear()
    good = (time.time(), logging.WARNING, "child", "kept", "", 4242)
    hostile = [
        good,
        ("too", "short"),
        (1.0, "30", "x", "y", "", 1),
        "text",
        (1.0, 30, b"x", "y", "", 1),
    ]
    assert log_relay.unwrap(BROKER, ("logs", hostile, ("ok", 7))) == ("ok", 7)
    assert log_relay.unwrap(BROKER, ("ok", 8)) == ("ok", 8)
    assert log_relay.unwrap(BROKER, ("logs", "not a list", ["not a tuple"]))[0] == "err"
    assert [e.message for e in capture.take()[BROKER]] == ["kept"]

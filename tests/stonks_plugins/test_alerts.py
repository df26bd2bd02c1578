"""Alerts (issue 15, item 6): a plugin that fails, turns unhealthy or recovers is announced by
mail and by a JSON POST - received here by a real SMTP server (aiosmtpd) and a real HTTP
server - once per rate-limit window, a recovery only after a failure was announced, with no
secret in either, and without a dead or hanging target ever holding up the state change.

The state changes are real (sync, reload, health checks, ``store.fail``/``store.recover`` in
committed transactions): the alerts come from the receivers wired in ``AppConfig.ready``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction

from stonks_plugins import store, tasks
from stonks_plugins.discovery.candidate import Problem
from stonks_plugins.errors import ReasonCode
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.monitoring import alerts, notify
from stonks_plugins.monitoring.alerts import Alert, AlertKind
from stonks_plugins.redaction import MASK, forget_all
from tests.alert_receivers import HOOK_TOKEN, SETTLE, Hooks, Inbox, free_port

pytestmark = pytest.mark.django_db(transaction=True)

SITE_URL = "https://stonks.example.com"
OPS = ["ops@example.com", "oncall@example.com"]
PASSWORD = "pw-7Hq2-alerts-zeta"

Alerting = tuple[Inbox, Hooks]
"""The SMTP server's inbox and the webhook receiver, as the ``alerting`` fixture gives them."""


@pytest.fixture
def alerting(
    settings: Any, smtp: tuple[Inbox, int], hooks: tuple[Hooks, str]
) -> Iterator[Alerting]:
    """Alerts on, to the local SMTP server and webhook receiver; a fresh rate-limit window."""
    inbox, port = smtp
    got, url = hooks
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "", ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.PLUGINS_ALERT_EMAILS = OPS
    settings.PLUGINS_ALERT_WEBHOOKS = [url]
    settings.PLUGINS_ALERT_SITE_URL = SITE_URL
    settings.PLUGINS_ALERT_RATE_LIMIT = 300.0
    settings.PLUGINS_ALERT_TIMEOUT = 10.0
    cache.clear()
    forget_all()
    yield inbox, got
    got.hold.set()
    assert notify.outbound.wait_idle(SETTLE)
    cache.clear()
    forget_all()


def settle() -> None:
    """Wait for the alert thread to have sent everything queued so far. Tests settle after
    each change: the test database (SQLite in memory, shared cache) refuses a write at once
    while another thread reads - a file database in WAL mode, or PostgreSQL, does not."""
    assert notify.outbound.wait_idle(SETTLE), "the alert thread did not finish"


def _fail(name: str, code: ReasonCode, message: str) -> None:
    """Put a plugin in error as the runtime does: a committed transition."""
    with transaction.atomic():
        store.fail(store.locked(name), Problem(code, message))


def _plugin(name: str, state: str = "active") -> Plugin:
    return Plugin.objects.create(name=name, source="directory", state=state)


# -- tests --------------------------------------------------------------------------------------
def test_a_plugin_that_fails_to_import_is_announced_by_mail_and_webhook(
    plugin_dirs: Any, alerting: Alerting
) -> None:
    inbox, got = alerting
    plugin_dirs.add("import-error")
    manager.sync()
    row = Plugin.objects.get(name="import-error")
    assert (row.state, row.error_code) == ("error", "import_error")
    settle()

    assert inbox.subjects() == ["[Stonks Overwatch] import-error failed: import_error"]
    assert sorted(inbox.recipients[0]) == sorted(OPS)
    body = inbox.bodies()[0]
    assert "Plugin import-error failed on stonks.example.com." in body
    assert "Reason: import_error" in body
    assert f"Message: {row.error_message}" in body
    link = f"{SITE_URL}/admin/stonks_plugins/plugin/{row.pk}/change/"
    assert f"Console: {link}" in body

    assert len(got.requests) == 1
    request = got.requests[0]
    assert request["path"] == f"/hooks/stonks?token={HOOK_TOKEN}"
    assert request["headers"]["Content-Type"].startswith("application/json")
    payload = got.payloads()[0]
    assert {k: payload[k] for k in ("plugin", "instance", "name", "kind", "state")} == {
        "plugin": "import-error",
        "instance": "",
        "name": "import-error",
        "kind": "failed",
        "state": "error",
    }
    assert payload["reason_code"] == "import_error"
    assert payload["message"] == row.error_message
    assert payload["site"] == "stonks.example.com"
    assert payload["link"] == link
    assert payload["summary"] == inbox.subjects()[0]
    assert datetime.fromisoformat(payload["at"]).tzinfo is not None


def test_a_repeated_failure_is_held_back_and_a_recovery_answers_the_one_sent(
    alerting: Alerting, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, got = alerting
    _plugin("flaky-broker")
    held_back = alerts.suppressed[("flaky-broker", "failed")]
    with caplog.at_level(logging.DEBUG, logger="stonks_plugins.monitoring.alerts"):
        _fail("flaky-broker", ReasonCode.TIMEOUT, "initialize() did not return within 10 s")
        settle()
        store.recover("flaky-broker", "recovered: loaded again by the background retry")
        settle()
        _fail("flaky-broker", ReasonCode.TIMEOUT, "initialize() did not return, again")
        settle()
        store.recover("flaky-broker", "recovered: loaded again by the background retry")
        settle()

    assert Plugin.objects.get(name="flaky-broker").state == "active"  # every change happened
    assert inbox.subjects() == [
        "[Stonks Overwatch] flaky-broker failed: timeout",
        "[Stonks Overwatch] flaky-broker recovered",
    ]
    payloads = got.payloads()
    assert [p["kind"] for p in payloads] == ["failed", "recovered"]
    assert payloads[1]["state"] == "active"
    assert payloads[1]["reason_code"] is None
    assert payloads[1]["message"] == "recovered: loaded again by the background retry"
    assert "Plugin flaky-broker recovered on stonks.example.com." in inbox.bodies()[1]
    # The second failure fell in the window: counted and logged, not sent; the second
    # recovery answered nothing that was sent, so it stayed quiet too.
    assert alerts.suppressed[("flaky-broker", "failed")] == held_back + 1
    assert "alert failed of plugin flaky-broker suppressed" in caplog.text


def test_with_the_rate_limit_off_every_failure_and_recovery_is_sent(
    alerting: Alerting, settings: Any
) -> None:
    inbox, got = alerting
    settings.PLUGINS_ALERT_RATE_LIMIT = 0
    _plugin("flaky-broker")
    for _ in range(2):
        _fail("flaky-broker", ReasonCode.CIRCUIT_OPEN, "5 calls failed in a row")
        settle()
        store.recover("flaky-broker", "recovered")
        settle()
    assert [p["kind"] for p in got.payloads()] == ["failed", "recovered"] * 2
    assert len(inbox.raw) == 4


def test_a_plugin_turning_unhealthy_and_back_is_announced_once_each_way(
    plugin_dirs: Any, alerting: Alerting, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, got = alerting
    name = "fault-health-flaps"
    settings.PLUGINS_HEALTH_FAILURE_THRESHOLD = 10  # stays active: health alerts only
    plugin_dirs.add(name)
    manager.sync()
    assert Plugin.objects.get(name=name).state == "active"

    statuses = ["healthy", "unhealthy", "unhealthy", "degraded", "healthy", "unhealthy"]
    seen = []
    for status in statuses:
        monkeypatch.setenv("FAULT_HEALTH_FLAPS", status)
        seen.append(manager.check_health(name)[0].status.status.value)
        settle()
    assert seen == statuses

    assert inbox.subjects() == [
        "[Stonks Overwatch] fault-health-flaps is unhealthy: broker_down",
        "[Stonks Overwatch] fault-health-flaps recovered",
    ]
    payloads = got.payloads()
    assert [(p["kind"], p["health"], p["state"]) for p in payloads] == [
        ("unhealthy", "unhealthy", "active"),
        ("recovered", "degraded", "active"),  # it works again, if slowly
    ]
    assert payloads[0]["message"] == "broker API answers 503"
    assert payloads[0]["reason_code"] == "broker_down"
    assert "Health: unhealthy" in inbox.bodies()[0]
    # The last turn to unhealthy falls in the window of the first: held back.
    assert alerts.suppressed[(name, "unhealthy")] >= 1


def test_no_secret_of_the_plugin_reaches_a_mail_or_a_webhook(
    plugin_dirs: Any, alerting: Alerting
) -> None:
    inbox, got = alerting
    broker = "secret-leaky-broker"
    plugin_dirs.add(broker)
    manager.sync()
    manager.set_config(broker, {"credentials": {"username": "ana", "password": PASSWORD}})
    manager.reload(broker)  # initialize() quotes the password in its exception
    row = Plugin.objects.get(name=broker)
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    settle()
    # A worker sending an alert whose text still holds the password (a message from before
    # the secret was known, say) masks it too.
    leaky = Alert(broker, AlertKind.FAILED, "error", code="initialize_failed",
                  message=f"login failed for ana using {PASSWORD}")  # fmt: skip
    result = tasks.send_alert.apply(args=[leaky.as_dict()]).get()
    assert result["failed"] == []

    assert len(inbox.raw) == 2 and len(got.requests) == 2
    for raw in [*inbox.raw, *(r["body"] for r in got.requests)]:
        assert PASSWORD.encode() not in raw
    for body in inbox.bodies():
        assert "login failed for ana using" in body
        assert MASK in body
    for payload in got.payloads():
        assert "login failed for ana using" in payload["message"]
        assert PASSWORD not in json.dumps(payload)


def test_a_dead_or_hanging_target_never_holds_up_the_state_change(
    alerting: Alerting, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, got = alerting
    live = settings.PLUGINS_ALERT_WEBHOOKS[0]
    dead_port = free_port()  # nothing listens there
    path_token, userinfo_password = "T0A1B2/hook-path-secret-77", "hook-userinfo-pw-99"
    dead = f"http://bot:{userinfo_password}@127.0.0.1:{dead_port}/services/{path_token}?t=x"
    settings.PLUGINS_ALERT_WEBHOOKS = [dead, live]
    _plugin("flaky-broker")
    _plugin("other-broker")

    # The live receiver holds its answer: the change is committed and visible all the same,
    # while the alert thread is still waiting for the receiver.
    got.hold.clear()
    with caplog.at_level(logging.INFO, logger="stonks_plugins.monitoring"):
        _fail("flaky-broker", ReasonCode.CIRCUIT_OPEN, "5 calls failed in a row")
        assert Plugin.objects.get(name="flaky-broker").state == "error"
        assert got.arrived.wait(SETTLE)
        assert not notify.outbound.wait_idle(0)  # still sending, and nobody waited for it
        got.hold.set()
        settle()

        # A dead mail server: the webhook still gets the next alert.
        settings.EMAIL_PORT = free_port()
        settings.EMAIL_HOST_PASSWORD = "smtp-password-never-logged"
        _fail("other-broker", ReasonCode.TIMEOUT, "initialize() did not return")
        settle()

    assert inbox.subjects() == ["[Stonks Overwatch] flaky-broker failed: circuit_open"]
    assert [p["name"] for p in got.payloads()] == ["flaky-broker", "other-broker"]
    assert Plugin.objects.get(name="other-broker").state == "error"
    log = caplog.text
    assert (
        f"alert failed of plugin flaky-broker could not be sent by webhook 1 "
        f"(http://127.0.0.1:{dead_port}/...)" in log
    )
    assert "alert failed of plugin other-broker could not be sent by mail" in log
    for secret in (path_token, userinfo_password, "t=x", HOOK_TOKEN, "smtp-password-never"):
        assert secret not in log


def test_an_instance_is_named_by_its_plugin_and_label() -> None:
    alert = Alert("degiro-broker:work", AlertKind.FAILED, "error", code="import_error")
    rendered = alerts.render(alert, "stonks.example.com")
    assert rendered.subject == "[Stonks Overwatch] degiro-broker:work failed: import_error"
    assert rendered.payload["plugin"] == "degiro-broker"
    assert rendered.payload["instance"] == "work"
    assert "Plugin degiro-broker (instance work) failed on stonks.example.com." in rendered.body
    assert Alert.from_dict(alert.as_dict()) == alert

"""Issue 13, reproduction 3: a plugin that puts its password into an exception or health
message. The text is masked where it enters the system - the database rows the API, the
console and the CLI read, and the log - with the plugin's actual secret values, while the
rest of the message stays readable."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from stonks_plugins import store
from stonks_plugins.config.system import secret_values
from stonks_plugins.errors import ReasonCode
from stonks_plugins.manager import manager
from stonks_plugins.models import HealthCheck, Plugin, PluginConfig, PluginEvent
from stonks_plugins.redaction import MASK, forget_all
from stonks_plugins.sandbox import SandboxError

pytestmark = pytest.mark.django_db

BROKER = "secret-leaky-broker"
SERVICE = "secret-leaky-service"
PASSWORD = "pw-7Hq2-leaky-zeta"


@pytest.fixture(autouse=True)
def _isolated(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    forget_all()  # a secret known from an earlier test would mask this test's output
    yield
    forget_all()


def cli(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.suppress(SystemExit):  # exit 1: the plugin failed, which is expected
        call_command("plugins", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def surfaces(client, name: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Everything an operator reads about the plugin: API, console, CLI."""
    pk = Plugin.objects.get(name=name).pk
    pages = {
        "api detail": f"/api/v1/plugins/{name}/",
        "api list": "/api/v1/plugins/",
        "api events": f"/api/v1/plugins/{name}/events/",
        "api health": f"/api/v1/plugins/{name}/health/",
        "api config history": f"/api/v1/plugins/{name}/config/history/",
        "admin changelist": "/admin/stonks_plugins/plugin/",
        "admin change page": f"/admin/stonks_plugins/plugin/{pk}/change/",
        "admin events": "/admin/stonks_plugins/pluginevent/",
    }
    out = {}
    for label, url in pages.items():
        resp = client.get(url)
        assert resp.status_code == 200, (label, resp.status_code)
        out[label] = resp.content.decode()
    out["cli show"] = cli("show", name)
    out["cli show --json"] = cli("show", name, "--json")
    out["cli list --json"] = cli("list", "--json")
    out["cli events"] = cli("events", name)
    out["cli events --json"] = cli("events", name, "--json")
    return out


def store_password(applied, name: str) -> None:  # type: ignore[no-untyped-def]
    """An operator stores the plugin's credentials, ``PASSWORD`` among them; the version is
    applied."""
    applied(
        manager.set_config,
        name,
        {"credentials": {"username": "ana", "password": PASSWORD}},
        actor="ops",
    )


def assert_clean(texts: dict[str, str]) -> None:
    leaked = [label for label, text in texts.items() if PASSWORD in text]
    assert leaked == [], f"the password shows in: {leaked}"


def test_initialize_failure_with_the_password_from_a_stored_config(
    plugin_dirs, admin_client_logged, applied, caplog
) -> None:
    plugin_dirs.add(BROKER)
    manager.sync()
    store_password(applied, BROKER)
    assert manager.get_config(BROKER).status == "active"
    with caplog.at_level(logging.DEBUG):
        manager.reload(BROKER)  # initialize() runs with the password and quotes it
    row = Plugin.objects.get(name=BROKER)
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    assert f"login failed for ana using {MASK} (broker said no)" in row.error_message
    assert PASSWORD not in caplog.text
    assert "login failed for ana using" in caplog.text

    # The rows are clean, so every reader is, even one that knows no secret at all.
    forget_all()
    assert PASSWORD not in json.dumps(list(PluginEvent.objects.values("reason", "details")))
    texts = surfaces(admin_client_logged, BROKER)
    assert_clean(texts)
    assert "login failed for ana using" in texts["api detail"]
    assert "login failed for ana using" in texts["cli show"]
    assert "login failed for ana using" in texts["api events"]


def test_a_worker_that_applies_a_version_masks_its_password_from_then_on(
    plugin_dirs, applied
) -> None:
    from stonks_plugins.config.apply import apply_version
    from stonks_plugins.redaction import known_secrets, scrub_text

    plugin_dirs.add(BROKER)
    manager.sync()
    applied(
        manager.set_config, BROKER, {"credentials": {"username": "ana", "password": "old-pass-1"}}
    )
    manager.set_config(BROKER, {"credentials": {"password": PASSWORD}}, partial=True)
    pending = PluginConfig.objects.get(plugin__name=BROKER, status="pending")
    forget_all()  # the worker process: it has seen no secret of this plugin
    assert apply_version(BROKER, pending.version).applied
    assert PASSWORD in known_secrets(BROKER)  # read by the apply itself, no other query
    assert scrub_text(f"login failed using {PASSWORD}", known_secrets(BROKER)) == (
        f"login failed using {MASK}"
    )
    assert PASSWORD not in json.dumps(list(PluginEvent.objects.values("reason", "details")))


def test_initialize_failure_with_the_password_from_the_environment(
    plugin_dirs, admin_client_logged, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("STONKS_PLUGIN_SECRET_LEAKY_BROKER__CREDENTIALS__USERNAME", "bob")
    monkeypatch.setenv("STONKS_PLUGIN_SECRET_LEAKY_BROKER__CREDENTIALS__PASSWORD", PASSWORD)
    plugin_dirs.add(BROKER)
    with caplog.at_level(logging.DEBUG):
        manager.sync()
        admin_client_logged.get("/")  # first use, if sync did not load it
    row = Plugin.objects.get(name=BROKER)
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    assert f"login failed for bob using {MASK}" in row.error_message
    assert PASSWORD not in caplog.text
    assert PASSWORD in secret_values(BROKER)  # env overrides of secret fields count

    forget_all()
    assert_clean(surfaces(admin_client_logged, BROKER))


def test_service_and_health_failures_with_the_password(
    plugin_dirs, admin_client_logged, applied, caplog, settings
) -> None:
    plugin_dirs.add(SERVICE)
    manager.sync()
    store_password(applied, SERVICE)
    with caplog.at_level(logging.DEBUG):
        # A health check now, through the API (the fresh result) and the CLI.
        checked = admin_client_logged.post(f"/api/v1/plugins/{SERVICE}/health/")
        cli_health = cli("health", SERVICE, "--json")
        # Then the service fails on every page until its circuit opens.
        for _ in range(settings.PLUGINS_CIRCUIT_THRESHOLD):
            assert admin_client_logged.get("/").status_code == 200
    assert checked.status_code == 200
    assert PASSWORD not in checked.content.decode()
    assert "cannot log in with" in checked.content.decode()
    assert PASSWORD not in cli_health and "cannot log in with" in cli_health
    assert PASSWORD not in caplog.text

    failures = PluginEvent.objects.filter(plugin__name=SERVICE, kind="failure")
    assert failures.exists()
    assert any("session expired for" in e.reason for e in failures)
    health = HealthCheck.objects.filter(plugin__name=SERVICE).first()
    assert health is not None
    assert health.message == f"cannot log in with {MASK} (broker said no)"
    assert health.details == {"tried": f"basic {MASK}"}

    forget_all()
    texts = surfaces(admin_client_logged, SERVICE)
    assert_clean(texts)
    assert "cannot log in with" in texts["api health"]


def test_a_refused_config_does_not_store_the_new_password(
    plugin_dirs, admin_client_logged, applied
) -> None:
    """The plugin refuses the new config, quoting the password it was given: the version's
    message and the event are masked although that password was never live."""
    plugin_dirs.add(BROKER)
    folder = plugin_dirs.path / BROKER / "leakybroker" / "plugin.py"
    folder.write_text(
        folder.read_text("utf-8").replace(
            "        self.config = config  # takes effect at the next initialize (a reload)\n"
            "        return True\n",
            "        raise ValueError(f'refusing {config.password}')\n",
        ),
        "utf-8",
    )
    manager.sync()
    manager.load_plugin(BROKER)
    store_password(applied, BROKER)
    cfg = PluginConfig.objects.get(plugin__name=BROKER)
    assert cfg.status == "failed"
    assert cfg.message.endswith(f"ValueError: refusing {MASK}"), cfg.message
    forget_all()
    assert_clean(surfaces(admin_client_logged, BROKER))


def test_home_page_does_not_show_the_password_of_a_failing_broker(
    plugin_dirs, admin_client_logged, applied
) -> None:
    plugin_dirs.add(SERVICE)
    manager.sync()
    store_password(applied, SERVICE)
    home = admin_client_logged.get("/").content.decode()
    assert "session expired for" in home
    assert PASSWORD not in home


def test_a_failure_written_by_the_runtime_reads_the_secrets_once_and_masks_them(
    plugin_dirs, applied, monkeypatch
) -> None:
    """A serving process writes each failure of a plugin off the request path, beside its
    pages: its reason, its details and its event are masked with the plugin's secrets read
    once (each read is a query), not once for each of them."""
    plugin_dirs.add(BROKER)
    manager.sync()
    store_password(applied, BROKER)
    reads: list[str] = []
    read = store.plugin_secrets

    def counted(name: str) -> tuple[str, ...]:
        reads.append(name)
        return read(name)

    monkeypatch.setattr(store, "plugin_secrets", counted)
    error = SandboxError(
        BROKER,
        ReasonCode.INITIALIZE_FAILED,
        "initialize",
        f"login failed using {PASSWORD}",
        traceback=f'ConnectionError("refused {PASSWORD}")',
    )
    store.mark_failed(error)
    store.record_failure(BROKER, f"initialize failed: {error.message}", error.as_dict())
    assert reads == [BROKER, BROKER]  # one read for each of the two writes
    row = Plugin.objects.get(name=BROKER)
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    assert f"login failed using {MASK}" in row.error_message
    stored = json.dumps([row.error_details, list(PluginEvent.objects.values("reason", "details"))])
    assert PASSWORD not in stored and MASK in stored

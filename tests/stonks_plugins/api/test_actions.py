"""Acting through the API: every change goes through the manager, changes the plugin's state
as the admin and the CLI would, and is an event naming the user who asked."""

from __future__ import annotations

import pytest

from stonks_plugins.errors import PluginError, ReasonCode
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginEvent

from .helpers import API, error_of

pytestmark = pytest.mark.django_db

URL = f"{API}/plugins/healthy-fixture/"


@pytest.fixture
def healthy(plugin_dirs) -> Plugin:  # type: ignore[no-untyped-def]
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    plugin = Plugin.objects.get(name="healthy-fixture")
    assert plugin.state == "active"
    return plugin


def test_disable_then_enable_change_state_and_record_the_user(operator, healthy) -> None:
    response = operator.post(f"{URL}disable/")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["name"], data["state"], data["enabled"]) == ("healthy-fixture", "disabled", False)
    assert Plugin.objects.get(name="healthy-fixture").state == "disabled"
    assert PluginEvent.objects.filter(
        plugin__name="healthy-fixture", kind="action", reason="disabled", actor="olivia"
    ).exists()

    response = operator.post(f"{URL}enable/")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["enabled"]) == ("active", True)
    assert PluginEvent.objects.filter(reason="enabled", actor="olivia").exists()

    # The events endpoint shows it, newest first, with who did it.
    events = operator.get(f"{URL}events/").json()["results"]
    actions = [(e["reason"], e["actor"]) for e in events if e["kind"] == "action"]
    assert actions[:2] == [("enabled", "olivia"), ("disabled", "olivia")]
    transitions = [(e["from_state"], e["to_state"], e["actor"]) for e in events]
    assert ("active", "unloading", "olivia") in transitions
    assert ("disabled", "discovered", "olivia") in transitions


def test_reload_bumps_the_revision_and_records_the_user(operator, healthy) -> None:
    response = operator.post(f"{URL}reload/")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["revision"]) == ("active", 1)
    event = PluginEvent.objects.filter(kind="action", reason__startswith="reload").get()
    assert event.actor == "olivia"


def test_illegal_transition_is_a_409_and_changes_nothing(operator, healthy) -> None:
    operator.post(f"{URL}disable/")
    before = PluginEvent.objects.count()
    response = operator.post(f"{URL}reload/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert "cannot go from 'disabled'" in error["message"]
    plugin = Plugin.objects.get(name="healthy-fixture")
    assert (plugin.state, plugin.revision) == ("disabled", 0)
    assert PluginEvent.objects.count() == before


def test_a_plugin_failure_during_an_action_is_a_409_with_its_reason_code(
    operator, healthy, monkeypatch
) -> None:
    def fails(name: str, actor: str = "system") -> Plugin:
        raise PluginError(name, ReasonCode.TIMEOUT, "initialize() took longer than 10 s")

    monkeypatch.setattr(manager, "enable", fails)
    response = operator.post(f"{URL}enable/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "timeout" and "initialize() took longer" in error["message"]


@pytest.mark.parametrize("action", ["enable", "disable", "reload"])
def test_actions_on_an_unknown_plugin_are_404(operator, db, action: str) -> None:
    response = operator.post(f"{API}/plugins/ghost/{action}/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_sync_reports_what_changed_and_records_the_user(operator, plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    plugin_dirs.add("import-error")
    response = operator.post(f"{API}/plugins/sync/")
    assert response.status_code == 200
    report = response.json()
    assert set(report) == {"added", "updated", "missing", "activated", "failed", "unchanged"}
    assert sorted(report["added"]) == ["healthy-fixture", "import-error"]
    assert "healthy-fixture" in report["activated"]
    assert PluginEvent.objects.filter(plugin__name="healthy-fixture", actor="olivia").exists()
    # A second sync changes nothing.
    again = operator.post(f"{API}/plugins/sync/").json()
    assert again["added"] == [] and "healthy-fixture" in again["unchanged"]


def test_health_latest_and_history(operator, healthy) -> None:
    empty = operator.get(f"{URL}health/").json()
    assert empty == {
        "plugin": "healthy-fixture",
        "state": "active",
        "enabled": True,
        "consecutive_unhealthy": 0,
        "latest": None,
        "history": [],
    }
    ran = operator.post(f"{URL}health/")
    assert ran.status_code == 200
    result = ran.json()
    assert result["plugin"] == "healthy-fixture" and result["status"] == "healthy"
    assert result["state"] == "active" and result["error"] is None
    assert result["duration_ms"] >= 0
    operator.post(f"{URL}health/")

    report = operator.get(f"{URL}health/").json()
    assert len(report["history"]) == 2
    assert report["latest"] == report["history"][0]
    assert report["latest"]["status"] == "healthy" and report["latest"]["actor"] == "olivia"
    assert report["history"][0]["id"] > report["history"][1]["id"]  # newest first
    assert len(operator.get(f"{URL}health/?limit=1").json()["history"]) == 1


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1001"])
def test_health_limit_is_validated(operator, healthy, limit: str) -> None:
    response = operator.get(f"{URL}health/?limit={limit}")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [(d["path"], d["location"]) for d in error["details"]] == [("limit", "query")]


def test_health_of_a_plugin_in_error_says_why(operator, plugin_dirs) -> None:
    plugin_dirs.add("import-error")
    manager.sync()
    result = operator.post(f"{API}/plugins/import-error/health/").json()
    assert result["status"] == "unhealthy"
    assert result["state"] == "error" and result["error"]["code"] == "import_error"


def test_metrics_show_calls_and_the_circuit(operator, healthy, admin_client_logged) -> None:
    admin_client_logged.get("/")  # the home page calls the plugin's portfolio service
    response = operator.get(f"{URL}metrics/")
    assert response.status_code == 200
    data = response.json()
    assert data["plugin"] == "healthy-fixture" and isinstance(data["process"], int)
    assert data["circuit"]["state"] == "closed"
    assert data["metrics"]["__total__"]["calls"] >= 1
    assert any("histogram" in stats for op, stats in data["metrics"].items() if op != "__total__")


def test_events_are_paged_newest_first_and_filtered_by_kind(operator, healthy) -> None:
    for _ in range(3):
        operator.post(f"{URL}disable/")
        operator.post(f"{URL}enable/")
    total = PluginEvent.objects.filter(plugin=healthy).count()
    first = operator.get(f"{URL}events/?page_size=5").json()
    assert first["count"] == total and len(first["results"]) == 5 and first["next"]
    stamps = [(e["at"], e["id"]) for e in first["results"]]
    assert stamps == sorted(stamps, reverse=True)
    actions = operator.get(f"{URL}events/?kind=action").json()
    assert actions["count"] == 6
    assert {e["kind"] for e in actions["results"]} == {"action"}
    assert set(actions["results"][0]) == {
        "id",
        "plugin",
        "kind",
        "from_state",
        "to_state",
        "reason",
        "actor",
        "details",
        "at",
    }
    bad = operator.get(f"{URL}events/?kind=party")
    assert bad.status_code == 400 and error_of(bad)["details"][0]["path"] == "kind"


def test_events_and_errors_never_show_secrets(operator, healthy) -> None:
    PluginEvent.objects.create(
        plugin=healthy,
        kind="failure",
        reason="login failed for user bob password=hunter2",
        details={
            "traceback": "Traceback...\nValueError: {'api_key': 'AKIA-SECRET-1'}",
            "config": {"username": "bob", "password": "hunter2", "token": "t0k3n-value"},
            "url": "https://bob:hunter2@broker.example/api",
        },
    )
    Plugin.objects.filter(pk=healthy.pk).update(
        error_code="initialize_failed",
        error_message="initialize() failed: login refused (password=pa55-in-message)",
        error_details=[{"code": "import_error", "traceback": "secret='s3cr3t-v4lue' in conf"}],
    )
    text = operator.get(f"{URL}events/?kind=failure").content.decode()
    text += operator.get(URL).content.decode() + operator.get(f"{API}/plugins/").content.decode()
    for secret in ("hunter2", "AKIA-SECRET-1", "t0k3n-value", "s3cr3t-v4lue", "pa55-in-message"):
        assert secret not in text
    event = operator.get(f"{URL}events/?kind=failure").json()["results"][0]
    assert event["details"]["config"]["username"] == "bob"  # the rest is intact
    assert "Traceback" in event["details"]["traceback"]

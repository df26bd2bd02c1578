"""Bulk actions and the plugin page's buttons: every change goes through the manager, is an
event with the operator's username, and is reported plugin by plugin — errors included."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import messages

from stonks_plugins.manager import manager
from stonks_plugins.models import HealthCheck, Plugin, PluginEvent

from .conftest import PLUGINS, change_url

pytestmark = pytest.mark.django_db


def act(client: Any, action: str, *names: str) -> Any:
    """Select ``names`` in the list, choose ``action``, press Go."""
    pks = [Plugin.objects.get(name=n).pk for n in names]
    return client.post(
        PLUGINS, {"action": action, "_selected_action": pks, "index": "0"}, follow=True
    )


def reported(response: Any) -> dict[str, int]:
    """Message text -> level."""
    assert response.status_code == 200
    return {str(m): m.level for m in response.context["messages"]}


def state(name: str) -> str:
    return Plugin.objects.get(name=name).state


def test_the_list_offers_the_five_actions(console, operator) -> None:  # type: ignore[no-untyped-def]
    choices = dict(operator.get(PLUGINS).context["action_form"].fields["action"].choices)
    assert {
        "enable_plugins",
        "disable_plugins",
        "reload_plugins",
        "check_health",
        "sync",
    } <= set(choices)
    assert "delete_selected" not in choices


def test_disable_then_enable_through_the_manager_as_the_user(console, operator) -> None:  # type: ignore[no-untyped-def]
    shown = reported(act(operator, "disable_plugins", "healthy-fixture", "config-fixture"))
    assert shown == {
        "Disabled config-fixture: now disabled": messages.SUCCESS,
        "Disabled healthy-fixture: now disabled": messages.SUCCESS,
    }
    assert state("healthy-fixture") == state("config-fixture") == "disabled"
    ours = PluginEvent.objects.filter(plugin__name="healthy-fixture", actor="ops")
    assert ours.filter(kind="action", reason="disabled").exists()
    assert ours.filter(kind="transition", to_state="disabled").exists()

    shown = reported(act(operator, "enable_plugins", "healthy-fixture"))
    assert shown == {"Enabled healthy-fixture: now active": messages.SUCCESS}
    assert state("healthy-fixture") == "active"
    assert ours.filter(kind="action", reason="enabled").exists()
    assert ours.filter(kind="transition", to_state="active").exists()


def test_reload_reports_each_plugin_and_one_refusal_does_not_stop_the_rest(
    console, operator
) -> None:  # type: ignore[no-untyped-def]
    manager.disable("config-fixture", actor="setup")
    shown = reported(act(operator, "reload_plugins", "config-fixture", "healthy-fixture"))
    refusal = next(text for text in shown if text.startswith("Could not reload config-fixture"))
    assert shown[refusal] == messages.ERROR
    assert "cannot go from 'disabled'" in refusal
    assert shown["Reloaded healthy-fixture: now active"] == messages.SUCCESS
    healthy = Plugin.objects.get(name="healthy-fixture")
    assert healthy.revision == 1
    assert healthy.events.filter(reason="reload (revision 1)", actor="ops").exists()
    assert Plugin.objects.get(name="config-fixture").revision == 0


def test_check_health_stores_results_with_the_user_and_reports_failures(console, operator) -> None:  # type: ignore[no-untyped-def]
    console.add("incompatible-api")
    manager.sync(actor="setup")
    shown = reported(act(operator, "check_health", "healthy-fixture", "incompatible-api"))
    healthy = next(t for t in shown if t.startswith("Health of healthy-fixture: healthy"))
    assert shown[healthy] == messages.SUCCESS
    bad = next(t for t in shown if t.startswith("Health of incompatible-api: unhealthy"))
    assert shown[bad] == messages.ERROR and "incompatible_api" in bad
    checks = HealthCheck.objects.filter(actor="ops")
    assert {(c.plugin.name, c.status) for c in checks} == {
        ("healthy-fixture", "healthy"),
        ("incompatible-api", "unhealthy"),
    }
    assert "so-health-healthy" in operator.get(PLUGINS).content.decode()


def test_sync_discovers_new_plugins_as_the_user_and_reports_failures(console, operator) -> None:  # type: ignore[no-untyped-def]
    console.add("dep-base")
    console.add("incompatible-api")
    shown = reported(act(operator, "sync", "healthy-fixture"))  # the selection is ignored
    summary = next(t for t in shown if t.startswith("Sync: "))
    assert "2 added" in summary and "1 failed" in summary
    failed = next(t for t in shown if t.startswith("Sync: incompatible-api failed"))
    assert shown[failed] == messages.ERROR and "incompatible_api" in failed
    assert shown["Sync: dep-base added"] == messages.SUCCESS
    assert PluginEvent.objects.filter(plugin__name="dep-base", kind="discovery", actor="ops")


def test_sync_now_button_posts_only(console, operator) -> None:  # type: ignore[no-untyped-def]
    assert operator.get(f"{PLUGINS}sync-now/").status_code == 405
    console.add("dep-base")
    response = operator.post(f"{PLUGINS}sync-now/", follow=True)
    assert response.redirect_chain[-1][0] == PLUGINS
    assert "Sync: dep-base added" in reported(response)
    assert Plugin.objects.get(name="dep-base").state == "active"


def test_plugin_page_buttons_run_one_action(console, operator) -> None:  # type: ignore[no-untyped-def]
    url = change_url("healthy-fixture")
    html = operator.get(url).content.decode()
    for verb in ("enable", "disable", "reload", "check_health"):
        assert f'data-action="{verb}"' in html
    response = operator.post(f"{url[: -len('change/')]}do/disable/", follow=True)
    assert response.redirect_chain[-1][0] == url
    assert reported(response) == {"Disabled healthy-fixture: now disabled": messages.SUCCESS}
    assert PluginEvent.objects.filter(plugin__name="healthy-fixture", actor="ops").exists()
    response = operator.post(f"{url[: -len('change/')]}do/check_health/", follow=True)
    assert any(t.startswith("Health of healthy-fixture: unhealthy") for t in reported(response))
    assert operator.post(f"{url[: -len('change/')]}do/delete/").status_code == 403
    assert operator.get(f"{url[: -len('change/')]}do/disable/").status_code == 405

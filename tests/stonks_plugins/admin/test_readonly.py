"""Read-only staff (``view_plugin`` only) see the whole console and change nothing: no
actions or buttons, a disabled config form, and every POST refused with 403."""

from __future__ import annotations

import pytest

from stonks_plugins.admin.forms import BASE_VERSION_FIELD, SUBMIT_FIELD
from stonks_plugins.manager import manager
from stonks_plugins.models import HealthCheck, Plugin, PluginConfig, PluginEvent

from .conftest import GOOD, PLUGINS, SECRET, change_url, page

pytestmark = pytest.mark.django_db


def test_a_reader_sees_the_list_the_plugin_page_and_the_overview(console, reader, applied) -> None:  # type: ignore[no-untyped-def]
    applied(manager.set_config, "config-fixture", GOOD, actor="ana")
    listing = reader.get(PLUGINS)
    html = page(listing)
    assert "so-state-active" in html and "config-fixture" in html
    assert 'name="action"' not in html and 'data-action="sync"' not in html
    assert "so-overview-link" in html

    response = reader.get(change_url("config-fixture"))
    html = page(response)
    assert "View plugin" in html
    assert "data-action=" not in html  # no enable/disable/reload/check buttons
    form = response.context["config_form"]
    assert all(f.disabled for f in form.fields.values())
    assert "Save config" not in html and "view this config but not change it" in html
    assert 'name="credentials.username" value="ana"' in html and "disabled" in html
    assert SECRET not in html
    for section in ('id="metrics"', 'id="health"', 'id="events"', 'id="manifest"'):
        assert section in html

    overview = page(reader.get(f"{PLUGINS}overview/"))
    assert 'data-plugin="config-fixture"' in overview and 'data-action="sync"' not in overview


def test_every_change_a_reader_posts_is_refused(console, reader) -> None:  # type: ignore[no-untyped-def]
    healthy = Plugin.objects.get(name="healthy-fixture")
    config_post = {
        SUBMIT_FIELD: "1",
        BASE_VERSION_FIELD: "0",
        "credentials.username": "rita",
        "credentials.password": "long-enough-password",
    }
    refused = {
        "action": reader.post(
            PLUGINS,
            {"action": "disable_plugins", "_selected_action": [healthy.pk], "index": "0"},
        ),
        "sync": reader.post(f"{PLUGINS}sync-now/"),
        "button": reader.post(f"{PLUGINS}{healthy.pk}/do/disable/"),
        "check": reader.post(f"{PLUGINS}{healthy.pk}/do/check_health/"),
        "config": reader.post(change_url("config-fixture"), config_post),
        "model form": reader.post(change_url("healthy-fixture"), {"name": "x"}),
    }
    assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 403)
    assert Plugin.objects.get(name="healthy-fixture").state == "active"
    assert not PluginConfig.objects.exists()
    assert not HealthCheck.objects.exists()
    assert not PluginEvent.objects.filter(actor="rita").exists()


def test_events_and_config_versions_are_read_only_for_everyone(console, operator, applied) -> None:  # type: ignore[no-untyped-def]
    applied(manager.set_config, "config-fixture", GOOD, actor="ana")
    event = PluginEvent.objects.first()
    assert event is not None
    html = page(operator.get(f"/admin/stonks_plugins/pluginevent/{event.pk}/change/"))
    assert "View plugin event" in html and 'name="_save"' not in html
    assert operator.post(f"/admin/stonks_plugins/pluginevent/{event.pk}/delete/").status_code == 403
    cfg = PluginConfig.objects.get()
    html = page(operator.get(f"/admin/stonks_plugins/pluginconfig/{cfg.pk}/change/"))
    assert "Data (secrets masked)" in html and "********" in html and SECRET not in html
    assert 'name="_save"' not in html
    assert operator.post(f"/admin/stonks_plugins/pluginconfig/{cfg.pk}/change/").status_code == 403


def test_anonymous_visitors_are_sent_to_the_login(console, client) -> None:  # type: ignore[no-untyped-def]
    for url in (PLUGINS, f"{PLUGINS}overview/", change_url("config-fixture")):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.post(f"{PLUGINS}sync-now/").status_code == 302
    assert Plugin.objects.get(name="healthy-fixture").state == "active"
